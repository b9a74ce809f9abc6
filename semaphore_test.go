package ctxsync_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// semaphore is the method set Semaphore and BoundedSemaphore share, so each
// behaviour is checked on both.
type anySemaphore interface {
	Acquire(ctx context.Context) error
	AcquireN(ctx context.Context, n int) error
	TryAcquire() bool
	TryAcquireN(n int) bool
	Release()
	ReleaseN(n int)
	Available() int
	Locked() bool
}

var semaphoreKinds = []struct {
	name string
	make func(n int) anySemaphore
}{
	{"Semaphore", func(n int) anySemaphore { return ctxsync.NewSemaphore(n) }},
	{"BoundedSemaphore", func(n int) anySemaphore { return ctxsync.NewBoundedSemaphore(n) }},
}

func forEachSemaphore(t *testing.T, test func(t *testing.T, newSem func(n int) anySemaphore)) {
	for _, kind := range semaphoreKinds {
		t.Run(kind.name, func(t *testing.T) { test(t, kind.make) })
	}
}

// acquireAsync starts AcquireN in a goroutine and returns where its result
// arrives.
func acquireAsync(ctx context.Context, s anySemaphore, n int) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.AcquireN(ctx, n) }()
	return done
}

func TestSemaphoreCounts(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		ctx := context.Background()
		s := newSem(3)
		assert.Equal(t, 3, s.Available())
		assert.False(t, s.Locked())
		require.NoError(t, s.Acquire(ctx))
		require.NoError(t, s.AcquireN(ctx, 2))
		assert.Equal(t, 0, s.Available())
		assert.True(t, s.Locked())
		assert.False(t, s.TryAcquire())
		s.ReleaseN(2)
		assert.True(t, s.TryAcquireN(2))
		assert.False(t, s.TryAcquireN(1))
		s.ReleaseN(3)
		assert.Equal(t, 3, s.Available())
		assert.True(t, s.TryAcquireN(0))
	})
}

func TestSemaphoreZeroPermits(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		s := newSem(0)
		assert.True(t, s.Locked())
		assert.False(t, s.TryAcquire())
		assert.NoError(t, s.AcquireN(context.Background(), 0), "n == 0 succeeds when nobody waits")
	})
}

// R1: a done context fails even when permits are free, and takes nothing.
func TestSemaphoreDoneContextFailsWhenFree(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		s := newSem(2)
		assert.Equal(t, context.Canceled, s.Acquire(cancelled()))
		assert.Equal(t, context.Canceled, s.AcquireN(cancelled(), 0))
		assert.Equal(t, 2, s.Available())
	})
}

// R4: blocked acquirers are served in the order they started waiting.
func TestSemaphoreFIFO(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		synctest.Test(t, func(t *testing.T) {
			const n = 6
			s := newSem(1)
			require.NoError(t, s.Acquire(context.Background()))
			order := make(chan int, n)
			for i := range n {
				go func() {
					if assert.NoError(t, s.Acquire(context.Background())) {
						order <- i
					}
				}()
				synctest.Wait()
			}
			for i := range n {
				assert.False(t, s.TryAcquire(), "no barging while others wait")
				s.Release()
				assert.Equal(t, 0, s.Available(), "the permit went straight to the waiter")
				assert.Equal(t, i, <-order)
			}
			s.Release()
			assert.Equal(t, 1, s.Available())
		})
	})
}

// R4: a large request at the head holds back smaller ones behind it, and the
// permits set aside for it stay counted as available.
func TestSemaphoreWeightedHeadOfLine(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			s := newSem(3)
			require.NoError(t, s.AcquireN(ctx, 2))
			big := acquireAsync(ctx, s, 3)
			synctest.Wait()
			small := acquireAsync(ctx, s, 1)
			synctest.Wait()

			assert.Equal(t, 1, s.Available())
			assert.True(t, s.Locked())
			assert.False(t, s.TryAcquire(), "a free permit set aside for the head")
			assert.Empty(t, small, "the small request must not overtake the big one")
			zero := acquireAsync(ctx, s, 0)
			synctest.Wait()
			assert.Empty(t, zero, "n == 0 queues while others wait")

			s.ReleaseN(2)
			require.NoError(t, <-big)
			synctest.Wait()
			assert.Empty(t, small)
			assert.Equal(t, 0, s.Available())

			s.Release()
			require.NoError(t, <-small)
			require.NoError(t, <-zero)
			s.ReleaseN(3)
			assert.Equal(t, 3, s.Available())
		})
	})
}

// A big request that gives up lets the smaller ones behind it go.
func TestSemaphoreCancelledHeadLetsOthersGo(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		synctest.Test(t, func(t *testing.T) {
			s := newSem(3)
			require.NoError(t, s.AcquireN(context.Background(), 2))
			ctx, cancel := context.WithCancel(context.Background())
			big := acquireAsync(ctx, s, 3)
			synctest.Wait()
			small := acquireAsync(context.Background(), s, 1)
			synctest.Wait()
			assert.Empty(t, small)

			cancel()
			assert.Equal(t, context.Canceled, <-big)
			require.NoError(t, <-small)
			assert.Equal(t, 0, s.Available())
			s.ReleaseN(3)
			assert.Equal(t, 3, s.Available())
			assert.False(t, s.Locked())
		})
	})
}

func TestSemaphoreOverReleaseGrows(t *testing.T) {
	s := ctxsync.NewSemaphore(1)
	s.ReleaseN(2)
	assert.Equal(t, 3, s.Available())
	assert.True(t, s.TryAcquireN(3))
}

func TestBoundedSemaphoreExceedsBound(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(2)
	// R10: the object's own reason wins over the context's.
	assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(cancelled(), 3))
	assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(context.Background(), 3))
	assert.False(t, s.TryAcquireN(3))
	assert.Equal(t, 2, s.Available())
	assert.NoError(t, s.AcquireN(context.Background(), 2))
}

// A panicking over-release changes nothing, with or without waiters.
func TestBoundedSemaphoreOverReleasePanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const msg = "ctxsync: BoundedSemaphore released more permits than are held"
		s := ctxsync.NewBoundedSemaphore(2)
		assert.PanicsWithValue(t, msg, s.Release)
		require.NoError(t, s.Acquire(context.Background()))
		assert.PanicsWithValue(t, msg, func() { s.ReleaseN(2) })
		assert.Equal(t, 1, s.Available())

		waiter := acquireAsync(context.Background(), s, 2)
		synctest.Wait()
		assert.PanicsWithValue(t, msg, func() { s.ReleaseN(2) }, "even though the waiter would take them")
		assert.Equal(t, 1, s.Available())
		s.Release()
		require.NoError(t, <-waiter)
		assert.Equal(t, 0, s.Available())
		s.ReleaseN(2)
		assert.Equal(t, 2, s.Available())
	})
}

