package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// lockSpec is the sequential model of a Lock with its line.
type lockSpec struct {
	held bool
	line []*pending
}

// tryLock is TryLock in the model: no barging past the line.
func (m *lockSpec) tryLock() bool {
	ok := !m.held && len(m.line) == 0
	m.held = m.held || ok
	return ok
}

// join is a call or a ticket asking for the lock: granted if it is free
// and nobody waits, else in line.
func (m *lockSpec) join(p *pending) {
	if !m.held && len(m.line) == 0 {
		m.held = true
		p.finish(opOutput{})
	} else {
		m.line = append(m.line, p)
	}
}

func (m *lockSpec) leave(p *pending) { m.line = removeWaiter(m.line, p) }

// unlock is Unlock in the model and in l: the lock is handed to the head
// of the line, if any, and an Unlock of an unlocked Lock panics.
func (m *lockSpec) unlock(t *testing.T, l *ctxsync.Lock) {
	switch {
	case !m.held:
		require.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", l.Unlock)
	case len(m.line) > 0:
		m.line[0].finish(opOutput{}) // handed over: still held
		m.line = m.line[1:]
		l.Unlock()
	default:
		m.held = false
		l.Unlock()
	}
}

func FuzzLock(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 0, 2, 0, 3, 1, 2, 0, 2, 0, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 3, 0, 2, 0, 2, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var l ctxsync.Lock
			var m lockSpec
			var calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%5, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					require.Equal(t, m.tryLock(), l.TryLock())
				case 1:
					m.join(startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: l.Lock(ctx)} }))
				case 2:
					m.unlock(t, &l)
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						m.leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					require.Equal(t, context.Canceled, l.Lock(cancelled()))
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.held, l.Locked())
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

func FuzzLockTickets(f *testing.F) {
	f.Add([]byte{4, 0, 4, 0, 1, 0, 4, 0, 5, 1, 2, 0, 2, 0, 5, 2, 2, 0})
	f.Add([]byte{1, 0, 4, 0, 4, 0, 5, 0, 5, 1, 2, 0, 3, 2, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var l ctxsync.Lock
			var m lockSpec
			var calls []*pending
			var tickets []*ticketCall
			for len(data) >= 2 {
				op, arg := data[0]%7, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					require.Equal(t, m.tryLock(), l.TryLock())
				case 1:
					m.join(startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: l.Lock(ctx)} }))
				case 2:
					m.unlock(t, &l)
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						m.leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					m.join(newTicketCall(&tickets, l.LockTicket(), 0, nil).pending)
				case 5:
					if tc := pickTicket(tickets, arg); tc != nil {
						stopTicket(t, tc, m.leave)
					}
				case 6:
					require.Equal(t, context.Canceled, l.Lock(cancelled()))
				}
				calls = checkPending(t, calls)
				checkTickets(t, tickets)
				require.Equal(t, m.held, l.Locked())
			}
			for _, tc := range tickets {
				stopTicket(t, tc, m.leave)
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
			checkTickets(t, tickets)
		})
	})
}
