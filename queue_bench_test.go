package ctxsync_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// A queue as the benchmarks see it: a ctxsync Queue or a channel.
type benchQueue struct {
	put func(int)
	get func() int
}

func queuePeers(capacity int) []struct {
	name string
	make func() benchQueue
} {
	ctx := context.Background()
	return []struct {
		name string
		make func() benchQueue
	}{
		{"ctxsync", func() benchQueue {
			q := ctxsync.NewQueue[int](capacity)
			return benchQueue{
				put: func(v int) { _ = q.Put(ctx, v) },
				get: func() int { v, _ := q.Get(ctx); return v },
			}
		}},
		{"chan", func() benchQueue {
			ch := make(chan int, capacity)
			return benchQueue{
				put: func(v int) { ch <- v },
				get: func() int { return <-ch },
			}
		}},
		{"chan+select", func() benchQueue {
			ch := make(chan int, capacity)
			ctx, cancel := context.WithCancel(ctx) // a Done channel to select on, as real code has
			_ = cancel
			return benchQueue{
				put: func(v int) {
					select {
					case ch <- v:
					case <-ctx.Done():
					}
				},
				get: func() int {
					select {
					case v := <-ch:
						return v
					case <-ctx.Done():
						return 0
					}
				},
			}
		}},
	}
}

// producersConsumers moves b.N items from p producers to c consumers.
func producersConsumers(b *testing.B, q benchQueue, p, c int) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range p {
		n := b.N / p
		if i == 0 {
			n += b.N % p
		}
		wg.Go(func() {
			for j := range n {
				q.put(j)
			}
		})
	}
	for i := range c {
		n := b.N / c
		if i == 0 {
			n += b.N % c
		}
		wg.Go(func() {
			for range n {
				q.get()
			}
		})
	}
	wg.Wait()
}

func BenchmarkQueueSPSC(b *testing.B) {
	for _, p := range queuePeers(1024) {
		b.Run(p.name, func(b *testing.B) { producersConsumers(b, p.make(), 1, 1) })
	}
}

func BenchmarkQueue4x4(b *testing.B) {
	for _, p := range queuePeers(1024) {
		b.Run(p.name, func(b *testing.B) { producersConsumers(b, p.make(), 4, 4) })
	}
}

// Two goroutines bounce a value through two capacity-1 queues: every
// operation is a hand-off to a parked goroutine.
func BenchmarkQueuePingPong(b *testing.B) {
	for _, p := range queuePeers(1) {
		b.Run(p.name, func(b *testing.B) {
			ping, pong := p.make(), p.make()
			b.ReportAllocs()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range b.N {
					pong.put(ping.get() + 1)
				}
			}()
			b.ResetTimer()
			for i := range b.N {
				ping.put(i)
				pong.get()
			}
			<-done
		})
	}
}

func BenchmarkQueueGetTicket(b *testing.B) {
	var q ctxsync.Queue[int]
	b.ReportAllocs()
	for b.Loop() {
		_ = q.TryPut(1)
		_ = q.GetTicket().Item()
		q.TaskDone()
	}
}

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
