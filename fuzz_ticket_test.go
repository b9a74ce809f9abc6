package ctxsync_test

// Fuzz targets for tickets: the sequential models of fuzz_test.go, driven
// by byte strings that mix tickets with blocking calls, Try calls,
// cancellations and Stops. A ticket is decided by the very call that
// serves it, so after each step the model says exactly which tickets are
// decided, with what, and which Stop wins.

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// ticketCall is a ticket the fuzzing goroutine holds, with the model's
// view of it: its pending record stands in the model's lines as a blocked
// call's does.
type ticketCall struct {
	*pending
	tk      ticketLike
	item    func() int // a GetTicket's Item; nil for other tickets
	stopped bool       // a Stop returned true
}

func newTicketCall(tickets *[]*ticketCall, tk ticketLike, n int, item func() int) *ticketCall {
	tc := &ticketCall{pending: &pending{n: n, cancel: func() {}}, tk: tk, item: item}
	*tickets = append(*tickets, tc)
	return tc
}

// pickTicket returns the i'th ticket, or nil if there is none.
func pickTicket(tickets []*ticketCall, i int) *ticketCall {
	if len(tickets) == 0 {
		return nil
	}
	return tickets[i%len(tickets)]
}

// stopTicket stops tc, which must return true exactly when the model has it
// still waiting; then leave takes it out of the model's lines and runs the
// model's policy for a waiter that leaves.
func stopTicket(t *testing.T, tc *ticketCall, leave func(p *pending)) {
	want := !tc.over && !tc.stopped
	if want {
		leave(tc.pending)
		tc.stopped = true
	}
	require.Equal(t, want, tc.tk.Stop())
}

// checkTickets compares every ticket with the model: decided ones are
// Ready with the model's outcome, waiting ones are not, stopped ones are
// spent.
func checkTickets(t *testing.T, tickets []*ticketCall) {
	for _, tc := range tickets {
		switch {
		case tc.stopped:
			require.False(t, isReady(tc.tk), "a stopped ticket's Ready closed")
			require.Equal(t, ctxsync.ErrTicketStopped, tc.tk.Err())
		case tc.over:
			require.True(t, isReady(tc.tk), "the model says the ticket is decided, want %v", tc.want)
			require.Equal(t, tc.want.err, tc.tk.Err())
			if tc.item != nil {
				require.Equal(t, tc.want.n, tc.item())
			}
		default:
			require.False(t, isReady(tc.tk), "the ticket is decided, but the model says it waits")
			require.NoError(t, tc.tk.Err())
		}
	}
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

func FuzzSemaphoreTickets(f *testing.F) {
	f.Add([]byte{1, 2, 4, 3, 4, 1, 1, 1, 5, 0, 2, 2, 2, 1, 5, 1})
	f.Add([]byte{0, 1, 4, 2, 1, 1, 4, 0, 2, 1, 5, 0, 2, 3, 3, 0, 2, 1})
	f.Add([]byte{1, 3, 4, 4, 4, 3, 4, 1, 2, 1, 5, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		bounded, size := data[0]%2 == 1, int(data[1]%4)
		data = data[2:]
		m := &semaSpec{avail: size, bound: -1}
		var s ticketSemaphore = ctxsync.NewSemaphore(size)
		if bounded {
			m.bound = size
			s = ctxsync.NewBoundedSemaphore(size)
		}
		synctest.Test(t, func(t *testing.T) {
			var calls []*pending
			var tickets []*ticketCall
			join := func(p *pending) {
				switch {
				case m.bound >= 0 && p.n > m.bound:
					p.finish(opOutput{err: ctxsync.ErrExceedsBound})
				case len(m.line) == 0 && m.avail >= p.n:
					m.avail -= p.n
					p.finish(opOutput{})
				default:
					m.line = append(m.line, p)
				}
			}
			leave := func(p *pending) {
				m.line = removeWaiter(m.line, p)
				m.serve() // it may have held back the others
			}
			for len(data) >= 2 {
				op, n := data[0]%7, int(data[1]%5)
				data = data[2:]
				switch op {
				case 0:
					want := (m.bound < 0 || n <= m.bound) && len(m.line) == 0 && m.avail >= n
					if want {
						m.avail -= n
					}
					require.Equal(t, want, s.TryAcquireN(n))
				case 1:
					join(startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, n)} }))
				case 2:
					if m.bound >= 0 && m.avail+n > m.bound {
						require.Panics(t, func() { s.ReleaseN(n) })
					} else {
						m.avail += n
						m.serve()
						s.ReleaseN(n)
					}
				case 3:
					if p := cancelPending(calls, n); p != nil {
						leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					join(newTicketCall(&tickets, s.AcquireTicket(n), n, nil).pending)
				case 5:
					if tc := pickTicket(tickets, n); tc != nil {
						stopTicket(t, tc, leave)
					}
				case 6:
					require.Panics(t, func() { s.AcquireTicket(-1 - n) })
				}
				calls = checkPending(t, calls)
				checkTickets(t, tickets)
				require.Equal(t, m.avail, s.Available())
				require.Equal(t, len(m.line) > 0 || m.avail == 0, s.Locked())
			}
			for _, tc := range tickets {
				stopTicket(t, tc, leave)
			}
			calls = checkPending(t, calls)
			// Cancel the line from its back: a waiter that leaves serves
			// those behind it, so they must have given up already (the
			// real line then drops them) or they could be served.
			for i := len(m.line) - 1; i >= 0; i-- {
				m.line[i].cancel()
			}
			for _, p := range calls {
				p.cancel()
				m.line = removeWaiter(m.line, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
			checkTickets(t, tickets)
		})
	})
}

