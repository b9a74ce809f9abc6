package ctxsync_test

import (
	"context"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// Taking a batch of 64 items that are already there: GetMany against a loop
// of Get and against draining a buffered channel. Each op moves one batch
// in and out (the puts are part of every variant), so ns/op is per batch.
func BenchmarkGetMany64(b *testing.B) {
	const batch = 64
	ctx := context.Background()
	b.Run("GetMany", func(b *testing.B) {
		q := ctxsync.NewQueue[int](batch)
		dst := make([]int, batch)
		b.ReportAllocs()
		for b.Loop() {
			for i := range batch {
				_ = q.TryPut(i)
			}
			if n, _ := q.GetMany(ctx, dst); n != batch {
				b.Fatalf("took %d", n)
			}
		}
	})
	b.Run("Get-loop", func(b *testing.B) {
		q := ctxsync.NewQueue[int](batch)
		dst := make([]int, batch)
		b.ReportAllocs()
		for b.Loop() {
			for i := range batch {
				_ = q.TryPut(i)
			}
			for i := range dst {
				dst[i], _ = q.Get(ctx)
			}
		}
	})
	b.Run("chan-drain", func(b *testing.B) {
		ch := make(chan int, batch)
		dst := make([]int, batch)
		b.ReportAllocs()
		for b.Loop() {
			for i := range batch {
				ch <- i
			}
			// Drain what is there without blocking, as a batching
			// consumer of a channel does.
			n := 0
		drain:
			for n < len(dst) {
				select {
				case v := <-ch:
					dst[n] = v
					n++
				default:
					break drain
				}
			}
			if n != batch {
				b.Fatalf("took %d", n)
			}
		}
	})
}

// The batch alone: items put outside the timer, so ns/op is the cost of
// taking 64 items.
func BenchmarkGetMany64TakeOnly(b *testing.B) {
	const batch = 64
	ctx := context.Background()
	fill := func(b *testing.B, put func(int)) {
		b.StopTimer()
		for i := range batch {
			put(i)
		}
		b.StartTimer()
	}
	b.Run("GetMany", func(b *testing.B) {
		q := ctxsync.NewQueue[int](batch)
		dst := make([]int, batch)
		b.ReportAllocs()
		for range b.N {
			fill(b, func(v int) { _ = q.TryPut(v) })
			_, _ = q.GetMany(ctx, dst)
		}
	})
	b.Run("Get-loop", func(b *testing.B) {
		q := ctxsync.NewQueue[int](batch)
		dst := make([]int, batch)
		b.ReportAllocs()
		for range b.N {
			fill(b, func(v int) { _ = q.TryPut(v) })
			for i := range dst {
				dst[i], _ = q.Get(ctx)
			}
		}
	})
	b.Run("chan-drain", func(b *testing.B) {
		ch := make(chan int, batch)
		dst := make([]int, batch)
		b.ReportAllocs()
		for range b.N {
			fill(b, func(v int) { ch <- v })
			for n := 0; n < len(dst); n++ {
				select {
				case dst[n] = <-ch:
				default:
					n = len(dst) // drained
				}
			}
		}
	})
}
