package ctxsync

import (
	"context"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// A Semaphore holds a count of permits that Acquire takes and Release gives
// back, like Python's asyncio.Semaphore. NewSemaphore makes one with a
// number of free permits; the zero value is a Semaphore with none, which
// Release grows (asyncio's Semaphore(0)). A Semaphore must not be copied
// after first use.
//
// A Semaphore may be released more often than it was acquired; its count
// then grows, up to math.MaxInt. Use a BoundedSemaphore to catch that as a
// bug.
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
type Semaphore struct{ s sema }

// A BoundedSemaphore is a semaphore that never grants more permits than
// its bound, like Python's asyncio.BoundedSemaphore: releasing more permits
// than are held panics. NewBoundedSemaphore makes one; the zero value is
// bounded at 0, so only requests for no permit succeed and every Release
// panics. SetBound changes the bound at run time. A BoundedSemaphore must
// not be copied after first use. It is fair in the same way as Semaphore,
// and its Release synchronizes before any Acquire it lets succeed.
//
// A request for more permits than the bound can never be served:
// AcquireN returns ErrExceedsBound at once and TryAcquireN returns false.
type BoundedSemaphore struct{ s sema }

// NewSemaphore returns a Semaphore with n free permits. It panics if n < 0.
// NewSemaphore(math.MaxInt) is a semaphore that, in practice, never runs
// out.
func NewSemaphore(n int) *Semaphore {
	s := &Semaphore{}
	s.s.init(n, 0)
	return s
}

// NewBoundedSemaphore returns a BoundedSemaphore with n free permits that
// never holds more than n. It panics if n < 0.
func NewBoundedSemaphore(n int) *BoundedSemaphore {
	s := &BoundedSemaphore{}
	s.s.init(n, n)
	return s
}

// Acquire takes one permit, blocking until one is free or ctx ends. It is
// AcquireN(ctx, 1).
func (s *Semaphore) Acquire(ctx context.Context) error {
	// The uncontended case, written out here so that it costs one call
	// (BenchmarkSemaphoreUncontended). R1:
	// a done context must fail even with a permit free, so the context
	// is looked at before the CAS that would take it, with ctx.Err(), the
	// cheapest exact look (see Lock.Lock).
	if ctx.Err() == nil && s.s.takeOne() {
		return nil
	}
	return s.s.acquireN(ctx, 1, false)
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
// in line.
func (s *Semaphore) AcquireN(ctx context.Context, n int) error {
	return s.s.acquireN(ctx, n, false)
}

// TryAcquire takes one permit if one is free and nobody waits, and reports
// whether it did. It never blocks.
func (s *Semaphore) TryAcquire() bool { return s.s.tryAcquire(1) }

// TryAcquireN takes n permits if n are free and nobody waits, and reports
// whether it did. It never blocks. It panics if n < 0.
func (s *Semaphore) TryAcquireN(n int) bool { return s.s.tryAcquireN(n, false) }

// Release gives back one permit. It is ReleaseN(1).
func (s *Semaphore) Release() {
	// As in Acquire: the fast path here, one call less.
	if !s.s.giveOne() {
		s.s.releaseSlow(1, false)
	}
}

// ReleaseN gives back n permits, handing them straight to waiters in the
// order they came. It may give back more than were taken: the count then
// grows. It panics if n < 0, or if the free permits would exceed
// math.MaxInt; a panicking ReleaseN changes nothing.
func (s *Semaphore) ReleaseN(n int) { s.s.releaseN(n, false) }

// Available returns the number of free permits: those not held and not yet
// handed to anyone. Permits set aside for a waiting request that is not yet
// whole are counted, though no newcomer can take them.
func (s *Semaphore) Available() int { return s.s.available() }

// Locked reports whether Acquire would block now: no permit is free, or
// others wait.
func (s *Semaphore) Locked() bool { return s.s.locked() }

// Acquire takes one permit, blocking until one is free or ctx ends. It is
// AcquireN(ctx, 1), so on a zero BoundedSemaphore it returns
// ErrExceedsBound.
func (s *BoundedSemaphore) Acquire(ctx context.Context) error {
	// As Semaphore.Acquire. A free permit implies a bound of at least 1,
	// so the fast path need not look at the bound.
	if ctx.Err() == nil && s.s.takeOne() {
		return nil
	}
	return s.s.acquireN(ctx, 1, true)
}

// AcquireN takes n permits at once, blocking until all n can be had or ctx
// ends. It never holds a part of the request: permits set aside for a
// waiting request stay free (Available counts them) until it is served
// whole. AcquireN(ctx, 0) succeeds at once unless others wait; then it
// queues behind them. It panics if n < 0.
//
// A request for more than the bound returns ErrExceedsBound at once, before
// ctx is looked at. Otherwise, if ctx is already done, AcquireN returns
// ctx.Err() and takes nothing, even when permits are free. If ctx ends
// while it waits, it returns ctx.Err() and leaves the semaphore unchanged;
// the caller loses its place in line.
func (s *BoundedSemaphore) AcquireN(ctx context.Context, n int) error {
	return s.s.acquireN(ctx, n, true)
}

// TryAcquire takes one permit if one is free and nobody waits, and reports
// whether it did. It never blocks.
func (s *BoundedSemaphore) TryAcquire() bool { return s.s.tryAcquire(1) }

// TryAcquireN takes n permits if n are free and nobody waits, and reports
// whether it did. It never blocks, and it is false for any n above the
// bound. It panics if n < 0.
func (s *BoundedSemaphore) TryAcquireN(n int) bool { return s.s.tryAcquireN(n, true) }

// Release gives back one permit. It is ReleaseN(1).
func (s *BoundedSemaphore) Release() { s.s.releaseN(1, true) }

// ReleaseN gives back n permits, handing them straight to waiters in the
// order they came; after a lowering SetBound, permits held above the bound
// are retired first. It panics if n < 0, or if more than the held permits
// would come back (Bound() − Available(), plus any still held above a
// lowered bound), whether or not waiters would take them; a panicking
// ReleaseN changes nothing.
func (s *BoundedSemaphore) ReleaseN(n int) { s.s.releaseN(n, true) }

// Available returns the number of free permits: those not held and not yet
// handed to anyone. Permits set aside for a waiting request that is not yet
// whole are counted, though no newcomer can take them.
func (s *BoundedSemaphore) Available() int { return s.s.available() }

// Locked reports whether Acquire would block now: no permit is free, or
// others wait. On a zero BoundedSemaphore it is always true.
func (s *BoundedSemaphore) Locked() bool { return s.s.locked() }

// The state word of a sema: the free permits shifted left by one, and in the
// low bit whether anyone waits, or a lowered bound still has permits to
// retire (sema.excess). It is unsigned so that every count from 0 to
// math.MaxInt fits: 63 bits of count and the flag. While semaWaiters is set
// the fast paths step aside and only holders of mu change the state, so the
// line, the count and the excess move together.
const (
	semaWaiters uint64 = 1
	semaShift   uint64 = 1
)

// sema is the implementation shared by Semaphore and BoundedSemaphore. Each
// method that cares takes bounded, which the two types pass as a constant:
// the zero values of both types are the same sema, and only the type says
// whether bound applies.
type sema struct {
	state atomic.Uint64
	// bound is the bound of a BoundedSemaphore, unused by a Semaphore.
	// SetBound changes it under mu, so the fast paths read it atomically
	// and anything that must be exact reads it again under mu.
	bound atomic.Int64
	// excess is how many held permits a lowered bound still has to retire
	// as they come back: held = bound - free + excess. It is read and
	// written under mu, and while it is not 0 semaWaiters stays set, so
	// no fast path can give a permit back past it.
	excess  int
	mu      sync.Mutex
	waiters waitq.List[struct{}]
}

func (s *sema) init(n, bound int) {
	if n < 0 {
		panic("ctxsync: negative semaphore size")
	}
	s.bound.Store(int64(bound))
	s.state.Store(uint64(n) << semaShift)
}

// limit is the most free permits s may count: the bound, or math.MaxInt,
// past which Available could not report them. The count never exceeds it,
// so limit minus the count never wraps.
func (s *sema) limit(bounded bool) uint64 {
	if bounded {
		return uint64(s.bound.Load())
	}
	return math.MaxInt
}

// takeOne takes a permit if one is free and nobody waits: Acquire's fast
// path after its look at the context, one CAS and no loop (a lost race
// takes the general path). It is small enough to be inlined.
func (s *sema) takeOne() bool {
	const one = 1 << semaShift
	st := s.state.Load()
	return st&semaWaiters == 0 && st >= one && s.state.CompareAndSwap(st, st-one)
}

// giveOne gives a permit back to a Semaphore (unbounded) if nobody waits
// and the count stays within math.MaxInt: Release's fast path, small
// enough to be inlined.
func (s *sema) giveOne() bool {
	const one = 1 << semaShift
	st := s.state.Load()
	// Rotated right by one, the word is the count with the flag on top:
	// below math.MaxInt only when nobody waits and there is room for one.
	return bits.RotateLeft64(st, -1) < math.MaxInt && s.state.CompareAndSwap(st, st+one)
}

func (s *sema) acquireN(ctx context.Context, n int, bounded bool) error {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	if bounded && int64(n) > s.bound.Load() {
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
	for range spinsBeforePark {
		runtime.Gosched()
		if s.tryAcquire(n) {
			return nil
		}
	}
	s.mu.Lock()
	switch s.admitLocked(n, bounded) {
	case admitRefused:
		s.mu.Unlock()
		return ErrExceedsBound
	case admitGranted:
		s.mu.Unlock()
		return nil
	}
	w := signalWaiterPool.Get(ctx, n)
	s.waiters.PushBack(w)
	err := waitq.ParkUnlock(ctx, &s.mu, w, s.serveLocked)
	// A waiter is refused only by SetBound, lowering the bound below its
	// request; a refusal is a grant of nothing, so err is nil then.
	refused := w.Refused
	signalWaiterPool.Put(w)
	if refused {
		return ErrExceedsBound
	}
	return err
}

// admission is what admitLocked decided for a request.
type admission uint8

const (
	admitWait    admission = iota // in line: semaWaiters is up, push the waiter before unlocking
	admitGranted                  // the permits are taken
	admitRefused                  // above the bound: ErrExceedsBound
)

// admitLocked decides, under s.mu, a request for n permits that the fast
// paths could not take; AcquireN and AcquireTicket both come here, so a
// blocking call and a ticket are admitted alike. s.mu must be held, and
// stay held until a waiting request's waiter is in line.
func (s *sema) admitLocked(n int, bounded bool) admission {
	// The bound may have been lowered since it was looked at; SetBound
	// changes it under mu, so this look is final: no request above the
	// bound ever joins the line.
	if bounded && int64(n) > s.bound.Load() {
		return admitRefused
	}
	// Raise semaWaiters first, so that from here on the fast paths stay out
	// and the count can only change under mu; a Release then comes to
	// serveLocked, which serves the request in its turn.
	st := s.state.Or(semaWaiters)
	preempt(ptSemaState)
	if s.waiters.Len() == 0 && st>>semaShift >= uint64(n) {
		// Permits came back between the fast path and here, and nobody
		// waits: take them. The flag may have been up for an excess
		// alone (then n is 0, as no permit is free), and stays up for it.
		s.state.Store(st&^semaWaiters - uint64(n)<<semaShift | s.idleFlagLocked())
		return admitGranted
	}
	return admitWait
}

// tryAcquire takes n permits, n >= 0, if they are free and nobody waits.
func (s *sema) tryAcquire(n int) bool {
	for {
		st := s.state.Load()
		// Compare counts, not shifted words, so a huge n cannot overflow.
		if st&semaWaiters != 0 || st>>semaShift < uint64(n) {
			return false
		}
		preempt(ptSemaState)
		if s.state.CompareAndSwap(st, st-uint64(n)<<semaShift) {
			return true
		}
	}
}

func (s *sema) tryAcquireN(n int, bounded bool) bool {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	if bounded && int64(n) > s.bound.Load() {
		return false
	}
	if s.tryAcquire(n) {
		return true
	}
	if bounded && n == 0 {
		// The flag may be up for a lowered bound's excess alone, with
		// nobody in line: a request for nothing succeeds then.
		s.mu.Lock()
		ok := s.waiters.Len() == 0
		s.mu.Unlock()
		return ok
	}
	return false
}

// releaseN is ReleaseN, with a fast path for the uncontended case: one
// CAS, taken only while nobody waits, since with semaWaiters up only
// holders of mu may change the state (serveLocked, admitLocked and
// setBound Store it, so an atomic Add from outside mu could be lost). It
// is too big to be inlined, even for n == 1; the Load and the CAS alone
// with the call to releaseSlow are over the inliner's budget.
func (s *sema) releaseN(n int, bounded bool) {
	st := s.state.Load()
	// A negative n, seen as unsigned, is above any room left, so one
	// comparison sends misuse, over-release and overflow to the slow path.
	if st&semaWaiters == 0 && uint64(n) <= s.limit(bounded)-st>>semaShift &&
		s.state.CompareAndSwap(st, st+uint64(n)<<semaShift) {
		return
	}
	s.releaseSlow(n, bounded)
}

func (s *sema) releaseSlow(n int, bounded bool) {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	add := uint64(n) << semaShift
	for {
		st := s.state.Load()
		if st&semaWaiters != 0 {
			break // there is a line to serve: go slow
		}
		if s.overLimit(st, n, bounded) {
			// Decide under mu, where the bound cannot move: a
			// SetBound since the bound was read may make this
			// release right.
			break
		}
		preempt(ptSemaState)
		if s.state.CompareAndSwap(st, st+add) {
			return
		}
	}
	s.mu.Lock()
	// Still a CAS: the line may have emptied since, handing the state
	// back to the fast paths. The excess cannot change meanwhile (it
	// needs mu), and while it is not 0 the flag keeps the fast paths out.
	for {
		st := s.state.Load()
		// Held permits are bound - free + excess: a lowered bound's
		// holders may give back all they hold.
		if uint64(n) > s.limit(bounded)-st>>semaShift+uint64(s.excess) {
			s.mu.Unlock()
			panic(overReleaseMsg(bounded))
		}
		// Permits held above a lowered bound are retired first.
		retire := min(n, s.excess)
		preempt(ptSemaState)
		if s.state.CompareAndSwap(st, st+uint64(n-retire)<<semaShift) {
			s.excess -= retire
			break
		}
	}
	s.serveLocked(nil)
	s.mu.Unlock()
}

const (
	errOverRelease = "ctxsync: BoundedSemaphore released more permits than are held"
	errOverflow    = "ctxsync: Semaphore released past math.MaxInt permits"
)

// overLimit reports whether giving n >= 0 permits back to a semaphore in
// state st would take its count past its limit. It subtracts rather than
// adds, so no n can overflow it.
func (s *sema) overLimit(st uint64, n int, bounded bool) bool {
	return uint64(n) > s.limit(bounded)-st>>semaShift
}

func overReleaseMsg(bounded bool) string {
	if bounded {
		return errOverRelease
	}
	return errOverflow
}

// serveLocked hands free permits to the waiters at the head of the line, in
// order, stopping at the first whose whole request cannot be met. That
// request holds back smaller ones behind it even when they would fit: were
// they let through, a steady stream of small requests could keep the free
// count below the large one's for ever, and it would starve (the reasoning
// of golang.org/x/sync/semaphore). It also runs when a waiter leaves
// unserved, since that may have been the request holding the others back.
// s.mu must be held.
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
			// Hand the state back to the fast paths, unless a lowered
			// bound still has permits to retire.
			s.state.Store(st&^semaWaiters | s.idleFlagLocked())
			return
		}
		if st>>semaShift < uint64(w.Weight) {
			return
		}
		st -= uint64(w.Weight) << semaShift
		// Count the permits as taken before w can wake: once it returns,
		// Available must not show them free.
		preempt(ptSemaState)
		s.state.Store(st)
		waitq.Grant(w)
	}
}

