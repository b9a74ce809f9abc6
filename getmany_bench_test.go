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

// The take alone: 1,024 queues (or channels) of 64 items are filled with
// the timer stopped, then drained one batch per op, so ns/op is the cost
// of taking 64 items that are there.
func BenchmarkGetMany64TakeOnly(b *testing.B) {
	const batch, sets = 64, 1024
	ctx := context.Background()
	run := func(b *testing.B, fill func(set int), take func(set int, dst []int) int) {
		dst := make([]int, batch)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			set := i % sets
			if set == 0 {
				b.StopTimer()
				for k := range sets {
					fill(k)
				}
				b.StartTimer()
			}
			if n := take(set, dst); n != batch {
				b.Fatalf("took %d", n)
			}
		}
	}
	b.Run("GetMany", func(b *testing.B) {
		qs := make([]*ctxsync.Queue[int], sets)
		for k := range qs {
			qs[k] = ctxsync.NewQueue[int](batch)
		}
		run(b, func(k int) {
			for i := range batch {
				_ = qs[k].TryPut(i)
			}
		}, func(k int, dst []int) int { n, _ := qs[k].GetMany(ctx, dst); return n })
	})
	b.Run("Get-loop", func(b *testing.B) {
		qs := make([]*ctxsync.Queue[int], sets)
		for k := range qs {
			qs[k] = ctxsync.NewQueue[int](batch)
		}
		run(b, func(k int) {
			for i := range batch {
				_ = qs[k].TryPut(i)
			}
		}, func(k int, dst []int) int {
			for i := range dst {
				dst[i], _ = qs[k].Get(ctx)
			}
			return len(dst)
		})
	})
	b.Run("chan-drain", func(b *testing.B) {
		chs := make([]chan int, sets)
		for k := range chs {
			chs[k] = make(chan int, batch)
		}
		run(b, func(k int) {
			for i := range batch {
				chs[k] <- i
			}
		}, func(k int, dst []int) int {
			n := 0
			for n < len(dst) {
				select {
				case dst[n] = <-chs[k]:
					n++
				default:
					return n
				}
			}
			return n
		})
	})
}
