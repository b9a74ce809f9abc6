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
