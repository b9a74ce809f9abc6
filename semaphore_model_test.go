package ctxsync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// semaSpec is the sequential model of a Semaphore or BoundedSemaphore.
type semaSpec struct {
	avail, bound int // bound < 0: unbounded
	line         []*pending
}

func (m *semaSpec) serve() {
	for len(m.line) > 0 && m.avail >= m.line[0].n {
		m.avail -= m.line[0].n
		m.line[0].finish(opOutput{})
		m.line = m.line[1:]
	}
}

// tryAcquire is TryAcquireN in the model: no waiting, and no barging.
func (m *semaSpec) tryAcquire(n int) bool {
	ok := (m.bound < 0 || n <= m.bound) && len(m.line) == 0 && m.avail >= n
	if ok {
		m.avail -= n
	}
	return ok
}

// join is a call or a ticket asking for p.n permits: refused above the
// bound, granted if the line is empty and the permits are there, else in
// line.
func (m *semaSpec) join(p *pending) {
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

// leave takes p out of the line, which may let those behind it be served.
func (m *semaSpec) leave(p *pending) {
	m.line = removeWaiter(m.line, p)
	m.serve()
}

// release is ReleaseN in the model and in s: past the bound it panics.
func (m *semaSpec) release(t *testing.T, s anySemaphore, n int) {
	if m.bound >= 0 && m.avail+n > m.bound {
		require.Panics(t, func() { s.ReleaseN(n) })
		return
	}
	m.avail += n
	m.serve()
	s.ReleaseN(n)
}

func FuzzSemaphore(f *testing.F) {
	f.Add([]byte{0, 2, 1, 3, 1, 1, 2, 1, 3, 0, 2, 2})
	f.Add([]byte{1, 3, 1, 4, 1, 1, 3, 0, 0, 2, 2, 3})
	f.Add([]byte{1, 1, 0, 1, 2, 1, 2, 1, 4, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		bounded, size := data[0]%2 == 1, int(data[1]%4)
		data = data[2:]
		m := &semaSpec{avail: size, bound: -1}
		var s anySemaphore = ctxsync.NewSemaphore(size)
		if bounded {
			m.bound = size
			s = ctxsync.NewBoundedSemaphore(size)
		}
		synctest.Test(t, func(t *testing.T) {
			var calls []*pending
			for len(data) >= 2 {
				op, n := data[0]%5, int(data[1]%5)
				data = data[2:]
				switch op {
				case 0: // TryAcquireN
					require.Equal(t, m.tryAcquire(n), s.TryAcquireN(n))
				case 1: // AcquireN
					m.join(startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, n)} }))
				case 2: // ReleaseN
					m.release(t, s, n)
				case 3: // cancel a waiting call
					if p := cancelPending(calls, n); p != nil {
						m.leave(p) // it may have held back the others
						p.finish(opOutput{err: context.Canceled})
					}
				case 4: // a done context changes nothing
					err := s.AcquireN(cancelled(), n)
					if m.bound >= 0 && n > m.bound {
						require.Equal(t, ctxsync.ErrExceedsBound, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.avail, s.Available())
				require.Equal(t, len(m.line) > 0 || m.avail == 0, s.Locked())
			}
			// The latest first: a head that leaves may let those behind it be
			// served, so they must have ended already when it does.
			for _, p := range slices.Backward(calls) {
				p.cancel()
				m.line = removeWaiter(m.line, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
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
			for len(data) >= 2 {
				op, n := data[0]%7, int(data[1]%5)
				data = data[2:]
				switch op {
				case 0:
					require.Equal(t, m.tryAcquire(n), s.TryAcquireN(n))
				case 1:
					m.join(startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, n)} }))
				case 2:
					m.release(t, s, n)
				case 3:
					if p := cancelPending(calls, n); p != nil {
						m.leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					m.join(newTicketCall(&tickets, s.AcquireTicket(n), n, nil).pending)
				case 5:
					if tc := pickTicket(tickets, n); tc != nil {
						stopTicket(t, tc, m.leave)
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
				stopTicket(t, tc, m.leave)
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

// SetBound in the semaphore's fuzz model: semaSpec, extended.

// resizeSpec is the sequential model of a resizable BoundedSemaphore with
// its line: held may be above a lowered bound, and the free permits are
// max(0, bound − held).
type resizeSpec struct {
	bound, held int
	line        []*pending
}

func (m *resizeSpec) free() int { return max(0, m.bound-m.held) }

func (m *resizeSpec) serve() {
	for len(m.line) > 0 && m.free() >= m.line[0].n {
		m.held += m.line[0].n
		m.line[0].finish(opOutput{})
		m.line = m.line[1:]
	}
}

// setBound is SetBound in the model: requests above the new bound leave
// the line with ErrExceedsBound, the others keep their order and are
// served with what is free now.
func (m *resizeSpec) setBound(n int) {
	m.bound = n
	var kept []*pending
	for _, p := range m.line {
		if p.n > n {
			p.finish(opOutput{err: ctxsync.ErrExceedsBound})
			continue
		}
		kept = append(kept, p)
	}
	m.line = kept
	m.serve()
}

func FuzzResizableSemaphore(f *testing.F) {
	f.Add([]byte{3, 1, 3, 1, 2, 1, 4, 4, 1, 1, 4, 1, 2, 2, 2, 1, 2, 1})
	f.Add([]byte{2, 1, 2, 1, 1, 1, 3, 1, 4, 0, 2, 2, 4, 4})
	f.Add([]byte{4, 0, 4, 1, 4, 1, 3, 4, 1, 3, 2, 1, 3, 0, 5, 3, 4, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		size := int(data[0] % 5)
		data = data[1:]
		m := &resizeSpec{bound: size}
		s := ctxsync.NewBoundedSemaphore(size)
		synctest.Test(t, func(t *testing.T) {
			var calls []*pending
			for len(data) >= 2 {
				op, n := data[0]%6, int(data[1]%5)
				data = data[2:]
				switch op {
				case 0: // TryAcquireN
					want := n <= m.bound && len(m.line) == 0 && m.free() >= n
					if want {
						m.held += n
					}
					require.Equal(t, want, s.TryAcquireN(n))
				case 1: // AcquireN
					p := startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, n)} })
					switch {
					case n > m.bound:
						p.finish(opOutput{err: ctxsync.ErrExceedsBound})
					case len(m.line) == 0 && m.free() >= n:
						m.held += n
						p.finish(opOutput{})
					default:
						m.line = append(m.line, p)
					}
				case 2: // ReleaseN: only more than is held panics
					if n > m.held {
						require.PanicsWithValue(t, "ctxsync: BoundedSemaphore released more permits than are held", func() { s.ReleaseN(n) })
					} else {
						m.held -= n
						m.serve()
						s.ReleaseN(n)
					}
				case 3: // cancel a waiting call
					if p := cancelPending(calls, n); p != nil {
						m.line = removeWaiter(m.line, p)
						p.finish(opOutput{err: context.Canceled})
						m.serve()
					}
				case 4:
					m.setBound(n)
					s.SetBound(n)
				case 5: // a done context changes nothing
					err := s.AcquireN(cancelled(), n)
					if n > m.bound {
						require.Equal(t, ctxsync.ErrExceedsBound, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.free(), s.Available())
				require.Equal(t, m.bound, s.Bound())
				require.Equal(t, len(m.line), s.Waiting())
				require.Equal(t, len(m.line) > 0 || m.free() == 0, s.Locked())
			}
			// The latest first: a head that leaves may let those behind it be
			// served, so they must have ended already when it does.
			for _, p := range slices.Backward(calls) {
				p.cancel()
				m.line = removeWaiter(m.line, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

// semaphoreModel is the sequential specification of a Semaphore with
// permits free at first, for histories of AcquireN, TryAcquireN, ReleaseN
// and Available.
func semaphoreModel(permits int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return permits },
		Step: func(state, input, output any) (bool, any) {
			avail := state.(int)
			in, out := input.(opInput), output.(opOutput)
			switch in.kind {
			case opAcquire:
				if out.err != nil {
					return true, avail // no effect
				}
				return avail >= in.n, avail - in.n
			case opTryAcquire:
				if out.n == 0 {
					// Refused: legal when short of permits, and also while
					// others wait, which this model does not see.
					return true, avail
				}
				return avail >= in.n, avail - in.n
			case opRelease:
				return true, avail + in.n
			case opAvailable:
				return out.n == avail, avail
			}
			return false, avail
		},
	}
}

// semClient is one client of a random semaphore history: it records its
// calls in rec, and held is the permits it holds. Its methods are the
// calls a history picks from, each asking for n permits.
type semClient struct {
	rec  *recorder
	id   int
	rng  *rand.Rand
	s    ticketSemaphore
	held int
}

func (c *semClient) acquire(n int) {
	ctx, cancel := opContext(c.rng)
	c.rec.do(c.id, opInput{opAcquire, n}, func() opOutput {
		err := c.s.AcquireN(ctx, n)
		if err == nil {
			c.held += n
		}
		return opOutput{err: err}
	})
	cancel()
}

// acquireTicket is recorded as an AcquireN: a ticket stopped before its
// grant had no effect, as a call that ended on its context.
func (c *semClient) acquireTicket(n int) {
	c.rec.do(c.id, opInput{opAcquire, n}, func() opOutput {
		if awaitTicket(c.rng, c.s.AcquireTicket(n)) {
			c.held += n
			return opOutput{}
		}
		return opOutput{err: ctxsync.ErrTicketStopped}
	})
}

func (c *semClient) tryAcquire(n int) {
	c.rec.do(c.id, opInput{opTryAcquire, n}, func() opOutput {
		if c.s.TryAcquireN(n) {
			c.held += n
			return opOutput{n: 1}
		}
		return opOutput{}
	})
}

// release gives back n permits, or all it holds if fewer.
func (c *semClient) release(n int) {
	give := min(n, c.held)
	c.held -= give
	c.rec.do(c.id, opInput{opRelease, give}, func() opOutput { c.s.ReleaseN(give); return opOutput{} })
}

func (c *semClient) available(int) {
	c.rec.do(c.id, opInput{kind: opAvailable}, func() opOutput { return opOutput{n: c.s.Available()} })
}

// setBound sets a random bound of 0 to 4: s is a BoundedSemaphore.
func (c *semClient) setBound(int) {
	b := c.rng.IntN(5)
	s := c.s.(*ctxsync.BoundedSemaphore)
	c.rec.do(c.id, opInput{opSetBound, b}, func() opOutput { s.SetBound(b); return opOutput{} })
}

// availableOrBound looks at Available or at Bound: s is a
// BoundedSemaphore.
func (c *semClient) availableOrBound(n int) {
	if c.rng.IntN(2) == 0 {
		c.available(n)
		return
	}
	s := c.s.(*ctxsync.BoundedSemaphore)
	c.rec.do(c.id, opInput{kind: opBound}, func() opOutput { return opOutput{n: s.Bound()} })
}

// semaphoreHistories is a linearizability check of a semaphore: 4
// clients make 12 calls each, picked at random, then give back what they
// hold; the history must be linearizable against model.
type semaphoreHistories struct {
	seed  uint64 // of the clients' random sources, one per test
	new   func() ticketSemaphore
	model porcupine.Model
	maxN  int // each call asks for 0 to maxN-1 permits
	// calls are picked from at random; one listed twice comes twice as often.
	calls []func(c *semClient, n int)
	end   func(s ticketSemaphore) // checks s once its history is over
}

func (hs semaphoreHistories) check(t *testing.T) {
	for h := range linearizeHistories {
		s := hs.new()
		var rec recorder
		var wg sync.WaitGroup
		for client := range 4 {
			wg.Go(func() {
				c := &semClient{rec: &rec, id: client, rng: rand.New(rand.NewPCG(uint64(h), uint64(client)+hs.seed)), s: s}
				for range 12 {
					n := c.rng.IntN(hs.maxN)
					hs.calls[c.rng.IntN(len(hs.calls))](c, n)
				}
				if c.held > 0 {
					c.release(c.held)
				}
			})
		}
		wg.Wait()
		requireLinearizable(t, hs.model, rec.ops, fmt.Sprintf("history %d", h))
		hs.end(s)
	}
}

func TestLinearizableSemaphore(t *testing.T) {
	const permits = 3
	semaphoreHistories{
		seed:  100,
		new:   func() ticketSemaphore { return ctxsync.NewSemaphore(permits) },
		model: semaphoreModel(permits),
		maxN:  3,
		calls: []func(*semClient, int){(*semClient).acquire, (*semClient).tryAcquire, (*semClient).release, (*semClient).available},
		end:   func(s ticketSemaphore) { require.Equal(t, permits, s.Available()) },
	}.check(t)
}

// Tickets among the calls, on a BoundedSemaphore: a ticket granted is an
// AcquireN that returned nil, one stopped first an AcquireN that ended on
// its context.
func TestLinearizableSemaphoreTickets(t *testing.T) {
	const permits = 3
	semaphoreHistories{
		seed:  300,
		new:   func() ticketSemaphore { return ctxsync.NewBoundedSemaphore(permits) },
		model: semaphoreModel(permits),
		maxN:  3,
		calls: []func(*semClient, int){(*semClient).acquire, (*semClient).acquireTicket, (*semClient).release, (*semClient).available},
		end:   func(s ticketSemaphore) { require.Equal(t, permits, s.Available(), "every permit is back") },
	}.check(t)
}

const (
	opSetBound opKind = 100 + iota
	opBound
)

// resizeState is the sequential state of a resizable BoundedSemaphore: its
// bound and the permits held, which may be above a lowered bound; the free
// permits are max(0, bound − held).
type resizeState struct{ bound, held int }

// resizeModel is the contract of "Resizing a BoundedSemaphore" as a
// sequential specification.
var resizeModel = porcupine.Model{
	Init: func() any { return resizeState{bound: 3} },
	Step: func(state, input, output any) (bool, any) {
		s := state.(resizeState)
		in, out := input.(opInput), output.(opOutput)
		free := max(0, s.bound-s.held)
		switch in.kind {
		case opAcquire:
			switch out.err {
			case nil:
				if in.n > free {
					return false, s
				}
				return true, resizeState{s.bound, s.held + in.n}
			case ctxsync.ErrExceedsBound:
				return in.n > s.bound, s
			}
			return true, s // ended by its context: no effect
		case opTryAcquire:
			if out.n == 0 {
				return true, s // refused: short, above the bound, or others wait
			}
			if in.n > free {
				return false, s
			}
			return true, resizeState{s.bound, s.held + in.n}
		case opRelease:
			return in.n <= s.held, resizeState{s.bound, s.held - in.n}
		case opAvailable:
			return out.n == free, s
		case opSetBound:
			return true, resizeState{in.n, s.held}
		case opBound:
			return out.n == s.bound, s
		}
		return false, s
	},
}

// Concurrent histories of acquires (some cancelled), releases and resizes
// of one BoundedSemaphore are linearizable against resizeModel.
func TestLinearizableResizableSemaphore(t *testing.T) {
	semaphoreHistories{
		seed:  200,
		new:   func() ticketSemaphore { return ctxsync.NewBoundedSemaphore(3) },
		model: resizeModel,
		maxN:  4,
		calls: []func(*semClient, int){
			(*semClient).acquire, (*semClient).acquire, (*semClient).tryAcquire, (*semClient).release,
			(*semClient).setBound, (*semClient).availableOrBound,
		},
		end: func(s ticketSemaphore) {
			b := s.(*ctxsync.BoundedSemaphore)
			require.Equal(t, b.Bound(), b.Available(), "every permit is back")
			require.Zero(t, b.Waiting())
		},
	}.check(t)
}
