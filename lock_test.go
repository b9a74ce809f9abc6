package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

func TestLockZeroValue(t *testing.T) {
	var l ctxsync.Lock
	assert.False(t, l.Locked())
	require.NoError(t, l.Lock(context.Background()))
	assert.True(t, l.Locked())
	assert.False(t, l.TryLock())
	l.Unlock()
	assert.False(t, l.Locked())
	assert.True(t, l.TryLock())
	l.Unlock()
}

// R1: a done context fails even when the lock is free.
func TestLockDoneContextFailsWhenFree(t *testing.T) {
	var l ctxsync.Lock
	err := l.Lock(cancelled())
	assert.Equal(t, context.Canceled, err)
	assert.False(t, l.Locked())
}

// R2: the error is exactly ctx.Err(), for both kinds of ending.
func TestLockReturnsExactContextError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := l.Lock(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, ctx.Err(), err)

		ctx2, cancel2 := context.WithCancelCause(context.Background())
		go cancel2(assert.AnError)
		err = l.Lock(ctx2)
		assert.Equal(t, context.Canceled, err, "ctx.Err(), not the cause")

		assert.True(t, l.Locked(), "failed Lock calls leave the lock as it was")
		l.Unlock()
		assert.False(t, l.Locked())
	})
}

// R4: blocked Lock calls are served in the order they started waiting, and
// the hand-off leaves no gap for TryLock.
func TestLockFIFOHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 8
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		order := make(chan int, n)
		for i := range n {
			go func() {
				if assert.NoError(t, l.Lock(context.Background())) {
					order <- i
				}
			}()
			synctest.Wait() // i is parked before i+1 starts
		}
		for i := range n {
			assert.False(t, l.TryLock(), "TryLock must not overtake waiters")
			l.Unlock()
			assert.True(t, l.Locked(), "ownership passes straight to the waiter")
			assert.Equal(t, i, <-order)
		}
		l.Unlock()
		assert.False(t, l.Locked())
	})
}

// A waiter that gives up lets the next one in line proceed.
func TestLockCancelledHeadDoesNotBlockNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { first <- l.Lock(ctx) }()
		synctest.Wait()
		second := make(chan error, 1)
		go func() { second <- l.Lock(context.Background()) }()
		synctest.Wait()

		cancel()
		assert.Equal(t, context.Canceled, <-first)
		l.Unlock()
		assert.NoError(t, <-second)
		assert.True(t, l.Locked())
		l.Unlock()
		assert.False(t, l.Locked())
	})
}

// A cancelled waiter is skipped by Unlock even when it has not left the line
// yet: the lock goes to the next waiter and is not lost.
func TestLockUnlockSkipsCancelledWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { first <- l.Lock(ctx) }()
		synctest.Wait()
		cancel()
		l.Unlock() // the cancelled waiter may or may not have left yet
		err := <-first
		if err == nil {
			// It was woken by the grant before seeing the cancellation.
			l.Unlock()
		} else {
			assert.Equal(t, context.Canceled, err)
		}
		assert.False(t, l.Locked())
		assert.True(t, l.TryLock())
		l.Unlock()
	})
}

// R3 under stress: random cancellations racing with hand-offs never break
// mutual exclusion and never lose the lock.
func TestLockStressRandomCancellation(t *testing.T) {
	const goroutines, rounds = 16, 300 * stressScale
	var l ctxsync.Lock
	var inside, entered atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancel()
				}
				var ok bool
				if rng.IntN(5) == 0 {
					ok = l.TryLock()
				} else {
					ok = l.Lock(ctx) == nil
				}
				if ok {
					if inside.Add(1) != 1 {
						t.Error("two holders at once")
					}
					entered.Add(1)
					inside.Add(-1)
					l.Unlock()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	assert.False(t, l.Locked(), "the lock is free once everyone is done")
	assert.True(t, l.TryLock())
	l.Unlock()
	assert.Positive(t, entered.Load())
}

func TestLockUnlockOfUnlockedPanics(t *testing.T) {
	var l ctxsync.Lock
	assert.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", l.Unlock)
	assert.False(t, l.Locked())
	require.NoError(t, l.Lock(context.Background()))
	l.Unlock()
}

// R8: calls that do not block allocate nothing.
func TestLockNonBlockingCallsDoNotAllocate(t *testing.T) {
	var l ctxsync.Lock
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		_ = l.Lock(ctx)
		l.Unlock()
		if l.TryLock() {
			l.Unlock()
		}
		_ = l.Locked()
	})
	assert.Zero(t, allocs)
}

// R1, R2: a context whose deadline has passed is done like a cancelled one:
// Lock fails with context.DeadlineExceeded, free lock or not, and takes
// nothing.
func TestLockExpiredDeadline(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var l ctxsync.Lock
	assert.Equal(t, context.DeadlineExceeded, l.Lock(ctx))
	require.False(t, l.Locked(), "a free lock stays free")

	require.NoError(t, l.Lock(context.Background()))
	assert.Equal(t, context.DeadlineExceeded, l.Lock(ctx))
	assert.True(t, l.Locked())
	l.Unlock()
	assert.False(t, l.Locked(), "the failed call left no waiter to hand the lock to")
}