func TestSemaphoreMisusePanics(t *testing.T) {
	for _, kind := range semaphoreKinds {
		s := kind.make(1)
		tests := []struct {
			name string
			call func()
			msg  string
		}{
			{"new negative Semaphore", func() { ctxsync.NewSemaphore(-1) }, "ctxsync: negative semaphore size"},
			{"new negative BoundedSemaphore", func() { ctxsync.NewBoundedSemaphore(-1) }, "ctxsync: negative semaphore size"},
			{"AcquireN negative", func() { _ = s.AcquireN(context.Background(), -1) }, "ctxsync: negative permit count"},
			{"TryAcquireN negative", func() { s.TryAcquireN(-1) }, "ctxsync: negative permit count"},
			{"ReleaseN negative", func() { s.ReleaseN(-1) }, "ctxsync: negative permit count"},
		}
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				assert.PanicsWithValue(t, tt.msg, tt.call)
				assert.Equal(t, 1, s.Available())
			})
		}
	}
}

// R3 under stress: weighted acquirers with random cancellations, racing with
// releases, never hold more than the limit together, and every permit is
// back at the end.
func TestSemaphoreStressRandomCancellation(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		const limit, goroutines, rounds = 5, 12, 300 * stressScale
		s := newSem(limit)
		var held atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 2))
				for range rounds {
					n := rng.IntN(limit + 1)
					ctx, cancel := context.WithCancel(context.Background())
					if rng.IntN(3) == 0 {
						go cancel()
					}
					var ok bool
					if rng.IntN(4) == 0 {
						ok = s.TryAcquireN(n)
					} else {
						ok = s.AcquireN(ctx, n) == nil
					}
					if ok {
						if h := held.Add(int64(n)); h > limit {
							t.Errorf("%d permits held, limit %d", h, limit)
						}
						held.Add(-int64(n))
						s.ReleaseN(n)
					}
					cancel()
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, limit, s.Available(), "every permit is back")
		assert.False(t, s.Locked())
		assert.True(t, s.TryAcquireN(limit))
	})
}

// R8: calls that do not block allocate nothing.
func TestSemaphoreNonBlockingCallsDoNotAllocate(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		s := newSem(2)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(100, func() {
			_ = s.AcquireN(ctx, 2)
			s.ReleaseN(2)
			if s.TryAcquire() {
				s.Release()
			}
			_ = s.Available()
			_ = s.Locked()
		})
		assert.Zero(t, allocs)
	})
}

func TestSemaphoreHugeRequestFails(t *testing.T) {
	s := ctxsync.NewSemaphore(1)
	assert.False(t, s.TryAcquireN(int(^uint(0)>>1)))
	assert.Equal(t, 1, s.Available())
}

// A zero Semaphore is a semaphore with no permits, like asyncio's
// Semaphore(0): Release gives it permits and Acquire takes them.
func TestSemaphoreZeroValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s ctxsync.Semaphore
		assert.Equal(t, 0, s.Available())
		assert.True(t, s.Locked())
		assert.False(t, s.TryAcquire())
		assert.NoError(t, s.AcquireN(context.Background(), 0))

		got := acquireAsync(context.Background(), &s, 2)
		synctest.Wait()
		assert.Empty(t, got, "no permit yet")
		s.ReleaseN(3)
		require.NoError(t, <-got)
		assert.Equal(t, 1, s.Available())
		require.NoError(t, s.Acquire(context.Background()))
		s.ReleaseN(3)
		assert.Equal(t, 3, s.Available())
	})
}

// A zero BoundedSemaphore is bounded at 0: only empty requests succeed,
// and any Release is one too many.
func TestBoundedSemaphoreZeroValue(t *testing.T) {
	var s ctxsync.BoundedSemaphore
	assert.Equal(t, 0, s.Available())
	assert.True(t, s.Locked())
	assert.NoError(t, s.AcquireN(context.Background(), 0))
	assert.True(t, s.TryAcquireN(0))
	assert.Equal(t, ctxsync.ErrExceedsBound, s.Acquire(context.Background()))
	assert.False(t, s.TryAcquire())
	assert.PanicsWithValue(t, "ctxsync: BoundedSemaphore released more permits than are held", s.Release)
	assert.Equal(t, 0, s.Available())
}

// Any count from 0 to math.MaxInt works: "no limit" is NewSemaphore of
// math.MaxInt, as with x/sync's NewWeighted(math.MaxInt64).
func TestSemaphoreCountsUpToMaxInt(t *testing.T) {
	for _, n := range []int{1 << 62, math.MaxInt - 1, math.MaxInt} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
				// Bounded, so that a wrapped count fails instead of hanging.
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				s := newSem(n)
				assert.Equal(t, n, s.Available())
				assert.False(t, s.Locked())
				require.NoError(t, s.Acquire(ctx))
				assert.Equal(t, n-1, s.Available())
				require.NoError(t, s.AcquireN(ctx, n-1))
				assert.Equal(t, 0, s.Available())
				assert.True(t, s.Locked())
				s.ReleaseN(n)
				assert.Equal(t, n, s.Available())
				assert.True(t, s.TryAcquireN(n))
				s.Release()
				s.ReleaseN(n - 1)
				assert.Equal(t, n, s.Available())
			})
		})
	}
}

// Permits released past math.MaxInt cannot be counted: the Release panics
// and changes nothing, waiters or not.
func TestSemaphoreReleasePastMaxIntPanics(t *testing.T) {
	const msg = "ctxsync: Semaphore released past math.MaxInt permits"
	tests := []struct {
		name      string
		n         int
		release   int
		available int
	}{
		{"one held, MaxInt back", 1, math.MaxInt, 1},
		{"MaxInt free, one back", math.MaxInt, 1, math.MaxInt},
		{"half free, half and one back", 1 << 62, 1<<62 + 1, 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ctxsync.NewSemaphore(tt.available)
			assert.PanicsWithValue(t, msg, func() { s.ReleaseN(tt.release) })
			assert.Equal(t, tt.available, s.Available())
		})
	}
	t.Run("with a waiter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := ctxsync.NewSemaphore(math.MaxInt - 1)
			got := acquireAsync(context.Background(), s, math.MaxInt)
			synctest.Wait()
			assert.PanicsWithValue(t, msg, func() { s.ReleaseN(2) })
			assert.Equal(t, math.MaxInt-1, s.Available())
			assert.Empty(t, got)
			s.Release()
			require.NoError(t, <-got)
			assert.Equal(t, 0, s.Available())
		})
	})
}

// The bound check cannot overflow: no n gets past it.
func TestBoundedSemaphoreOverReleaseHugeN(t *testing.T) {
	const msg = "ctxsync: BoundedSemaphore released more permits than are held"
	tests := []struct{ bound, held, n int }{
		{0, 0, 1},
		{0, 0, math.MaxInt},
		{1, 0, math.MaxInt}, // 1 free + math.MaxInt wrapped below the bound
		{1, 1, 2},
		{1, 1, math.MaxInt},
		{math.MaxInt, 1, 2},
		{math.MaxInt, 1, math.MaxInt},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("bound %d held %d n %d", tt.bound, tt.held, tt.n), func(t *testing.T) {
			s := ctxsync.NewBoundedSemaphore(tt.bound)
			require.True(t, s.TryAcquireN(tt.held))
			assert.PanicsWithValue(t, msg, func() { s.ReleaseN(tt.n) })
			assert.Equal(t, tt.bound-tt.held, s.Available())
		})
	}
}

