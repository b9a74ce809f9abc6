package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// "How many wait": the calls in line now, not yet granted.
func TestLockWaitingCountsCallsInLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var l ctxsync.Lock
		assert.Zero(t, l.Waiting(), "zero value")
		require.NoError(t, l.Lock(ctx))
		assert.Zero(t, l.Waiting(), "the holder is not waiting")
		assert.False(t, l.TryLock())
		assert.Zero(t, l.Waiting(), "a failed TryLock leaves no trace")

		done := make(chan error, 3)
		for range 3 {
			go func() { done <- l.Lock(ctx) }()
			synctest.Wait()
		}
		assert.Equal(t, 3, l.Waiting())
		l.Unlock()
		require.NoError(t, <-done)
		assert.Equal(t, 2, l.Waiting(), "a granted call no longer counts")
		l.Unlock()
		require.NoError(t, <-done)
		l.Unlock()
		require.NoError(t, <-done)
		assert.Zero(t, l.Waiting())
		l.Unlock()
		assert.Zero(t, l.Waiting())
	})
}

// A waiter that leaves on its context stops counting once it has left.
func TestLockWaitingDropsLeavers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Lock(ctx) }()
		synctest.Wait()
		assert.Equal(t, 1, l.Waiting())
		cancel()
		synctest.Wait()
		assert.Zero(t, l.Waiting())
		assert.ErrorIs(t, <-done, context.Canceled)
		l.Unlock()
	})
}

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
