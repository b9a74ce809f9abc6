package ctxsync

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// A Semaphore holds a count of permits that Acquire takes and Release gives
// back, like Python's asyncio.Semaphore. Make one with NewSemaphore; a
// Semaphore must not be copied after first use.
//
// A Semaphore may be released more often than it was acquired; its count
// then grows. Use a BoundedSemaphore to catch that as a bug.
//
// Fairness: blocked acquirers are served strictly in the order they started
// waiting, and Release hands permits straight to them. A newcomer never
// overtakes a waiter: TryAcquire fails and Acquire queues while others wait,
// and a large request at the head of the line holds back smaller ones behind
// it until it can be served whole. If its context ends first, Acquire
// returns ctx.Err() and leaves the Semaphore unchanged; the caller loses its
// place in line.
//
// In the terminology of the Go memory model, a Release synchronizes before
// any Acquire that it lets succeed.
type Semaphore struct{ sema }

// A BoundedSemaphore is a Semaphore that never holds more than the permits
// it started with, like Python's asyncio.BoundedSemaphore: releasing more
// permits than are held panics. Make one with NewBoundedSemaphore; it must
// not be copied after first use. It is fair in the same way as Semaphore,
// and its Release synchronizes before any Acquire it lets succeed.
//
// A request for more permits than the bound can never be served:
// AcquireN returns ErrExceedsBound at once and TryAcquireN returns false.
type BoundedSemaphore struct{ sema }

// NewSemaphore returns a Semaphore with n free permits. It panics if n < 0.
func NewSemaphore(n int) *Semaphore {
	s := &Semaphore{}
	s.init(n, -1)
	return s
}

// NewBoundedSemaphore returns a BoundedSemaphore with n free permits that
// never holds more than n. It panics if n < 0.
func NewBoundedSemaphore(n int) *BoundedSemaphore {
	s := &BoundedSemaphore{}
	s.init(n, n)
	return s
}

// The state word of a sema: the free permits shifted left by one, and in the
// low bit whether anyone waits. While semaWaiters is set the fast paths step
// aside and only holders of mu change the state, so the line and the count
// move together.
const (
	semaWaiters int64 = 1
	semaShift   int64 = 1
)

// sema is the implementation shared by Semaphore and BoundedSemaphore.
type sema struct {
	state   atomic.Int64
	bound   int // -1: unbounded
	mu      sync.Mutex
	waiters waitq.List[struct{}]
}

func (s *sema) init(n, bound int) {
	if n < 0 {
		panic("ctxsync: negative semaphore size")
	}
	s.bound = bound
	s.state.Store(int64(n) << semaShift)
}

// Acquire takes one permit, blocking until one is free or ctx ends. It is
// AcquireN(ctx, 1).
func (s *sema) Acquire(ctx context.Context) error {
	// The uncontended case: one CAS, no loop. Anything else, a lost race
	// included, takes the general path.
	const one = 1 << semaShift
	st := s.state.Load()
	if st&semaWaiters == 0 && st >= one && ctx.Err() == nil && s.state.CompareAndSwap(st, st-one) {
		return nil
	}
	return s.AcquireN(ctx, 1)
}

// AcquireN takes n permits at once, blocking until all n can be had or ctx
// ends. It never holds a part of the request: permits set aside for a
// waiting request stay free (Available counts them) until it is served
// whole. AcquireN(ctx, 0) succeeds at once unless others wait; then it
// queues behind them. It panics if n < 0.
//
// If ctx is already done, AcquireN returns ctx.Err() and takes nothing,
// even when permits are free. If ctx ends while it waits, it returns
// ctx.Err() and leaves the semaphore unchanged; the caller loses its place
// in line. On a BoundedSemaphore, a request for more than the bound returns
// ErrExceedsBound at once, before ctx is looked at.
func (s *sema) AcquireN(ctx context.Context, n int) error {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	if s.bound >= 0 && n > s.bound {
		return ErrExceedsBound
	}
	// A done context fails even when the permits are free.
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.tryAcquire(n) {
		return nil
	}
	// Spin briefly before parking, as Lock does: permits held by running
	// goroutines often come back within a few hundred nanoseconds. Only
	// free permits with nobody in line are taken, so no waiter is
	// overtaken.
	for range lockSpins {
		runtime.Gosched()
		if s.tryAcquire(n) {
			return nil
		}
	}
	s.mu.Lock()
	// Raise semaWaiters first, so that from here on the fast paths stay out
	// and the count can only change under mu.
	st := s.state.Or(semaWaiters)
	if st&semaWaiters == 0 && st>>semaShift >= int64(n) {
		// Permits came back between the fast path and here, and nobody
		// waits: take them.
		s.state.Store(st - int64(n)<<semaShift)
		s.mu.Unlock()
		return nil
	}
	w := signalWaiters.Get(ctx, n)
	s.waiters.PushBack(w)
	err := waitq.Park(ctx, &s.mu, w, s.serveLocked)
	signalWaiters.Put(w)
	return err
}

