package ctxsync

import "github.com/ctxsync/ctxsync/internal/waitq"

// SetBound changes the bound of s to n at once. It panics if n < 0.
//
// Afterwards Available is max(0, n − held), where held is the number of
// permits held now. Raising the bound frees the difference, less any
// permits still held above an earlier, lower bound, and serves waiting
// requests in the order they came, at once. Lowering it removes free
// permits first; permits held above the new bound are retired as they come
// back, so Available stays 0 (never negative) until the holders are within
// the bound. Holders may always give back what they hold: a Release panics
// only if it gives back more permits than are held.
//
// Waiting requests for more than the new bound can never be served: they
// fail at once with ErrExceedsBound, and the requests behind them move up.
func (s *BoundedSemaphore) SetBound(n int) {
	if n < 0 {
		panic("ctxsync: negative semaphore bound")
	}
	s.s.setBound(n)
}

// Bound returns the bound of s: the most permits it lets be held at once.
func (s *BoundedSemaphore) Bound() int { return int(s.s.bound.Load()) }

func (s *sema) setBound(n int) {
	s.mu.Lock()
	// Raise the flag before anything moves, so that the fast paths, which
	// read the bound apart from the state, fail their CAS on the state
	// word and come here, under mu, to look again.
	st := s.state.Or(semaWaiters)
	free := int(st >> semaShift)
	held := int(s.bound.Load()) - free + s.excess
	if n >= held {
		free, s.excess = n-held, 0
	} else {
		free, s.excess = 0, held-n
	}
	// The bound before the count: a fast path that sees the new count
	// (with the flag down, after serveLocked) also sees the new bound.
	// A fast-path Release checks the bound it read against the count in
	// its CAS; the flag makes any CAS begun before this call fail, unless
	// the count has come back to the very value it read by then. That
	// leaves one narrow miss, never a wrong grant: a Release of more than
	// is held, racing with a lowering and with others bringing the count
	// back, may pass the old bound's check instead of panicking. Closing
	// it would take a generation in the state word, which has no spare
	// bit, or a mutex on every Release.
	s.bound.Store(int64(n))
	s.state.Store(uint64(free)<<semaShift | semaWaiters)
	s.refuseAboveLocked(n)
	// Serve the line with what is free now: permits a raise freed, or the
	// requests that moved up behind a refused one. It also lowers the flag
	// if the line is empty and nothing is left to retire.
	s.serveLocked(nil)
	s.mu.Unlock()
}

// refuseAboveLocked sends away, with ErrExceedsBound, every waiting request
// for more than bound permits, keeping the others in their order. Refused
// waiters are woken through a grant of nothing (Refused set), so even one
// whose context has just ended reports ErrExceedsBound (R10). s.mu must be
// held.
func (s *sema) refuseAboveLocked(bound int) {
	// Rotate the line once: each waiter goes out at the head and back in
	// at the tail unless refused, so the survivors keep their order.
	for range s.waiters.Len() {
		w := s.waiters.Head()
		s.waiters.Remove(w)
		if w.Weight > bound {
			w.Refused = true
			waitq.Grant(w)
			continue
		}
		s.waiters.PushBack(w)
	}
}

// idleFlagLocked is the flag the state keeps when nobody waits: up while a
// lowered bound still has held permits to retire, so that every Release
// comes under mu to retire them, down otherwise. s.mu must be held.
func (s *sema) idleFlagLocked() uint64 {
	if s.excess > 0 {
		return semaWaiters
	}
	return 0
}