// R1, R2: a context whose deadline has passed is done like a cancelled one:
// every acquiring call fails with context.DeadlineExceeded and takes
// nothing, even when permits are free.
func TestSemaphoreExpiredDeadline(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		s := newSem(2)
		assert.Equal(t, context.DeadlineExceeded, s.Acquire(ctx))
		assert.Equal(t, context.DeadlineExceeded, s.AcquireN(ctx, 2))
		assert.Equal(t, context.DeadlineExceeded, s.AcquireN(ctx, 0))
		assert.Equal(t, 2, s.Available())
		require.True(t, s.TryAcquireN(2))
		assert.Equal(t, context.DeadlineExceeded, s.Acquire(ctx), "and when it would block")
		s.ReleaseN(2)
		assert.Equal(t, 2, s.Available())
		assert.False(t, s.Locked())
	})
}

// R2, R3: a waiting acquirer whose deadline passes returns
// context.DeadlineExceeded, leaves the count as it was, and lets the
// smaller request it held back go.
func TestSemaphoreWaitEndedByDeadline(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		synctest.Test(t, func(t *testing.T) {
			s := newSem(3)
			require.NoError(t, s.AcquireN(context.Background(), 2))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			big := acquireAsync(ctx, s, 3)
			synctest.Wait()
			small := acquireAsync(context.Background(), s, 1)
			synctest.Wait()
			assert.Empty(t, small)

			err := <-big
			assert.Equal(t, context.DeadlineExceeded, err)
			assert.Equal(t, ctx.Err(), err)
			assert.Equal(t, time.Second, time.Since(start), "it waited for its deadline")
			require.NoError(t, <-small)
			assert.Equal(t, 0, s.Available())
			s.ReleaseN(3)
			assert.Equal(t, 3, s.Available())
			assert.False(t, s.Locked())
		})
	})
}

// R4: the one-permit Acquire, which has a fast path of its own, does not
// take a free permit past a weighted request waiting at the head.
func TestSemaphoreAcquireWaitsBehindWeightedHead(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			s := newSem(3)
			require.NoError(t, s.AcquireN(ctx, 2))
			big := acquireAsync(ctx, s, 3)
			synctest.Wait()
			require.Equal(t, 1, s.Available(), "one permit free, set aside for the head")

			one := make(chan error, 1)
			go func() { one <- s.Acquire(ctx) }()
			synctest.Wait()
			assert.Empty(t, one, "Acquire must queue behind the waiting AcquireN(3)")
			assert.Equal(t, 1, s.Available())

			s.ReleaseN(2)
			require.NoError(t, <-big)
			synctest.Wait()
			assert.Empty(t, one)
			s.ReleaseN(3)
			require.NoError(t, <-one)
			assert.Equal(t, 2, s.Available())
			s.Release()
		})
	})
}

// Permits that a Release hands to a waiter are counted as taken before the
// waiter wakes: the woken side never sees them in Available(), as it would
// if they were counted off only after its wake-up (a window that a Release
// descheduled between the two would hold open). Randomized: many hand-offs,
// each checked from the woken side at once.
func TestSemaphoreHandOffNeverShowsAvailableToTheWoken(t *testing.T) {
	rounds := 2000 * stressScale
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		s := newSem(2)
		require.NoError(t, s.AcquireN(context.Background(), 2))
		seen := make(chan int)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range rounds {
				if err := s.AcquireN(context.Background(), 2); err != nil {
					seen <- -1
					return
				}
				seen <- s.Available()
			}
		})
		for i := range rounds {
			for s.(waitingSemaphore).Waiting() == 0 {
				runtime.Gosched() // until the waiter is in line
			}
			s.ReleaseN(2)
			require.Zero(t, <-seen, "round %d: the woken waiter saw its own permits as free", i)
		}
		wg.Wait()
		s.ReleaseN(2)
		assert.Equal(t, 2, s.Available())
	})
}

// AcquireTicket.

// ticketSemaphore is a semaphore with tickets: both kinds have them.
type ticketSemaphore interface {
	anySemaphore
	AcquireTicket(n int) *ctxsync.Ticket
}

func forEachTicketSemaphore(t *testing.T, test func(t *testing.T, newSem func(n int) ticketSemaphore)) {
	t.Run("Semaphore", func(t *testing.T) {
		test(t, func(n int) ticketSemaphore { return ctxsync.NewSemaphore(n) })
	})
	t.Run("BoundedSemaphore", func(t *testing.T) {
		test(t, func(n int) ticketSemaphore { return ctxsync.NewBoundedSemaphore(n) })
	})
}

// Free permits with nobody in line: granted before the ticket is returned.
func TestAcquireTicketGrantedAtOnce(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(3)
		tk := s.AcquireTicket(2)
		require.True(t, isReady(tk))
		require.NoError(t, tk.Err())
		assert.Equal(t, 1, s.Available())
		assert.False(t, tk.Stop(), "decided: Stop returns false")
		assert.NoError(t, tk.Err(), "and the caller holds the permits")
		assert.Equal(t, 1, s.Available())

		zero := s.AcquireTicket(0)
		require.True(t, isReady(zero), "a request for no permit is served at once when nobody waits")
		require.NoError(t, zero.Err())
		s.ReleaseN(2)
		assert.Equal(t, 3, s.Available())
	})
}

// A waiting ticket stands in line as a blocked AcquireN does: the fast
// paths step aside, and Release hands it its permits once it can be served
// whole; the grant is complete when Release returns.
func TestAcquireTicketWaitsAndIsHandedPermits(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(3)
		require.True(t, s.TryAcquireN(3))
		tk := s.AcquireTicket(2)
		require.False(t, isReady(tk))
		require.NoError(t, tk.Err(), "nil while waiting")
		assert.True(t, s.Locked())

		s.Release()
		assert.False(t, isReady(tk), "one permit is not the whole request")
		assert.Equal(t, 1, s.Available(), "set aside, still counted free")
		assert.False(t, s.TryAcquire(), "but no newcomer takes it")

		zero := s.AcquireTicket(0)
		assert.False(t, isReady(zero), "a request for no permit queues behind a waiting one")

		s.Release()
		require.True(t, isReady(tk), "served whole when Release returns")
		require.True(t, isReady(zero), "and the one behind it, in the same step")
		require.NoError(t, tk.Err())
		assert.False(t, tk.Stop())
		assert.Equal(t, 0, s.Available())

		s.ReleaseN(3)
		assert.Equal(t, 3, s.Available())
		assert.False(t, s.Locked())
		assert.True(t, s.TryAcquireN(3), "the line is empty: the fast paths are back")
		s.ReleaseN(3)
	})
}