// available is Available. The count never exceeds math.MaxInt, so it
// converts without loss.
func (s *sema) available() int {
	return int(s.state.Load() >> semaShift)
}

func (s *sema) locked() bool {
	st := s.state.Load()
	return st&semaWaiters != 0 || st>>semaShift == 0
}

// Waiting returns how many AcquireN calls are in line now and not yet
// granted, counting one whose context has just ended but that has not left
// the line yet. It is a snapshot for metrics and load shedding, and
// allocates nothing.
func (s *Semaphore) Waiting() int { return s.s.waiting() }

// Waiting returns how many AcquireN calls are in line now and not yet
// granted, counting one whose context has just ended but that has not left
// the line yet. Requests above the bound never wait, so they are never
// counted. It is a snapshot for metrics and load shedding, and allocates
// nothing.
func (s *BoundedSemaphore) Waiting() int { return s.s.waiting() }

func (s *sema) waiting() int {
	// semaWaiters is raised under mu before a waiter is pushed, and only
	// dropped under mu once the line is empty: a clear bit means nobody
	// was in line at the moment of the load.
	if s.state.Load()&semaWaiters == 0 {
		return 0
	}
	s.mu.Lock()
	n := s.waiters.Len()
	s.mu.Unlock()
	return n
}

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

// AcquireTicket returns a ticket for n permits: a place in the same line
// as the blocked AcquireN calls, which the caller waits for in a select
// (see Ticket). If n permits are free and nobody waits, the ticket is
// granted before it is returned. Once Ready is closed the caller holds the
// n permits (Err is nil unless Stop returned true) and must release them;
// a Stop that returns true took nothing, and lets the requests it held
// back go. It panics if n < 0.
func (s *Semaphore) AcquireTicket(n int) *Ticket { return s.s.acquireTicket(n, false) }

