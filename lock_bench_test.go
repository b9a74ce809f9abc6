package ctxsync_test

import (
	"context"
	"sync"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/ctxsync/ctxsync"
)

// lockPeers are the locks a user would otherwise pick, beside ours.
func lockPeers() []struct {
	name         string
	lock, unlock func()
} {
	ctx := context.Background()
	var l ctxsync.Lock
	var mu sync.Mutex
	w := semaphore.NewWeighted(1)
	return []struct {
		name         string
		lock, unlock func()
	}{
		{"ctxsync", func() { _ = l.Lock(ctx) }, l.Unlock},
		{"sync.Mutex", mu.Lock, mu.Unlock},
		{"Weighted(1)", func() { _ = w.Acquire(ctx, 1) }, func() { w.Release(1) }},
	}
}

func BenchmarkLockUncontended(b *testing.B) {
	for _, p := range lockPeers() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.lock()
				p.unlock()
			}
		})
	}
}

// Four goroutines take turns on one lock, holding it briefly.
func BenchmarkLockContended(b *testing.B) {
	for _, p := range lockPeers() {
		b.Run(p.name, func(b *testing.B) {
			shared := 0
			runConcurrently(b, 4, func() {
				p.lock()
				shared++
				p.unlock()
			})
		})
	}
}

func BenchmarkLockParallel(b *testing.B) {
	for _, p := range lockPeers() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.lock()
					p.unlock()
				}
			})
		})
	}
}
