package ctxsync_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// rwPeer is a reader/writer lock as the benchmarks drive it.
type rwPeer struct {
	name           string
	rlock, runlock func()
	lock, unlock   func()
}

// rwPeers are our RWLock and the lock a user would otherwise pick.
func rwPeers() []rwPeer {
	ctx := context.Background()
	var rw ctxsync.RWLock
	var mu sync.RWMutex
	return []rwPeer{
		{"ctxsync", func() { _ = rw.RLock(ctx) }, rw.RUnlock, func() { _ = rw.Lock(ctx) }, rw.Unlock},
		{"sync.RWMutex", mu.RLock, mu.RUnlock, mu.Lock, mu.Unlock},
	}
}

// One goroutine, nobody else: the fast paths alone.
func BenchmarkRWLockUncontended(b *testing.B) {
	for _, p := range rwPeers() {
		b.Run("RLock/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.rlock()
				p.runlock()
			}
		})
		b.Run("Lock/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.lock()
				p.unlock()
			}
		})
	}
}

// runRW splits b.N critical sections over readers+writers goroutines: the
// first readers goroutines read, the others write. Each section touches
// shared data, so the lock has something to protect.
func runRW(b *testing.B, p rwPeer, readers, writers int) {
	b.Helper()
	b.ReportAllocs()
	var wg sync.WaitGroup
	shared := make([]int, 8)
	g := readers + writers
	per := b.N / g
	b.ResetTimer()
	for i := range g {
		n := per
		if i == 0 {
			n += b.N % g
		}
		write := i >= readers
		wg.Go(func() {
			sink := 0
			for range n {
				if write {
					p.lock()
					shared[0]++
					p.unlock()
				} else {
					p.rlock()
					sink += shared[0]
					p.runlock()
				}
			}
			_ = sink
		})
	}
	wg.Wait()
}

// Eight readers and one writer share the lock.
func BenchmarkRWLockReadMostly(b *testing.B) {
	for _, p := range rwPeers() {
		b.Run(p.name, func(b *testing.B) { runRW(b, p, 8, 1) })
	}
}

// One reader and three writers share the lock.
func BenchmarkRWLockWriteHeavy(b *testing.B) {
	for _, p := range rwPeers() {
		b.Run(p.name, func(b *testing.B) { runRW(b, p, 1, 3) })
	}
}

// Readers only, on every processor: the cost of the shared count.
func BenchmarkRWLockReadParallel(b *testing.B) {
	for _, p := range rwPeers() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.rlock()
					p.runlock()
				}
			})
		})
	}
}