// tryAcquire takes n permits if they are free and nobody waits.
func (s *sema) tryAcquire(n int) bool {
	for {
		st := s.state.Load()
		// Compare counts, not shifted words, so a huge n cannot overflow.
		if st&semaWaiters != 0 || st>>semaShift < int64(n) {
			return false
		}
		if s.state.CompareAndSwap(st, st-int64(n)<<semaShift) {
			return true
		}
	}
}

// TryAcquire takes one permit if one is free and nobody waits, and reports
// whether it did. It never blocks.
func (s *sema) TryAcquire() bool { return s.tryAcquire(1) }

// TryAcquireN takes n permits if n are free and nobody waits, and reports
// whether it did. It never blocks. It panics if n < 0.
func (s *sema) TryAcquireN(n int) bool {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	if s.bound >= 0 && n > s.bound {
		return false
	}
	return s.tryAcquire(n)
}

// Release gives back one permit. It is ReleaseN(1).
func (s *sema) Release() { s.ReleaseN(1) }

// ReleaseN gives back n permits, handing them straight to waiters in the
// order they came. It panics if n < 0, and on a BoundedSemaphore if more
// than the held permits (bound − Available()) would come back; a panicking
// ReleaseN changes nothing.
func (s *sema) ReleaseN(n int) {
	// The uncontended case, small enough to be inlined.
	st := s.state.Load()
	if n >= 0 && st&semaWaiters == 0 && !s.overBound(st, n) &&
		s.state.CompareAndSwap(st, st+int64(n)<<semaShift) {
		return
	}
	s.releaseSlow(n)
}

func (s *sema) releaseSlow(n int) {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	add := int64(n) << semaShift
	for {
		st := s.state.Load()
		if st&semaWaiters != 0 {
			break // there is a line to serve: go slow
		}
		if s.overBound(st, n) {
			panic(errOverRelease)
		}
		if s.state.CompareAndSwap(st, st+add) {
			return
		}
	}
	s.mu.Lock()
	// Still a CAS: the line may have emptied since, handing the state
	// back to the fast paths.
	for {
		st := s.state.Load()
		if s.overBound(st, n) {
			s.mu.Unlock()
			panic(errOverRelease)
		}
		if s.state.CompareAndSwap(st, st+add) {
			break
		}
	}
	s.serveLocked(nil)
	s.mu.Unlock()
}

const errOverRelease = "ctxsync: BoundedSemaphore released more permits than are held"

// overBound reports whether giving n permits back to a semaphore in state st
// would take it above its bound.
func (s *sema) overBound(st int64, n int) bool {
	return s.bound >= 0 && st>>semaShift+int64(n) > int64(s.bound)
}

// serveLocked hands free permits to the waiters at the head of the line, in
// order, stopping at the first whose whole request cannot be met: a large
// request holds back smaller ones behind it. It also runs when a waiter
// leaves unserved, since that may have been the request holding the others
// back. s.mu must be held.
func (s *sema) serveLocked(*waitq.Waiter[struct{}]) {
	st := s.state.Load()
	if st&semaWaiters == 0 {
		// The line is empty (a waiter leaving after serveLocked dropped
		// it) and the fast paths own the state again.
		return
	}
	for {
		w := s.waiters.First()
		if w == nil {
			s.state.Store(st &^ semaWaiters)
			return
		}
		if st>>semaShift < int64(w.N) {
			return
		}
		st -= int64(w.N) << semaShift
		// Count the permits as taken before w can wake: once it returns,
		// Available must not show them free.
		s.state.Store(st)
		waitq.Grant(w)
	}
}

// Available returns the number of free permits: those not held and not yet
// handed to anyone. Permits set aside for a waiting request that is not yet
// whole are counted, though no newcomer can take them.
func (s *sema) Available() int {
	return int(s.state.Load() >> semaShift)
}

// Locked reports whether Acquire would block now: no permit is free, or
// others wait.
func (s *sema) Locked() bool {
	st := s.state.Load()
	return st&semaWaiters != 0 || st>>semaShift == 0
}
