package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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