// AcquireTicket returns a ticket for n permits, as Semaphore's
// AcquireTicket does. A request for more than the bound can never be
// served: its ticket is decided at once with ErrExceedsBound. It panics if
// n < 0.
func (s *BoundedSemaphore) AcquireTicket(n int) *Ticket { return s.s.acquireTicket(n, true) }

func (s *sema) acquireTicket(n int, bounded bool) *Ticket {
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	t, w := newTicket[struct{}](&s.mu, s, ErrExceedsBound, n)
	// In the order AcquireN looks: the bound first, then the uncontended
	// case (free permits with nobody in line), then under mu.
	if bounded && int64(n) > s.bound.Load() {
		decideNow(w, true) // refused: the ticket's refusal is ErrExceedsBound
		return t
	}
	switch s.admitTicket(w, n, bounded) {
	case admitRefused:
		decideNow(w, true)
	case admitGranted:
		decideNow(w, false)
	}
	return t
}

// admitTicket admits a ticket's waiter w asking for n permits as AcquireN
// admits a call: the uncontended case first, then admitLocked under mu. It
// returns admitGranted or admitRefused for a request decided at once, for
// the caller to decide w after mu is let go, or admitWait with w in line.
// AcquireTicket and KeyedSemaphore.AcquireTicket share it.
func (s *sema) admitTicket(w *waitq.Waiter[struct{}], n int, bounded bool) admission {
	if s.tryAcquire(n) {
		return admitGranted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.admitLocked(n, bounded)
	if a == admitWait {
		s.waiters.PushBack(w)
	}
	return a
}

// Stopped tickets run the sema's leave policy.
var _ ticketLeaver[struct{}] = (*sema)(nil)

// ticketLeftLocked serves the line again when a stopped ticket leaves it,
// as for a cancelled AcquireN: the ticket may have been the large request
// holding smaller ones back, and if it was the last, serveLocked hands the
// state back to the fast paths. A semaphore refuses only requests above
// its bound, so its refusal error is ErrExceedsBound.
func (s *sema) ticketLeftLocked(w *waitq.Waiter[struct{}]) { s.serveLocked(w) }
