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