func FuzzQueueTickets(f *testing.F) {
	f.Add([]byte{1, 0, 9, 0, 9, 0, 2, 1, 10, 0, 0, 2, 1, 0, 8, 3, 5, 0})
	f.Add([]byte{1, 1, 0, 1, 8, 2, 8, 3, 10, 1, 1, 0, 3, 0, 9, 0, 6, 0})
	f.Add([]byte{2, 2, 9, 0, 0, 5, 9, 0, 8, 1, 8, 2, 8, 3, 1, 0, 7, 0, 7, 0, 5, 0})
	// The FIFO ring at capacities 4, 3 and 1024: tickets parked for room
	// and for items, stopped, granted by TryGet and TryPut, and shut down.
	f.Add([]byte{4, 0, 0, 1, 0, 2, 0, 3, 0, 4, 8, 5, 8, 6, 10, 1, 1, 0, 3, 0, 7, 0, 7, 0, 6, 0, 11, 0})
	f.Add([]byte{3, 0, 9, 0, 9, 0, 3, 0, 0, 1, 8, 2, 0, 3, 0, 4, 0, 5, 8, 6, 10, 0, 5, 0, 1, 0, 1, 0, 1, 0, 7, 0, 11, 0})
	f.Add([]byte{5, 0, 8, 1, 9, 0, 9, 0, 0, 2, 10, 0, 8, 3, 1, 0, 7, 0, 7, 0, 11, 0, 6, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		m := newQueueSpec(data[0], data[1])
		data = data[2:]
		synctest.Test(t, func(t *testing.T) {
			q := m.newQueue(t)
			var calls []*pending
			var tickets []*ticketCall
			leave := func(p *pending) {
				m.putters = removeWaiter(m.putters, p)
				m.getters = removeWaiter(m.getters, p)
			}
			for len(data) >= 2 {
				op, arg := data[0]%12, int(data[1]%8)
				data = data[2:]
				switch op {
				case 0: // TryPut
					require.Equal(t, m.tryPut(arg), q.TryPut(arg))
				case 1: // TryGet
					want := m.tryGet()
					v, err := q.TryGet()
					require.Equal(t, want, opOutput{v, err})
				case 2:
					m.joinPut(startCall(&calls, arg, func(ctx context.Context) opOutput { return opOutput{err: q.Put(ctx, arg)} }))
				case 3:
					m.joinGet(startCall(&calls, 0, func(ctx context.Context) opOutput { v, err := q.Get(ctx); return opOutput{v, err} }))
				case 4:
					if p := cancelPending(calls, arg); p != nil {
						leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 5:
					m.shutdown()
					q.Shutdown()
				case 6:
					var want []int
					for len(m.items) > 0 {
						want = append(want, m.pop())
					}
					m.tasks = max(m.tasks-len(want), 0)
					m.shutdown()
					require.Equal(t, want, q.ShutdownNow())
				case 7:
					if m.tasks == 0 {
						require.Panics(t, q.TaskDone)
					} else {
						m.tasks--
						q.TaskDone()
					}
				case 8:
					m.joinPut(newTicketCall(&tickets, q.PutTicket(arg), arg, nil).pending)
				case 9:
					g := q.GetTicket()
					m.joinGet(newTicketCall(&tickets, g, 0, g.Item).pending)
				case 10:
					if tc := pickTicket(tickets, arg); tc != nil {
						stopTicket(t, tc, leave)
					}
				case 11:
					want := context.Canceled
					if m.tasks == 0 {
						want = nil
					}
					require.Equal(t, want, q.Join(cancelled()))
				}
				calls = checkPending(t, calls)
				checkTickets(t, tickets)
				require.Equal(t, len(m.items), q.Len())
			}
			for _, tc := range tickets {
				stopTicket(t, tc, leave)
			}
			for _, p := range calls {
				p.cancel()
				leave(p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
			checkTickets(t, tickets)
		})
	})
}
