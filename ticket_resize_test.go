package ctxsync_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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
