package ctxsync_test

import (
	"context"
	"sync"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/ctxsync/ctxsync"
)

// lockPeers are the locks a user would otherwise pick, beside ours. The
// calls that take a context get ctx.
func lockPeers(ctx context.Context) []struct {
	name         string
	lock, unlock func()
} {
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

func benchLockUncontended(b *testing.B, ctx context.Context) {
	for _, p := range lockPeers(ctx) {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.lock()
				p.unlock()
			}
		})
	}
}

// A context that can never end (context.Background).
func BenchmarkLockUncontended(b *testing.B) {
	benchLockUncontended(b, context.Background())
}

// A context that could end but has not, as real code passes: its Err and
// Done are real work, unlike Background's. sync.Mutex ignores it, so it is
// the same floor as in BenchmarkLockUncontended.
func BenchmarkLockUncontendedCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchLockUncontended(b, ctx)
}

// Four goroutines take turns on one lock, holding it briefly.
func BenchmarkLockContended(b *testing.B) {
	for _, p := range lockPeers(context.Background()) {
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
	for _, p := range lockPeers(context.Background()) {
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

// ctxSink keeps the results of BenchmarkContextCheck alive.
var ctxSink bool

// BenchmarkContextCheck measures the ways an uncontended Lock or Acquire
// could look whether its context is done before taking anything (R1):
// Err, what they use; a non-blocking receive on Done; Done == nil, which
// only says that a context can never end; and a comparison with
// context.Background(). Fresh makes a context.WithCancel for each op, as a
// request handler does, and cancels it: NoCheck is what that costs alone,
// and the allocs/op above it are the look's own (Done makes the channel).
func BenchmarkContextCheck(b *testing.B) {
	checks := []struct {
		name  string
		check func(ctx context.Context) bool
	}{
		{"Err", func(ctx context.Context) bool { return ctx.Err() == nil }},
		{"DoneSelect", func(ctx context.Context) bool {
			select {
			case <-ctx.Done():
				return false
			default:
				return true
			}
		}},
		{"DoneNil", func(ctx context.Context) bool { return ctx.Done() == nil }},
		{"EqualBackground", func(ctx context.Context) bool { return ctx == context.Background() }},
	}
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"Background", context.Background()}, {"Cancellable", cctx}} {
		for _, k := range checks {
			b.Run(c.name+"/"+k.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ctxSink = k.check(c.ctx)
				}
			})
		}
	}
	fresh := append(checks[:2:2], struct {
		name  string
		check func(ctx context.Context) bool
	}{"NoCheck", func(context.Context) bool { return true }})
	for _, k := range fresh {
		b.Run("Fresh/"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				ctxSink = k.check(ctx)
				cancel()
			}
		})
	}
}

// BenchmarkSelectDone measures what making a buffered channel cancellable
// costs: a select on ctx.Done() around each send and each receive, against
// the plain send and receive.
//
// Single: one goroutine sends a value and receives it back, so an op is one
// send plus one receive and nothing waits. SPSC: one producer and one
// consumer move b.N values through a channel of 1024, as BenchmarkQueueSPSC
// does, so an op is one value. Background is a select whose Done channel is
// nil (a context that never ends); Cancellable is a select on the Done
// channel of a context.WithCancel that is not cancelled.
func BenchmarkSelectDone(b *testing.B) {
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type chanOps struct {
		send func(ch chan int, v int)
		recv func(ch chan int) int
	}
	selectOn := func(ctx context.Context) chanOps {
		return chanOps{
			send: func(ch chan int, v int) {
				select {
				case ch <- v:
				case <-ctx.Done():
				}
			},
			recv: func(ch chan int) int {
				select {
				case v := <-ch:
					return v
				case <-ctx.Done():
					return 0
				}
			},
		}
	}
	variants := []struct {
		name string
		ops  chanOps
	}{
		{"plain", chanOps{
			send: func(ch chan int, v int) { ch <- v },
			recv: func(ch chan int) int { return <-ch },
		}},
		{"select-Background", selectOn(context.Background())},
		{"select-Cancellable", selectOn(cctx)},
	}
	for _, v := range variants {
		b.Run("Single/"+v.name, func(b *testing.B) {
			ch := make(chan int, 1)
			b.ReportAllocs()
			for b.Loop() {
				v.ops.send(ch, 1)
				v.ops.recv(ch)
			}
		})
	}
	for _, v := range variants {
		b.Run("SPSC/"+v.name, func(b *testing.B) {
			ch := make(chan int, 1024)
			b.ReportAllocs()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range b.N {
					v.ops.recv(ch)
				}
			}()
			b.ResetTimer()
			for i := range b.N {
				v.ops.send(ch, i)
			}
			<-done
		})
	}
}

func BenchmarkLockTicketUncontended(b *testing.B) {
	var l ctxsync.Lock
	b.Run("LockTicket", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			<-l.LockTicket().Ready()
			l.Unlock()
		}
	})
	b.Run("Lock", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_ = l.Lock(ctx)
			l.Unlock()
		}
	})
}

// Four goroutines take the lock through a ticket in a select with their
// context, as the README's pattern does.
func BenchmarkLockTicketContended(b *testing.B) {
	var l ctxsync.Lock
	ctx := context.Background()
	runConcurrently(b, 4, func() {
		t := l.LockTicket()
		select {
		case <-t.Ready():
			l.Unlock()
		case <-ctx.Done():
			if !t.Stop() && t.Err() == nil {
				l.Unlock()
			}
		}
	})
}
