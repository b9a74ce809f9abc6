package ctxsync_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// A notifier wakes one waiter at a time: Condition against sync.Cond.
func BenchmarkConditionNotify(b *testing.B) {
	ctx := context.Background()
	b.Run("ctxsync", func(b *testing.B) {
		var c ctxsync.Condition
		turn := 0
		pingPongCond(b,
			func() { _ = c.Lock(ctx) }, c.Unlock,
			func() { _ = c.Wait(ctx) }, func() { c.Notify(1) }, &turn)
	})
	b.Run("sync.Cond", func(b *testing.B) {
		var mu sync.Mutex
		c := sync.NewCond(&mu)
		turn := 0
		pingPongCond(b, mu.Lock, mu.Unlock, c.Wait, c.Signal, &turn)
	})
}

// pingPongCond has two goroutines take turns through a condition variable.
func pingPongCond(b *testing.B, lock, unlock, wait, notify func(), turn *int) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	for me := range 2 {
		wg.Go(func() {
			lock()
			defer unlock()
			for i := 0; i < b.N; i++ {
				for *turn%2 != me {
					wait()
				}
				*turn++
				notify()
			}
		})
	}
	wg.Wait()
}
