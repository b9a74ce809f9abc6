package ctxsync_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// One goroutine waits, another wakes it: Event.Set against closing a
// channel.
func BenchmarkEventWake(b *testing.B) {
	ctx := context.Background()
	b.Run("ctxsync", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e ctxsync.Event
			done := make(chan struct{})
			go func() { _ = e.Wait(ctx); close(done) }()
			e.Set()
			<-done
		}
	})
	b.Run("chan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch := make(chan struct{})
			done := make(chan struct{})
			go func() { <-ch; close(done) }()
			close(ch)
			<-done
		}
	})
}

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

// Parties meet at a barrier round after round.
func BenchmarkBarrierRoundTrip(b *testing.B) {
	for _, parties := range []int{2, 4} {
		b.Run(fmt.Sprintf("parties=%d", parties), func(b *testing.B) {
			b.ReportAllocs()
			bar := ctxsync.NewBarrier(parties)
			var wg sync.WaitGroup
			for range parties {
				wg.Go(func() {
					for range b.N {
						_, _ = bar.Wait(context.Background())
					}
				})
			}
			wg.Wait()
		})
	}
}

// Cancelling one waiter among many costs the same however long the line
// is: a waiter leaves its line in O(1). The line is a Barrier's, whose
// Waiting tells when it is full; it never trips (parties is n+2).
func BenchmarkCancelOneWaiterAmong(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bar := ctxsync.NewBarrier(n + 2)
			stop, stopAll := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() { _, _ = bar.Wait(stop) })
			}
			for bar.Waiting() < n {
				runtime.Gosched()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { _, _ = bar.Wait(ctx); close(done) }()
				cancel()
				<-done
			}
			b.StopTimer()
			stopAll()
			wg.Wait()
		})
	}
}
