package ctxsync

import (
	"sync"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// A Ticket is a place in the line of a Lock, a Semaphore, a
// BoundedSemaphore or a Queue's Puts, which its caller waits for in a
// select of its own, next to channels, timers and ctx.Done():
//
//	t := sem.AcquireTicket(1)
//	select {
//	case <-t.Ready():
//		if err := t.Err(); err != nil {
//			return err // failed for good, such as ErrExceedsBound
//		}
//		defer sem.Release()
//		// ... the permit is held
//	case <-ctx.Done():
//		if !t.Stop() && t.Err() == nil {
//			sem.Release() // granted while we were giving up
//		}
//		return ctx.Err()
//	}
//
// A ticket stands in the same FIFO line as the blocking calls of its kind,
// so it is served in its turn, holds back the calls behind it as they do,
// and takes hand-offs as they do. A request that can be served at once is
// granted before the ticket is returned, and one that can never succeed is
// decided at once with its error; Ready is then already closed. A ticket
// has no context: whether it waits is up to its caller, and it keeps its
// place until it is decided or stopped, like a goroutine blocked for ever.
//
// A Ticket must not be copied.
type Ticket struct {
	_     noCopy
	ready <-chan struct{}
	req   ticketRequest
}

// Ready returns a channel that is closed once the request is decided:
// granted, or failed for good. It never closes after Stop has returned
// true.
func (t *Ticket) Ready() <-chan struct{} { return t.ready }

// Err returns, once Ready is closed, nil if the request was granted, or
// why it failed for good. It returns ErrTicketStopped once Stop has
// returned true, and nil while the request still waits (as
// context.Context's Err does before Done is closed).
func (t *Ticket) Err() error { return t.req.err() }

// Stop withdraws the request if it is still waiting, and reports whether
// it did, as time.Timer's Stop does. When it returns true the request had
// no effect at all: the ticket is spent, Ready never closes, what it was
// waiting for goes to the next in line, and Err returns ErrTicketStopped.
// When it returns false the request was already decided and Ready is
// closed (or an earlier Stop returned true): if Err is nil, the caller
// holds what was granted (the lock, the permits, or the Put is done) and
// must release it as after the blocking call. A grant made by an Unlock,
// Release, Put or Get is complete when that call returns: a Stop after it
// returns false.
func (t *Ticket) Stop() bool { return t.req.stop() }

// A GetTicket is a Queue's Get that its caller waits for in a select of
// its own; see Ticket, whose methods it shares. Once Ready is closed with
// a nil Err, Item returns the item handed over: it has been fetched, so it
// needs its TaskDone. A GetTicket must not be copied.
type GetTicket[T any] struct {
	_   noCopy
	rec ticketRecord[T]
}

// Ready returns a channel that is closed once the Get is decided: an item
// was handed over, or the queue is shut down and empty. It never closes
// after Stop has returned true.
func (t *GetTicket[T]) Ready() <-chan struct{} { return t.rec.w.Ready() }

// Err returns, once Ready is closed, nil if an item was handed over, or
// ErrQueueShutDown. It returns ErrTicketStopped once Stop has returned
// true, and nil while the Get still waits.
func (t *GetTicket[T]) Err() error { return t.rec.err() }

// Stop withdraws the Get if it is still waiting, and reports whether it
// did, as Ticket's Stop does. When it returns false and Err is nil, the
// caller holds the item Item returns and owes the queue its TaskDone.
func (t *GetTicket[T]) Stop() bool { return t.rec.stop() }

// Item returns the item handed over, once Ready is closed with a nil Err;
// otherwise the zero value.
func (t *GetTicket[T]) Item() T {
	// Decided first: the item is written before Ready closes, and only
	// then may it be read without the queue's mutex.
	if w := &t.rec.w; w.Decided() && !w.Refused {
		return w.Value
	}
	var zero T
	return zero
}

// ticketRequest is the record behind a Ticket, whatever the type of the
// line it stands in.
type ticketRequest interface {
	stop() bool
	err() error
}

// ticketLine is what a ticket needs of the primitive whose line it stands
// in. It is an interface on the primitive itself, so that a ticket's record
// refers to its owner without a closure to allocate.
type ticketLine[T any] interface {
	// ticketMu is the mutex that guards the line and every grant.
	ticketMu() *sync.Mutex
	// ticketLeftLocked is the policy a cancelled blocking call runs
	// when it leaves the line unserved; a stopped ticket runs it too.
	ticketLeftLocked(w *waitq.Waiter[T])
	// ticketRefusal is why a refused waiter was not served.
	ticketRefusal() error
}

// ticketRecord is a ticket's waiter and its owner.
type ticketRecord[T any] struct {
	w    waitq.Waiter[T]
	line ticketLine[T]
}

func (r *ticketRecord[T]) init(line ticketLine[T], weight int) {
	r.w.InitTicket(weight)
	r.line = line
}

func (r *ticketRecord[T]) stop() bool {
	// The race with a grant is decided in the core, under the owner's
	// mutex, with the owner's policy for a waiter that leaves.
	return waitq.Withdraw(r.line.ticketMu(), &r.w, r.line.ticketLeftLocked)
}

func (r *ticketRecord[T]) err() error {
	// Decided first: Refused is written before Ready closes.
	if r.w.Decided() {
		if r.w.Refused {
			return r.line.ticketRefusal()
		}
		return nil
	}
	// Not decided yet, or withdrawn: a withdrawn waiter is marked under
	// the owner's mutex before Stop returns true, so a Stop that returns
	// false after it finds the mark here.
	if r.w.Withdrawn() {
		return ErrTicketStopped
	}
	return nil
}

// ticketBox is a Ticket and its record in one allocation.
type ticketBox[T any] struct {
	t   Ticket
	rec ticketRecord[T]
}

// newTicket makes a ticket for a request of weight in line's line. It
// allocates the record and the channel, both here, in the goroutine that
// makes the ticket (R9).
func newTicket[T any](line ticketLine[T], weight int) (*Ticket, *waitq.Waiter[T]) {
	b := &ticketBox[T]{}
	b.rec.init(line, weight)
	b.t.ready = b.rec.w.Ready()
	b.t.req = &b.rec
	return &b.t, &b.rec.w
}

// decideNow decides a request that never stood in line: granted, or
// refused with the line's error. Nobody else knows of w yet, so no mutex
// is needed.
func decideNow[T any](w *waitq.Waiter[T], refused bool) {
	w.Refused = refused
	waitq.Grant(w)
}

// noCopy makes go vet report a copy of the struct it is in.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// LockTicket returns a ticket for the lock: a place in the same line as
// the blocked Lock calls, which the caller waits for in a select (see
// Ticket). If the lock is free and nobody waits, the ticket is granted
// before it is returned. Once Ready is closed the caller holds the lock
// (a Lock refuses nobody, so Err is nil unless Stop returned true) and
// must Unlock it; a Stop that returns true left the lock as it was.
func (l *Lock) LockTicket() *Ticket {
	t, w := newTicket[struct{}](l, 0)
	// The uncontended case, as Lock's fast path.
	if l.state.CompareAndSwap(0, lockHeld) {
		decideNow(w, false)
		return t
	}
	l.mu.Lock()
	// enqueueLocked raises lockWaiters as a parked Lock does, so the
	// holder's Unlock takes the slow path and hands the lock over.
	if l.enqueueLocked(w) {
		decideNow(w, false)
	}
	l.mu.Unlock()
	return t
}

// A Lock's tickets stand in its line of signal waiters.
var _ ticketLine[struct{}] = (*Lock)(nil)

func (l *Lock) ticketMu() *sync.Mutex { return &l.mu }

// ticketLeftLocked clears lockWaiters when a stopped ticket was the last
// in line, as for a cancelled Lock.
func (l *Lock) ticketLeftLocked(w *waitq.Waiter[struct{}]) { l.leftLocked(w) }

// ticketRefusal is never used: a Lock refuses nobody.
func (l *Lock) ticketRefusal() error { return nil }

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
	t, w := newTicket[struct{}](s, n)
	if bounded && n > s.bound {
		decideNow(w, true) // refused: ticketRefusal says ErrExceedsBound
		return t
	}
	// The uncontended case: free permits with nobody in line.
	if s.tryAcquire(n) {
		decideNow(w, false)
		return t
	}
	s.mu.Lock()
	// Raise semaWaiters first, as a parking AcquireN does: from here on
	// the fast paths stay out, so the count only changes under mu and a
	// Release comes to serveLocked, which serves the ticket in its turn.
	st := s.state.Or(semaWaiters)
	if st&semaWaiters == 0 && st>>semaShift >= uint64(n) {
		// Permits came back since tryAcquire, and nobody waits.
		s.state.Store(st - uint64(n)<<semaShift)
		s.mu.Unlock()
		decideNow(w, false)
		return t
	}
	s.waiters.PushBack(w)
	s.mu.Unlock()
	return t
}

// A semaphore's tickets stand in its line of signal waiters.
var _ ticketLine[struct{}] = (*sema)(nil)

func (s *sema) ticketMu() *sync.Mutex { return &s.mu }

// ticketLeftLocked serves the line again when a stopped ticket leaves it,
// as for a cancelled AcquireN: the ticket may have been the large request
// holding smaller ones back, and if it was the last, serveLocked hands the
// state back to the fast paths.
func (s *sema) ticketLeftLocked(w *waitq.Waiter[struct{}]) { s.serveLocked(w) }

// ticketRefusal is why a semaphore refuses a request: it exceeds the
// bound.
func (s *sema) ticketRefusal() error { return ErrExceedsBound }