// A stopped ticket at the head of the line was holding back smaller
// requests; Stop serves them, as a cancelled AcquireN's leaving does.
func TestAcquireTicketStopLetsSmallerRequestsGo(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		synctest.Test(t, func(t *testing.T) {
			s := newSem(3)
			require.True(t, s.TryAcquireN(2))
			big := s.AcquireTicket(3)
			small := acquireAsync(context.Background(), s, 1)
			synctest.Wait() // parked before the ticket joins
			smallTicket := s.AcquireTicket(1)
			synctest.Wait()
			require.Empty(t, small, "held back by the big request")
			require.False(t, isReady(smallTicket))

			require.True(t, big.Stop())
			assertStopped(t, big)
			require.NoError(t, <-small, "served by Stop itself")
			assert.False(t, isReady(smallTicket), "no permit left for it")
			s.Release()
			require.True(t, isReady(smallTicket))
			s.ReleaseN(3)
			assert.Equal(t, 3, s.Available(), "the stopped request took nothing")
			assert.False(t, s.Locked())
		})
	})
}

// A request above the bound can never succeed: decided at once with
// ErrExceedsBound, taking nothing and holding nobody back.
func TestBoundedAcquireTicketExceedsBound(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(2)
	require.True(t, s.TryAcquire())
	behind := s.AcquireTicket(2) // waits
	tk := s.AcquireTicket(3)
	require.True(t, isReady(tk), "decided before it is returned")
	assert.Equal(t, ctxsync.ErrExceedsBound, tk.Err())
	assert.False(t, tk.Stop())
	assert.Equal(t, ctxsync.ErrExceedsBound, tk.Err(), "Stop changes nothing once decided")
	assert.Equal(t, 1, s.Available())
	s.Release()
	require.True(t, isReady(behind))
	require.NoError(t, behind.Err())
	s.ReleaseN(2)
	assert.Equal(t, 2, s.Available())

	var zero ctxsync.BoundedSemaphore
	assert.Equal(t, ctxsync.ErrExceedsBound, zero.AcquireTicket(1).Err())
	z := zero.AcquireTicket(0)
	require.True(t, isReady(z))
	assert.NoError(t, z.Err())

	// On an unbounded Semaphore the same request just waits.
	u := ctxsync.NewSemaphore(2)
	ut := u.AcquireTicket(3)
	assert.False(t, isReady(ut))
	assert.True(t, ut.Stop())
}

// R6: a negative count panics and changes nothing.
func TestAcquireTicketNegativePanics(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(1)
		assert.PanicsWithValue(t, "ctxsync: negative permit count", func() { s.AcquireTicket(-1) })
		assert.Equal(t, 1, s.Available())
		assert.False(t, s.Locked())
	})
}

// Tickets and blocked AcquireN calls stand in one line, served in the
// order they joined it.
func TestAcquireTicketsMixedWithCallsInOrder(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		synctest.Test(t, func(t *testing.T) {
			s := newSem(2)
			require.True(t, s.TryAcquireN(2))
			order := make(chan int, 6)
			var tickets [6]*ctxsync.Ticket
			for i := range 6 {
				if i%2 == 0 {
					go func() {
						if assert.NoError(t, s.AcquireN(context.Background(), 1)) {
							order <- i
						}
					}()
					synctest.Wait() // parked before the next joins
					continue
				}
				tickets[i] = s.AcquireTicket(1)
			}
			for want := range 6 {
				s.Release()
				synctest.Wait()
				if tk := tickets[want]; tk != nil {
					require.True(t, isReady(tk), "ticket %d", want)
					assert.Empty(t, order)
				} else {
					require.Equal(t, want, <-order)
				}
				for _, tk := range tickets[want+1:] {
					if tk != nil {
						assert.False(t, isReady(tk), "served before %d", want)
					}
				}
			}
			s.ReleaseN(2) // the last two served hold the two permits
			assert.Equal(t, 2, s.Available())
		})
	})
}

// Stop racing a grant, staged in both orders.
func TestAcquireTicketStopRacingGrant(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		t.Run("GrantFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(2)
				require.True(t, s.TryAcquireN(2))
				tk := s.AcquireTicket(2)
				next := acquireAsync(context.Background(), s, 1)
				synctest.Wait()
				s.ReleaseN(2) // the grant
				require.False(t, tk.Stop())
				require.NoError(t, tk.Err(), "granted: the caller holds 2")
				assert.Equal(t, 0, s.Available())
				s.ReleaseN(2)
				require.NoError(t, <-next)
				s.Release()
				assert.Equal(t, 2, s.Available())
			})
		})
		t.Run("StopFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(2)
				require.True(t, s.TryAcquireN(2))
				tk := s.AcquireTicket(2)
				next := acquireAsync(context.Background(), s, 1)
				synctest.Wait()
				require.True(t, tk.Stop())
				s.ReleaseN(2) // goes past the stopped ticket to the next
				require.NoError(t, <-next)
				assertStopped(t, tk)
				assert.Equal(t, 1, s.Available())
				s.Release()
				assert.Equal(t, 2, s.Available())
			})
		})
	})
}

// Acquire-or-timeout in one select with ctx.Done(), a timer and a ticket
// of another semaphore.
func TestAcquireTicketsInOneSelect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := ctxsync.NewSemaphore(0), ctxsync.NewBoundedSemaphore(1)
		require.True(t, b.TryAcquire())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		pick := func(timeout time.Duration) (string, *ctxsync.Ticket, *ctxsync.Ticket) {
			ta, tb := a.AcquireTicket(1), b.AcquireTicket(1)
			timer := time.NewTimer(timeout)
			defer timer.Stop()
			select {
			case <-ta.Ready():
				return "a", ta, tb
			case <-tb.Ready():
				return "b", ta, tb
			case <-ctx.Done():
				return "ctx", ta, tb
			case <-timer.C:
				return "timer", ta, tb
			}
		}
		// giveBack stops a ticket we no longer want, returning its permit
		// if it was granted meanwhile.
		giveBack := func(tk *ctxsync.Ticket, s ticketSemaphore) {
			if !tk.Stop() && tk.Err() == nil {
				s.Release()
			}
		}

		got, ta, tb := pick(time.Second)
		require.Equal(t, "timer", got)
		giveBack(ta, a)
		giveBack(tb, b)

		go func() {
			time.Sleep(time.Millisecond) // fake time inside the bubble
			a.Release()
		}()
		got, ta, tb = pick(time.Minute)
		require.Equal(t, "a", got)
		require.NoError(t, ta.Err())
		giveBack(tb, b) // the permit of a is kept until the end

		go cancel()
		got, ta, tb = pick(time.Minute)
		require.Equal(t, "ctx", got)
		giveBack(ta, a)
		giveBack(tb, b)

		assert.Equal(t, 0, a.Available())
		a.Release()
		assert.Equal(t, 1, a.Available())
		assert.Equal(t, 0, b.Available())
		b.Release()
		assert.Equal(t, 1, b.Available())
	})
}

