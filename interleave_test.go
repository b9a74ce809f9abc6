package ctxsync_test

// Deterministic interleavings: inside a testing/synctest bubble a parked
// goroutine stays parked until the test lets it run, so "the context ends
// at the instant of a hand-off" is an exact schedule, not a hope.

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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

func TestInterleaveQueueCancelThenPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		ctx, cancel := context.WithCancel(context.Background())
		got := getAsync(ctx, q)
		synctest.Wait()
		cancel()
		require.NoError(t, q.TryPut(7))
		assert.Equal(t, getResult{0, context.Canceled}, <-got)
		assert.Equal(t, 1, q.Len(), "the item was stored, not handed to a leaving Get")
	})
}

func TestInterleaveQueuePutThenCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		ctx, cancel := context.WithCancel(context.Background())
		got := getAsync(ctx, q)
		synctest.Wait()
		require.NoError(t, q.TryPut(7))
		cancel()
		assert.Equal(t, getResult{7, nil}, <-got, "the hand-off is kept")
		assert.True(t, q.Empty())
	})
}

// A waiter's context ends just as the last party arrives, before it could
// withdraw: the trip comes first and counts it.
func TestInterleaveBarrierWithdrawRacesTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		ctx, cancel := context.WithCancel(context.Background())
		first := waitAsync(ctx, b)
		synctest.Wait()
		cancel()
		i, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, i)
		assert.Equal(t, barrierResult{0, nil}, <-first, "a tripped round is final")
	})
}

// The waiter withdraws first: the last party now waits for a new partner.
func TestInterleaveBarrierWithdrawBeforeTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		ctx, cancel := context.WithCancel(context.Background())
		first := waitAsync(ctx, b)
		synctest.Wait()
		cancel()
		synctest.Wait()
		assert.Equal(t, barrierResult{-1, context.Canceled}, <-first)
		assert.Equal(t, 0, b.Waiting(), "no waiter left behind")
		second := waitAsync(context.Background(), b)
		synctest.Wait()
		i, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, i)
		assert.Equal(t, barrierResult{0, nil}, <-second)
	})
}

// Shutdown while Gets wait on an empty queue: all of them wake with
// ErrQueueShutDown.
func TestInterleaveShutdownWithBlockedGets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		var gets []<-chan getResult
		for range 3 {
			gets = append(gets, getAsync(context.Background(), q))
		}
		synctest.Wait()
		q.Shutdown()
		for _, g := range gets {
			assert.Equal(t, getResult{0, ctxsync.ErrQueueShutDown}, <-g)
		}
	})
}

// Shutdown while Puts wait on a full queue: the Puts fail without adding,
// and Gets drain what was there before failing too.
func TestInterleaveShutdownWithBlockedPuts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		require.NoError(t, q.TryPut(1))
		var puts []<-chan error
		for i := range 3 {
			puts = append(puts, putAsync(context.Background(), q, 10+i))
		}
		synctest.Wait()
		q.Shutdown()
		for _, p := range puts {
			assert.Equal(t, ctxsync.ErrQueueShutDown, <-p)
		}
		assert.Equal(t, getResult{1, nil}, <-getAsync(context.Background(), q))
		assert.Equal(t, getResult{0, ctxsync.ErrQueueShutDown}, <-getAsync(context.Background(), q))
	})
}

// A Lock waiter whose context ends leaves no trace: the next Unlock frees
// the lock instead of handing it to nobody.
func TestInterleaveLockWaiterLeavesNoTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { got <- l.Lock(ctx) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		assert.Equal(t, context.Canceled, <-got)
		l.Unlock()
		assert.False(t, l.Locked())
		assert.True(t, l.TryLock())
		l.Unlock()
	})
}
