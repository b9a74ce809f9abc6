package ctxsync_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/ctxsync/ctxsync"
)

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
