package ctxsync_test

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// keyedLockPeer is a lock per key as a user would otherwise write it.
type keyedLockPeer interface {
	lock(ctx context.Context, key string)
	unlock(key string)
}

// mapLocks is the common hand-written version: a map of mutexes with
// reference counts under one sync.Mutex, each entry deleted by the last
// user. It takes no context.
type mapLocks struct {
	mu sync.Mutex
	m  map[string]*mapLockEntry
}

type mapLockEntry struct {
	mu   sync.Mutex
	refs int
}

func (l *mapLocks) lock(_ context.Context, key string) {
	l.mu.Lock()
	e := l.m[key]
	if e == nil {
		e = &mapLockEntry{}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
}

func (l *mapLocks) unlock(key string) {
	l.mu.Lock()
	e := l.m[key]
	e.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, key)
	}
	l.mu.Unlock()
}

// arrayLocks is a fixed array of mutexes hashed by key (the style of
// Kubernetes' keymutex): nothing to evict, but keys that hash alike share
// a mutex and hold each other back.
type arrayLocks struct {
	seed maphash.Seed
	mus  [64]sync.Mutex
}

func (l *arrayLocks) lock(_ context.Context, key string) {
	l.mus[maphash.String(l.seed, key)%64].Lock()
}

func (l *arrayLocks) unlock(key string) { l.mus[maphash.String(l.seed, key)%64].Unlock() }

type ctxsyncLocks struct{ m ctxsync.KeyedLock[string] }

func (l *ctxsyncLocks) lock(ctx context.Context, key string) { _ = l.m.Lock(ctx, key) }
func (l *ctxsyncLocks) unlock(key string)                    { l.m.Unlock(key) }

func keyedLockPeers() []struct {
	name string
	make func() keyedLockPeer
} {
	return []struct {
		name string
		make func() keyedLockPeer
	}{
		{"ctxsync", func() keyedLockPeer { return &ctxsyncLocks{} }},
		{"map", func() keyedLockPeer { return &mapLocks{m: map[string]*mapLockEntry{}} }},
		{"array", func() keyedLockPeer { return &arrayLocks{seed: maphash.MakeSeed()} }},
	}
}

// benchKeys are 1,024 distinct keys, made before the timer starts.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	return keys
}

// Lock and Unlock of one key at a time, over 1,024 warm keys, with a
// cancellable context as a request's is.
func BenchmarkKeyedLockUncontended(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := benchKeys(1024)
	for _, p := range keyedLockPeers() {
		b.Run(p.name, func(b *testing.B) {
			l := p.make()
			for _, k := range keys {
				l.lock(ctx, k)
				l.unlock(k)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[i&1023]
				i++
				l.lock(ctx, k)
				l.unlock(k)
			}
		})
	}
}

// Four goroutines, each locking and unlocking keys of its own (256 each):
// no key is contended, so whatever slows them down is the structure.
func BenchmarkKeyedLockDistinct4(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := benchKeys(1024)
	for _, p := range keyedLockPeers() {
		b.Run(p.name, func(b *testing.B) {
			l := p.make()
			b.ReportAllocs()
			var wg sync.WaitGroup
			per := b.N / 4
			b.ResetTimer()
			for g := range 4 {
				mine := keys[g*256 : (g+1)*256]
				wg.Go(func() {
					for i := range per {
						k := mine[i&255]
						l.lock(ctx, k)
						l.unlock(k)
					}
				})
			}
			wg.Wait()
		})
	}
}

// Four goroutines on four hot keys, each holding its key briefly: the
// per-key lines at work.
func BenchmarkKeyedLockHot4(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := benchKeys(4)
	for _, p := range keyedLockPeers() {
		b.Run(p.name, func(b *testing.B) {
			l := p.make()
			var n atomic.Uint32
			runConcurrently(b, 4, func() {
				k := keys[n.Add(1)&3]
				l.lock(ctx, k)
				l.unlock(k)
			})
		})
	}
}