// R8, R9: a ticket costs at most its record and its channel.
func TestAcquireTicketAllocs(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(1)
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			if !s.AcquireTicket(1).Stop() {
				s.Release()
			}
		}), 2.0, "granted at once")
		require.True(t, s.TryAcquire())
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			if !s.AcquireTicket(1).Stop() {
				t.Error("a waiting ticket must stop")
			}
		}), 2.0, "waiting")
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			_ = s.AcquireTicket(5).Err()
		}), 2.0, "exceeding the bound, or waiting for ever")
		s.Release()
	})
}

// Under stress, weighted tickets whose Stops race Releases, mixed with
// blocking and Try calls, never hold more than the limit together, and
// every permit is back at the end.
func TestAcquireTicketStressStopRacingGrant(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		const limit, goroutines, rounds = 5, 8, 300 * stressScale
		s := newSem(limit)
		var held, stopped, lateGrants atomic.Int64
		use := func(n int) {
			if h := held.Add(int64(n)); h > limit {
				t.Errorf("%d permits held, limit %d", h, limit)
			}
			held.Add(-int64(n))
			s.ReleaseN(n)
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 13))
				for range rounds {
					n := rng.IntN(limit + 1)
					switch rng.IntN(4) {
					case 0:
						// A cancelled AcquireN's leaving serves the line
						// too, so it grants tickets racing their Stops.
						ctx, cancel := context.WithCancel(context.Background())
						if rng.IntN(2) == 0 {
							go cancelAfterYields(cancel, rng.IntN(4))
						}
						if s.AcquireN(ctx, n) == nil {
							use(n)
						}
						cancel()
					case 1:
						if s.TryAcquireN(n) {
							use(n)
						}
					default:
						tk := s.AcquireTicket(n)
						waited := !isReady(tk)
						for range rng.IntN(3) {
							runtime.Gosched() // let Stop land anywhere
						}
						if rng.IntN(3) == 0 {
							<-tk.Ready()
							assert.NoError(t, tk.Err())
							use(n)
						} else if !tk.Stop() {
							assert.True(t, isReady(tk))
							assert.NoError(t, tk.Err())
							if waited {
								lateGrants.Add(1)
							}
							use(n)
						} else {
							stopped.Add(1)
							assertStopped(t, tk)
						}
					}
				}
			})
		}
		wg.Wait()
		assert.Equal(t, limit, s.Available(), "every permit is back")
		assert.False(t, s.Locked())
		assert.True(t, s.TryAcquireN(limit), "and no stale waiters bit")
		t.Logf("%d Stops that withdrew, %d that came after a hand-off", stopped.Load(), lateGrants.Load())
	})
}

// The grant a Stop races may come from a blocked call leaving on its
// context: a large AcquireN at the head whose context ends serves the
// ticket behind it. Staged in both orders.
func TestAcquireTicketStopRacingCancelledHead(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		t.Run("CancelFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(3)
				require.True(t, s.TryAcquire())
				ctx, cancel := context.WithCancel(context.Background())
				big := acquireAsync(ctx, s, 3)
				synctest.Wait()
				tk := s.AcquireTicket(2)
				require.False(t, isReady(tk), "held back by the big request")
				cancel()
				require.Equal(t, context.Canceled, <-big) // its leaving served the ticket
				require.False(t, tk.Stop())
				require.NoError(t, tk.Err(), "granted by the leaving: the caller holds 2")
				assert.Equal(t, 0, s.Available())
				s.ReleaseN(3)
				assert.Equal(t, 3, s.Available())
			})
		})
		t.Run("StopFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(3)
				require.True(t, s.TryAcquire())
				ctx, cancel := context.WithCancel(context.Background())
				big := acquireAsync(ctx, s, 3)
				synctest.Wait()
				tk := s.AcquireTicket(2)
				require.True(t, tk.Stop())
				cancel()
				require.Equal(t, context.Canceled, <-big)
				assertStopped(t, tk)
				assert.Equal(t, 2, s.Available(), "nobody took the free permits")
				assert.False(t, s.Locked(), "and nobody is left in line")
				s.Release()
			})
		})
	})
}

// SetBound and Bound.

func TestBoundedSemaphoreBound(t *testing.T) {
	assert.Equal(t, 3, ctxsync.NewBoundedSemaphore(3).Bound())
	var zero ctxsync.BoundedSemaphore
	assert.Zero(t, zero.Bound())
	zero.SetBound(2)
	assert.Equal(t, 2, zero.Bound())
	assert.Equal(t, 2, zero.Available(), "a zero value raised is usable")
	require.NoError(t, zero.AcquireN(context.Background(), 2))
	zero.ReleaseN(2)
}

// Available is max(0, n − held) after SetBound(n), whatever the way there.
func TestSetBoundAvailable(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		bound, held int
		bounds      []int // successive SetBound calls
		available   []int // Available after each
	}{
		{"raise with nothing held", 2, 0, []int{5}, []int{5}},
		{"raise frees the difference", 3, 2, []int{5}, []int{3}},
		{"lower removes free permits first", 5, 1, []int{3}, []int{2}},
		{"lower to the held count", 5, 3, []int{3}, []int{0}},
		{"lower below the held count", 5, 4, []int{2}, []int{0}},
		{"lower to zero", 5, 4, []int{0}, []int{0}},
		{"raise less the excess still held", 5, 5, []int{2, 4, 7}, []int{0, 0, 2}},
		{"lower then raise back", 4, 1, []int{1, 4}, []int{0, 3}},
		{"same bound", 4, 1, []int{4}, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ctxsync.NewBoundedSemaphore(tt.bound)
			require.NoError(t, s.AcquireN(ctx, tt.held))
			for i, n := range tt.bounds {
				s.SetBound(n)
				assert.Equal(t, n, s.Bound())
				assert.Equal(t, tt.available[i], s.Available(), "after SetBound(%d)", n)
				assert.Equal(t, tt.available[i] == 0, s.Locked())
			}
			// Holders can always give back what they hold, and then
			// every permit of the bound in force is free.
			s.ReleaseN(tt.held)
			last := tt.bounds[len(tt.bounds)-1]
			assert.Equal(t, last, s.Available())
			assert.PanicsWithValue(t, "ctxsync: BoundedSemaphore released more permits than are held", s.Release)
			assert.Equal(t, last, s.Available())
			assert.Zero(t, s.Waiting())
		})
	}
}

