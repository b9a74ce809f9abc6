package ctxsync_test

import (
	"context"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/ctxsync/ctxsync"
)

const benchPermits = 2

func semaphorePeers() []struct {
	name             string
	acquire, release func()
} {
	ctx := context.Background()
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

func BenchmarkSemaphoreUncontended(b *testing.B) {
	for _, p := range semaphorePeers() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.acquire()
				p.release()
			}
		})
	}
}

// Eight goroutines share two permits.
func BenchmarkSemaphoreContended(b *testing.B) {
	for _, p := range semaphorePeers() {
		b.Run(p.name, func(b *testing.B) {
			runConcurrently(b, 8, func() {
				p.acquire()
				p.release()
			})
		})
	}
}
