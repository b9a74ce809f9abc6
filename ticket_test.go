package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// ticketLike is what Ticket and GetTicket[T] have in common.
type ticketLike interface {
	Ready() <-chan struct{}
	Err() error
	Stop() bool
}

var (
	_ ticketLike = (*ctxsync.Ticket)(nil)
	_ ticketLike = (*ctxsync.GetTicket[int])(nil)
)

// isReady reports whether t's Ready channel is closed now.
func isReady(t ticketLike) bool {
	select {
	case <-t.Ready():
		return true
	default:
		return false
	}
}

// assertStopped checks everything a spent ticket promises: Ready never
// closes, Err is ErrTicketStopped, and later Stops return false. It uses
// assert, not require, so that any goroutine may call it.
func assertStopped(t *testing.T, tk ticketLike) bool {
	t.Helper()
	return assert.False(t, isReady(tk), "a stopped ticket's Ready never closes") &&
		assert.Equal(t, ctxsync.ErrTicketStopped, tk.Err()) &&
		assert.False(t, tk.Stop(), "only one Stop returns true") &&
		assert.False(t, isReady(tk)) &&
		assert.Equal(t, ctxsync.ErrTicketStopped, tk.Err())
}

func TestErrTicketStoppedText(t *testing.T) {
	assert.EqualError(t, ctxsync.ErrTicketStopped, "ctxsync: ticket stopped")
}

// R6: a zero Ticket or GetTicket stands in no line; its methods panic
// with a message that says where tickets come from.
func TestZeroTicketPanics(t *testing.T) {
	const msg = "ctxsync: zero Ticket; tickets come from LockTicket, AcquireTicket, PutTicket or GetTicket"
	var tk ctxsync.Ticket
	var g ctxsync.GetTicket[int]
	assert.PanicsWithValue(t, msg, func() { tk.Ready() })
	assert.PanicsWithValue(t, msg, func() { _ = tk.Err() })
	assert.PanicsWithValue(t, msg, func() { tk.Stop() })
	assert.PanicsWithValue(t, msg, func() { g.Ready() })
	assert.PanicsWithValue(t, msg, func() { _ = g.Err() })
	assert.PanicsWithValue(t, msg, func() { g.Stop() })
	assert.PanicsWithValue(t, msg, func() { g.Item() })
}

// R9: a goroutine waiting for a ticket made inside a testing/synctest
// bubble is durably blocked, so synctest.Wait returns while it waits, and
// fake time can move past a timer it waits on beside it.
func TestTicketWaitIsDurablyBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		got := make(chan string, 1)
		go func() {
			tk := l.LockTicket()
			select {
			case <-tk.Ready():
				got <- "lock"
				l.Unlock()
			case <-time.After(time.Hour):
				if !tk.Stop() && tk.Err() == nil {
					l.Unlock()
				}
				got <- "timeout"
			}
		}()
		synctest.Wait() // returns only if the goroutine is durably blocked
		assert.Empty(t, got)
		time.Sleep(2 * time.Hour) // fake time inside the bubble
		assert.Equal(t, "timeout", <-got)
		l.Unlock()
		assert.False(t, l.Locked())
	})
}