// Permits held above a lowered bound are retired as they come back:
// Available stays 0 until the holders are within the bound.
func TestSetBoundLoweredRetiresReturnedPermits(t *testing.T) {
	ctx := context.Background()
	s := ctxsync.NewBoundedSemaphore(5)
	require.NoError(t, s.AcquireN(ctx, 4))
	s.SetBound(2)
	for _, want := range []int{0, 0, 1, 2} { // held 3, 2, 1, 0
		s.Release()
		assert.Equal(t, want, s.Available())
	}
	assert.PanicsWithValue(t, "ctxsync: BoundedSemaphore released more permits than are held", s.Release)
	assert.Equal(t, 2, s.Available())

	// A release that spans the excess and the bound.
	require.NoError(t, s.AcquireN(ctx, 2))
	s.SetBound(5)
	require.NoError(t, s.AcquireN(ctx, 3)) // held 5
	s.SetBound(1)                          // excess 4
	assert.PanicsWithValue(t, "ctxsync: BoundedSemaphore released more permits than are held",
		func() { s.ReleaseN(6) }, "more than held panics")
	assert.Equal(t, 0, s.Available(), "and changes nothing")
	s.ReleaseN(5)
	assert.Equal(t, 1, s.Available())
}

// While held permits are above a lowered bound nothing is free: Try calls
// fail, except a request for nothing, which succeeds when nobody waits.
func TestSetBoundExcessHeldBlocksNewcomers(t *testing.T) {
	ctx := context.Background()
	s := ctxsync.NewBoundedSemaphore(3)
	require.NoError(t, s.AcquireN(ctx, 3))
	s.SetBound(1)
	assert.True(t, s.Locked())
	assert.False(t, s.TryAcquire())
	assert.True(t, s.TryAcquireN(0))
	assert.NoError(t, s.AcquireN(ctx, 0))
	assert.Equal(t, context.Canceled, s.AcquireN(cancelled(), 0), "R1")
	assert.Equal(t, context.Canceled, s.AcquireN(cancelled(), 1), "R1")
	assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(cancelled(), 2), "R10: above the new bound")
	assert.False(t, s.TryAcquireN(2))
	assert.Zero(t, s.Waiting())
	s.ReleaseN(3)
	assert.Equal(t, 1, s.Available())
	assert.False(t, s.Locked())
	assert.True(t, s.TryAcquire())
	s.Release()
}

func TestSetBoundLoweredWaiterWaitsUntilWithinBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := ctxsync.NewBoundedSemaphore(4)
		require.NoError(t, s.AcquireN(ctx, 4))
		s.SetBound(2)
		waiter := acquireAsync(ctx, s, 1)
		synctest.Wait()
		assert.Equal(t, 1, s.Waiting())
		s.Release() // held 3: retired
		s.Release() // held 2: retired, at the bound
		synctest.Wait()
		assert.Empty(t, waiter)
		assert.Equal(t, 0, s.Available())
		s.Release() // held 1: one free, and the waiter takes it
		require.NoError(t, <-waiter)
		assert.Equal(t, 0, s.Available())
		assert.Zero(t, s.Waiting())
		s.ReleaseN(2)
		assert.Equal(t, 2, s.Available())
	})
}

// Raising the bound serves the waiters in FIFO order at once: the grants
// are complete when SetBound returns.
func TestSetBoundRaiseServesWaitersInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := ctxsync.NewBoundedSemaphore(2)
		require.NoError(t, s.AcquireN(ctx, 2))
		results := make([]<-chan error, 4)
		for i, n := range []int{2, 1, 1, 2} {
			results[i] = acquireAsync(ctx, s, n)
			synctest.Wait()
		}
		assert.Equal(t, 4, s.Waiting())

		s.SetBound(5) // 3 free: the first two are served, the third is next
		assert.Equal(t, 2, s.Waiting(), "granted before SetBound returns")
		synctest.Wait()
		assert.Empty(t, results[2], "the third waits")
		assert.Empty(t, results[3])
		assert.Equal(t, 0, s.Available())
		require.NoError(t, <-results[0])
		require.NoError(t, <-results[1])

		s.SetBound(7) // 2 more: the third (1) and the fourth (2) is one short
		assert.Equal(t, 1, s.Waiting())
		assert.Equal(t, 1, s.Available())
		require.NoError(t, <-results[2])
		s.Release()
		require.NoError(t, <-results[3])
		assert.Equal(t, 0, s.Available())
		s.ReleaseN(7)
		assert.Equal(t, 7, s.Available())
	})
}

// Lowered while a large request waits at the head: it fails at once with
// ErrExceedsBound, and the requests behind it move up.
func TestSetBoundLoweredFailsLargeHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := ctxsync.NewBoundedSemaphore(4)
		require.NoError(t, s.AcquireN(ctx, 2))
		large := acquireAsync(ctx, s, 4)
		synctest.Wait()
		small := acquireAsync(ctx, s, 1) // 2 are free, but the head holds it back
		synctest.Wait()
		mid := acquireAsync(ctx, s, 3)
		synctest.Wait()
		assert.Equal(t, 3, s.Waiting())

		s.SetBound(3) // held 2: one free
		assert.Equal(t, ctxsync.ErrExceedsBound, <-large)
		require.NoError(t, <-small, "moved up and served")
		assert.Equal(t, 1, s.Waiting(), "the request within the bound waits on")
		assert.Equal(t, 0, s.Available())
		assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(ctx, 4), "a newcomer above the bound")

		s.ReleaseN(2)
		synctest.Wait()
		assert.Empty(t, mid)
		s.Release() // the small one's
		require.NoError(t, <-mid)
		s.ReleaseN(3)
		assert.Equal(t, 3, s.Available())
	})
}

// Every waiting request above the new bound fails, wherever it stands,
// and the others keep their order; a request for nothing survives any
// bound.
func TestSetBoundRefusesEveryLargeWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := ctxsync.NewBoundedSemaphore(5)
		require.NoError(t, s.AcquireN(ctx, 5))
		sizes := []int{1, 5, 0, 3, 1, 4}
		results := make([]<-chan error, len(sizes))
		for i, n := range sizes {
			results[i] = acquireAsync(ctx, s, n)
			synctest.Wait()
		}
		s.SetBound(2)
		for _, i := range []int{1, 3, 5} {
			assert.Equal(t, ctxsync.ErrExceedsBound, <-results[i], "request %d for %d", i, sizes[i])
		}
		assert.Equal(t, 3, s.Waiting())
		s.ReleaseN(3) // retired
		synctest.Wait()
		assert.Equal(t, 3, s.Waiting())
		s.Release() // held 1: the head (1) is served, then the 0 behind it
		require.NoError(t, <-results[0])
		require.NoError(t, <-results[2])
		assert.Equal(t, 1, s.Waiting())

		s.SetBound(0) // the last (1) can never be served now
		assert.Equal(t, ctxsync.ErrExceedsBound, <-results[4])
		assert.Zero(t, s.Waiting())
		s.ReleaseN(2)
		assert.Equal(t, 0, s.Available())
		assert.NoError(t, s.AcquireN(ctx, 0))
	})
}

// R10: a waiter refused by a lowered bound reports ErrExceedsBound even if
// its context ended at the same moment. The waiter is held before it
// waits, so it cannot leave between the end of its context and SetBound.
func TestSetBoundRefusalWinsOverContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := holdParked(t)
		s := ctxsync.NewBoundedSemaphore(2)
		require.NoError(t, s.Acquire(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		waiter := acquireAsync(ctx, s, 2)
		synctest.Wait()
		cancel()
		s.SetBound(1)
		release()
		assert.Equal(t, ctxsync.ErrExceedsBound, <-waiter)
		assert.Equal(t, 0, s.Available())
		s.Release()
	})
}

