package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

func FuzzLock(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 0, 2, 0, 3, 1, 2, 0, 2, 0, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 3, 0, 2, 0, 2, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var l ctxsync.Lock
			held := false
			var line, calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%5, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					want := !held && len(line) == 0
					held = held || want
					require.Equal(t, want, l.TryLock())
				case 1:
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: l.Lock(ctx)} })
					if !held && len(line) == 0 {
						held = true
						p.finish(opOutput{})
					} else {
						line = append(line, p)
					}
				case 2:
					switch {
					case !held:
						require.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", l.Unlock)
					case len(line) > 0:
						line[0].finish(opOutput{}) // handed over: still held
						line = line[1:]
						l.Unlock()
					default:
						held = false
						l.Unlock()
					}
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						line = removeWaiter(line, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					require.Equal(t, context.Canceled, l.Lock(cancelled()))
				}
				calls = checkPending(t, calls)
				require.Equal(t, held, l.Locked())
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
			held := false
			var line, calls []*pending
			var tickets []*ticketCall
			join := func(p *pending) {
				if !held && len(line) == 0 {
					held = true
					p.finish(opOutput{})
				} else {
					line = append(line, p)
				}
			}
			leave := func(p *pending) { line = removeWaiter(line, p) }
			for len(data) >= 2 {
				op, arg := data[0]%7, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					want := !held && len(line) == 0
					held = held || want
					require.Equal(t, want, l.TryLock())
				case 1:
					join(startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: l.Lock(ctx)} }))
				case 2:
					switch {
					case !held:
						require.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", l.Unlock)
					case len(line) > 0:
						line[0].finish(opOutput{}) // handed over: still held
						line = line[1:]
						l.Unlock()
					default:
						held = false
						l.Unlock()
					}
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					join(newTicketCall(&tickets, l.LockTicket(), 0, nil).pending)
				case 5:
					if tc := pickTicket(tickets, arg); tc != nil {
						stopTicket(t, tc, leave)
					}
				case 6:
					require.Equal(t, context.Canceled, l.Lock(cancelled()))
				}
				calls = checkPending(t, calls)
				checkTickets(t, tickets)
				require.Equal(t, held, l.Locked())
			}
			for _, tc := range tickets {
				stopTicket(t, tc, leave)
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
