package ctxsync_test

// Schedules that stop an RLock or RUnlock between its fast path's atomic
// add and the rest of the call (StallRLock, StallRUnlock in
// export_rwlock_test.go), so that the lock can fold back to fast under an
// add that is not settled yet: a schedule that a real goroutine meets only
// when it is descheduled at that very instant.

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// An RLock adds while a writer holds the lock, and the writer unlocks
// before the RLock looks again: the fold takes the add in as a read lock,
// granted when nobody waited and no writer held the lock, and the RLock
// returns nil holding it.
func TestRWLockStalledRLockAcrossUnlock(t *testing.T) {
	var rw ctxsync.RWLock
	require.True(t, rw.TryLock())
	resume := rw.StallRLock(context.Background())
	requireState(t, &rw, true, 0, 0) // the add is not a read lock yet
	rw.Unlock()
	requireState(t, &rw, false, 1, 0)
	assert.False(t, rw.TryLock(), "the stalled RLock holds a read lock")
	require.NoError(t, resume())
	requireState(t, &rw, false, 1, 0)
	rw.RUnlock()
	require.True(t, rw.TryLock(), "nothing left behind")
	rw.Unlock()
}

// The same across a Downgrade: both the downgraded writer and the stalled
// RLock hold read locks.
func TestRWLockStalledRLockAcrossDowngrade(t *testing.T) {
	var rw ctxsync.RWLock
	require.True(t, rw.TryLock())
	resume := rw.StallRLock(context.Background())
	rw.Downgrade()
	requireState(t, &rw, false, 2, 0)
	require.NoError(t, resume())
	rw.RUnlock()
	rw.RUnlock()
	requireState(t, &rw, false, 0, 0)
	require.True(t, rw.TryLock())
	rw.Unlock()
}

// Readers hold the lock and a writer waits; an RUnlock and an RLock have
// each made their add, which cancel out in the count, when the writer
// leaves on its context. The fold counts the read lock given back as given
// back and the one taken as taken, and neither call undoes anything after.
func TestRWLockStalledAddsAcrossFold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryRLock())
		require.True(t, rw.TryRLock())
		ctx, cancel := context.WithCancel(context.Background())
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		resumeUnlock := rw.StallRUnlock()
		resumeLock := rw.StallRLock(context.Background())
		requireState(t, &rw, false, 2, 1) // neither add counts yet
		cancel()
		require.Equal(t, context.Canceled, <-w)
		requireState(t, &rw, false, 2, 0) // one given back, one taken
		resumeUnlock()
		require.NoError(t, resumeLock())
		requireState(t, &rw, false, 2, 0)
		rw.RUnlock()
		rw.RUnlock()
		requireState(t, &rw, false, 0, 0)
		require.True(t, rw.TryLock())
		rw.Unlock()
	})
}

// An RLock whose add met a writer, and whose take-back meets a word moved
// by another add of the same epoch, tries again and then waits in line as
// usual.
func TestRWLockStalledRLockRetriesTakeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryLock())
		first := rw.StallRLock(context.Background())
		second := rw.StallRLock(context.Background())
		got := make(chan error, 2)
		go func() { got <- first() }()
		go func() { got <- second() }()
		synctest.Wait()
		requireState(t, &rw, true, 0, 2)
		rw.Unlock()
		require.NoError(t, <-got)
		require.NoError(t, <-got)
		requireState(t, &rw, false, 2, 0)
		rw.RUnlock()
		rw.RUnlock()
	})
}

// A misused RUnlock under a writer, stalled across the writer's Unlock:
// the fold comes out below zero, and the RUnlock puts the count back and
// panics, leaving the lock free.
func TestRWLockStalledMisusedRUnlockAcrossFold(t *testing.T) {
	var rw ctxsync.RWLock
	require.True(t, rw.TryLock())
	resume := rw.StallRUnlock()
	rw.Unlock()
	assert.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", resume)
	requireState(t, &rw, false, 0, 0)
	require.True(t, rw.TryLock())
	rw.Unlock()
}

// A misused RUnlock on a free lock, stalled before it puts the count back:
// a writer arriving meanwhile waits for the count to come back, then takes
// the lock.
func TestRWLockStalledMisusedRUnlockOnFreeLock(t *testing.T) {
	var rw ctxsync.RWLock
	resume := rw.StallRUnlock()
	got := wlockAsync(context.Background(), &rw)
	assert.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", resume)
	require.NoError(t, <-got)
	requireState(t, &rw, true, 0, 0)
	rw.Unlock()
}