// A waiter that leaves on its context while held permits are being retired
// changes nothing.
func TestSetBoundCancelledWaiterDuringExcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewBoundedSemaphore(3)
		require.NoError(t, s.AcquireN(context.Background(), 3))
		s.SetBound(1)
		ctx, cancel := context.WithCancel(context.Background())
		waiter := acquireAsync(ctx, s, 1)
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-waiter, context.Canceled)
		assert.Zero(t, s.Waiting())
		s.ReleaseN(3)
		assert.Equal(t, 1, s.Available())
		assert.True(t, s.TryAcquire())
	})
}

func TestSetBoundMisusePanics(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(3)
	require.NoError(t, s.Acquire(context.Background()))
	tests := []struct {
		name string
		call func()
		msg  string
	}{
		{"SetBound negative", func() { s.SetBound(-1) }, "ctxsync: negative semaphore bound"},
		{"release above held after lowering", func() { s.SetBound(0); s.ReleaseN(2) }, "ctxsync: BoundedSemaphore released more permits than are held"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bound, avail := s.Bound(), s.Available()
			assert.PanicsWithValue(t, tt.msg, tt.call)
			if tt.name == "SetBound negative" {
				assert.Equal(t, bound, s.Bound(), "changes nothing")
				assert.Equal(t, avail, s.Available())
			}
		})
	}
	assert.Equal(t, 0, s.Bound())
	s.Release() // the one held can still come back
	assert.Equal(t, 0, s.Available())
}

// R8: SetBound and Bound without waiters allocate nothing.
func TestSetBoundDoesNotAllocate(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(4)
	require.NoError(t, s.Acquire(context.Background()))
	allocs := testing.AllocsPerRun(100, func() {
		s.SetBound(8)
		s.SetBound(0)
		_ = s.Bound()
		s.Release()
		_ = s.TryAcquireN(0)
		s.SetBound(4)
		_ = s.TryAcquire()
	})
	assert.Zero(t, allocs)
}

// Stress: weighted acquirers with random cancellations race with releases
// and with a resizer. A request that started and was granted while one
// bound was in force finds no more permits held than that bound, counting
// those still held from before a lowering; at the end every permit of the
// bound in force is free.
func TestSetBoundStressRandomCancellation(t *testing.T) {
	const maxBound, goroutines, rounds = 6, 10, 300 * stressScale
	s := ctxsync.NewBoundedSemaphore(maxBound)
	// held counts permits from just after their grant to just before
	// their release, so it is never above the permits really held.
	var held atomic.Int64
	// era is the resizer's generation, odd while a SetBound is under way,
	// times 16, plus the bound in force while it is even.
	var era atomic.Int64
	era.Store(maxBound)
	stop := make(chan struct{})
	var resizer sync.WaitGroup
	resizer.Go(func() {
		rng := rand.New(rand.NewPCG(99, 1))
		for gen := int64(0); ; gen += 2 {
			select {
			case <-stop:
				s.SetBound(maxBound)
				return
			default:
			}
			b := rng.IntN(maxBound + 1)
			era.Store((gen+1)*16 + maxBound)
			s.SetBound(b)
			era.Store((gen+2)*16 + int64(b))
			runtime.Gosched()
		}
	})
	var checked atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for range rounds {
				n := rng.IntN(maxBound + 1)
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancel()
				}
				before := era.Load()
				var err error
				if rng.IntN(4) == 0 {
					if !s.TryAcquireN(n) {
						err = ctxsync.ErrQueueEmpty // any error: not taken
					}
				} else {
					err = s.AcquireN(ctx, n)
				}
				if err == nil {
					h := held.Add(int64(n))
					if h > maxBound {
						t.Errorf("%d permits held, largest bound %d", h, maxBound)
					}
					// The same bound throughout: the grant met it. (A request
					// for nothing may be granted while permits above it are held.)
					if after := era.Load(); n > 0 && after == before && (before/16)%2 == 0 {
						checked.Add(1)
						if b := before % 16; h > b {
							t.Errorf("%d permits held after a grant under bound %d", h, b)
						}
					}
					if a := s.Available(); a > maxBound {
						t.Errorf("Available %d above any bound", a)
					}
					held.Add(-int64(n))
					s.ReleaseN(n)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	resizer.Wait()
	t.Logf("%d grants checked against the bound in force", checked.Load())
	assert.Equal(t, maxBound, s.Bound())
	assert.Equal(t, maxBound, s.Available(), "every permit is back")
	assert.Zero(t, s.Waiting())
	assert.False(t, s.Locked())
	assert.True(t, s.TryAcquireN(maxBound))
}

// A raise passes over a waiter whose context has just ended, as a Release
// does: the permits go to the next in line, never to the leaver. The
// leaver is held before it waits, so it cannot leave between the end of
// its context and SetBound.
func TestSetBoundRaiseSkipsLeavingWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := holdParked(t)
		s := ctxsync.NewBoundedSemaphore(1)
		require.NoError(t, s.Acquire(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		leaver := acquireAsync(ctx, s, 1)
		synctest.Wait()
		next := acquireAsync(context.Background(), s, 1)
		synctest.Wait()
		cancel()
		assert.Equal(t, 2, s.Waiting(), "the leaver has not left yet")
		s.SetBound(2)
		release()
		require.NoError(t, <-next)
		assert.ErrorIs(t, <-leaver, context.Canceled)
		assert.Equal(t, 0, s.Available())
		assert.Zero(t, s.Waiting())
		s.ReleaseN(2)
		assert.Equal(t, 2, s.Available())
	})
}

// A waiting ticket larger than a lowered bound is decided at once with
// ErrExceedsBound, and the smaller ticket behind it moves up ("Waiting
// requests larger than the new bound, tickets included, fail at once").
func TestSetBoundDecidesWaitingTickets(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(3)
	require.True(t, s.TryAcquireN(2))
	big := s.AcquireTicket(3)
	small := s.AcquireTicket(1)
	require.False(t, isReady(big))
	require.False(t, isReady(small), "behind a waiting big request")

	s.SetBound(2)
	require.True(t, isReady(big))
	assert.ErrorIs(t, big.Err(), ctxsync.ErrExceedsBound)
	assert.False(t, big.Stop(), "already decided")
	// Two are held, and the bound is 2: the small one still waits, now at
	// the head.
	assert.False(t, isReady(small))
	assert.Equal(t, 1, s.Waiting())

	s.ReleaseN(1)
	require.True(t, isReady(small), "a Release serves the new head")
	assert.NoError(t, small.Err())
	assert.False(t, small.Stop())
	s.ReleaseN(2)
	assert.Equal(t, 2, s.Available())
}

