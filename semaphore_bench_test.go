package ctxsync_test

import (
	"context"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/ctxsync/ctxsync"
)

const benchPermits = 2

// semaphorePeers are the semaphores a user would otherwise pick, beside
// ours, each waiting on ctx.
func semaphorePeers(ctx context.Context) []struct {
	name             string
	acquire, release func()
} {
	s := ctxsync.NewSemaphore(benchPermits)
	w := semaphore.NewWeighted(benchPermits)
	ch := make(chan struct{}, benchPermits)
	return []struct {
		name             string
		acquire, release func()
	}{
		{"ctxsync", func() { _ = s.Acquire(ctx) }, s.Release},
		{"Weighted", func() { _ = w.Acquire(ctx, 1) }, func() { w.Release(1) }},
		{"chan", func() {
			select {
			case ch <- struct{}{}:
			case <-ctx.Done():
			}
		}, func() { <-ch }},
	}
}

func benchSemaphoreUncontended(b *testing.B, ctx context.Context) {
	for _, p := range semaphorePeers(ctx) {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.acquire()
				p.release()
			}
		})
	}
}

// A context that can never end (context.Background).
func BenchmarkSemaphoreUncontended(b *testing.B) {
	benchSemaphoreUncontended(b, context.Background())
}

// A context that could end but has not, as real code passes.
func BenchmarkSemaphoreUncontendedCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchSemaphoreUncontended(b, ctx)
}

// Eight goroutines share two permits.
func BenchmarkSemaphoreContended(b *testing.B) {
	for _, p := range semaphorePeers(context.Background()) {
		b.Run(p.name, func(b *testing.B) {
			runConcurrently(b, 8, func() {
				p.acquire()
				p.release()
			})
		})
	}
}

// A ticket made and stopped while it waits: the cost of giving up.
func BenchmarkAcquireTicketStop(b *testing.B) {
	s := ctxsync.NewSemaphore(0)
	b.ReportAllocs()
	for b.Loop() {
		if !s.AcquireTicket(1).Stop() {
			b.Fatal("a ticket on an empty semaphore must stop")
		}
	}
}

// An uncontended Acquire and Release on a BoundedSemaphore of 2 made so,
// lowered to 2 from 4 by SetBound, and lowered then raised back to 2: a
// change of the bound must leave no lasting cost on the fast path (a
// prototype of one semaphore core under Lock paid 20 times over for any
// semaphore once lowered: bench/experiments/2026-12-07-one-semaphore-core).
func BenchmarkBoundedSemaphoreAfterSetBound(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lowered := ctxsync.NewBoundedSemaphore(4)
	lowered.SetBound(2)
	raised := ctxsync.NewBoundedSemaphore(2)
	raised.SetBound(1)
	raised.SetBound(2)
	for _, c := range []struct {
		name string
		s    *ctxsync.BoundedSemaphore
	}{
		{"made", ctxsync.NewBoundedSemaphore(2)},
		{"lowered", lowered},
		{"lowered-raised", raised},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.s.Acquire(ctx); err != nil {
					b.Fatal(err)
				}
				c.s.Release()
			}
		})
	}
}