// While permits held above a lowered bound are retired, a waiting ticket
// waits; it is granted once the holders are within the bound.
func TestSetBoundTicketWaitsWhileExcessRetires(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(4)
	require.True(t, s.TryAcquireN(4))
	s.SetBound(2) // 2 held above the bound
	tk := s.AcquireTicket(1)
	require.False(t, isReady(tk))
	s.ReleaseN(2) // retired: 2 held, bound 2
	assert.False(t, isReady(tk), "retired permits are not free")
	assert.Equal(t, 0, s.Available())
	s.ReleaseN(1)
	require.True(t, isReady(tk))
	assert.NoError(t, tk.Err())
	s.ReleaseN(2)
	assert.Equal(t, 2, s.Available())
}

// Waiting, of the semaphores and (in the first and last tests) of Lock.

// The snapshot counts a waiter whose context has just ended but that has
// not left yet. The waiters are held before they wait, so the moment
// between the end of their context and their leaving stays open.
func TestWaitingCountsWaiterNotYetLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := holdParked(t)
		var l ctxsync.Lock
		s := ctxsync.NewSemaphore(0)
		b := ctxsync.NewBoundedSemaphore(1)
		require.NoError(t, l.Lock(context.Background()))
		require.NoError(t, b.Acquire(context.Background()))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 3)
		go func() { done <- l.Lock(ctx) }()
		go func() { done <- s.Acquire(ctx) }()
		go func() { done <- b.Acquire(ctx) }()
		synctest.Wait()
		cancel()
		assert.Equal(t, 1, l.Waiting(), "Lock")
		assert.Equal(t, 1, s.Waiting(), "Semaphore")
		assert.Equal(t, 1, b.Waiting(), "BoundedSemaphore")
		release()
		synctest.Wait()
		assert.Zero(t, l.Waiting())
		assert.Zero(t, s.Waiting())
		assert.Zero(t, b.Waiting())
		for range 3 {
			assert.ErrorIs(t, <-done, context.Canceled)
		}
	})
}

type waitingSemaphore interface {
	anySemaphore
	Waiting() int
}

func TestSemaphoreWaitingCountsRequestsInLine(t *testing.T) {
	kinds := []struct {
		name string
		make func(n int) waitingSemaphore
	}{
		{"Semaphore", func(n int) waitingSemaphore { return ctxsync.NewSemaphore(n) }},
		{"BoundedSemaphore", func(n int) waitingSemaphore { return ctxsync.NewBoundedSemaphore(n) }},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				s := kind.make(2)
				assert.Zero(t, s.Waiting())
				require.NoError(t, s.AcquireN(ctx, 2))
				assert.Zero(t, s.Waiting(), "holders are not waiting")
				assert.False(t, s.TryAcquire())
				assert.Zero(t, s.Waiting())

				big := acquireAsync(ctx, s, 2)
				synctest.Wait()
				small := acquireAsync(ctx, s, 1)
				synctest.Wait()
				zero := acquireAsync(ctx, s, 0) // queues behind the others
				synctest.Wait()
				assert.Equal(t, 3, s.Waiting(), "every request in line, whatever its size")

				s.Release() // not enough for the head: nobody is granted
				assert.Equal(t, 3, s.Waiting())
				s.Release()
				require.NoError(t, <-big)
				assert.Equal(t, 2, s.Waiting(), "the granted head no longer counts")
				s.Release()
				require.NoError(t, <-small)
				require.NoError(t, <-zero)
				assert.Zero(t, s.Waiting())
				s.ReleaseN(2)
				assert.Zero(t, s.Waiting())
			})
		})
	}
}

func TestBoundedSemaphoreWaitingIgnoresRequestsAboveBound(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(1)
	require.NoError(t, s.Acquire(context.Background()))
	assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(context.Background(), 2))
	assert.Zero(t, s.Waiting(), "a request above the bound never waits")
	s.Release()
}

// R8: Waiting allocates nothing, with or without a line.
func TestWaitingDoesNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		s := ctxsync.NewSemaphore(0)
		b := ctxsync.NewBoundedSemaphore(1)
		count := func() {
			_ = l.Waiting()
			_ = s.Waiting()
			_ = b.Waiting()
		}
		assert.Zero(t, testing.AllocsPerRun(100, count), "no line")

		require.NoError(t, l.Lock(context.Background()))
		require.NoError(t, b.Acquire(context.Background()))
		done := make(chan error, 3)
		go func() { done <- l.Lock(context.Background()) }()
		go func() { done <- s.Acquire(context.Background()) }()
		go func() { done <- b.Acquire(context.Background()) }()
		synctest.Wait()
		assert.Zero(t, testing.AllocsPerRun(100, count), "with a line")
		assert.Equal(t, 1, l.Waiting()+s.Waiting()+b.Waiting()-2)

		l.Unlock()
		s.Release()
		b.Release()
		for range 3 {
			require.NoError(t, <-done)
		}
		l.Unlock()
		s.Release()
		b.Release()
	})
}

// Deterministic interleavings: inside a testing/synctest bubble a parked
// goroutine stays parked until the test lets it run, so "the context ends
// at the instant of a hand-off" is an exact schedule, not a hope.

// The waiter's context ends, and before it can leave, a Release comes: the
// permit is not handed to a waiter that is leaving, so it stays free.
func TestInterleaveSemaphoreCancelThenRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewSemaphore(0)
		ctx, cancel := context.WithCancel(context.Background())
		got := acquireAsync(ctx, s, 1)
		synctest.Wait()
		cancel()
		s.Release()
		assert.Equal(t, context.Canceled, <-got)
		assert.Equal(t, 1, s.Available(), "the permit is not lost")
		assert.False(t, s.Locked(), "no waiter left behind")
	})
}

// The Release comes first, then the context ends before the waiter runs:
// the grant is kept.
func TestInterleaveSemaphoreReleaseThenCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewSemaphore(0)
		ctx, cancel := context.WithCancel(context.Background())
		got := acquireAsync(ctx, s, 1)
		synctest.Wait()
		s.Release()
		cancel()
		assert.NoError(t, <-got)
		assert.Equal(t, 0, s.Available(), "the permit is held, not doubled")
	})
}

// An acquirer that has returned holds its permits: Available never counts
// them, so it is at most the limit less what the caller holds, even while
// the Release that served it is still running.
func TestOrderingSemaphoreAcquiredPermitsNotAvailable(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		const limit, goroutines = 2, 4
		rounds := orderingRounds * stressScale
		s := newSem(limit)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 21))
				for range rounds {
					n := 1 + rng.IntN(limit)
					if err := s.AcquireN(context.Background(), n); err != nil {
						t.Errorf("AcquireN(%d): %v", n, err)
						return
					}
					if a := s.Available(); a > limit-n {
						t.Errorf("holding %d of %d permits, Available() = %d", n, limit, a)
					}
					jitter(rng)
					s.ReleaseN(n)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, limit, s.Available(), fmt.Sprintf("every permit back after %d rounds", rounds))
	})
}
