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
// In the terminology of the Go memory model, the call that decides a
// ticket (the Unlock, Release, Put, Get or Shutdown, or the call that made
// the ticket when it is decided at once) synchronizes before a receive from
// Ready that observes it closed, and before a Stop that returns false.
//
// A Ticket must not be copied, and only tickets these methods return are
// of use: the methods of a zero Ticket panic.
type Ticket struct {
	_     noCopy
	ready <-chan struct{}
	req   ticketRequest
}

// Ready returns a channel that is closed once the request is decided:
// granted, or failed for good. It never closes after Stop has returned
// true.
func (t *Ticket) Ready() <-chan struct{} { return t.made().ready }

// Err returns, once Ready is closed, nil if the request was granted, or
// why it failed for good. It returns ErrTicketStopped once Stop has
// returned true, and nil while the request still waits (as
// context.Context's Err does before Done is closed).
func (t *Ticket) Err() error { return t.made().req.err() }

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
func (t *Ticket) Stop() bool { return t.made().req.stop() }

const errZeroTicket = "ctxsync: zero Ticket; tickets come from LockTicket, AcquireTicket, PutTicket or GetTicket"

// made refuses a zero Ticket, which stands in no line: its Ready would
// never close and its Stop would have nothing to withdraw. Every ticket
// handed out has its request set before it is returned.
func (t *Ticket) made() *Ticket {
	if t.req == nil {
		panic(errZeroTicket)
	}
	return t
}

// A GetTicket is a Queue's Get that its caller waits for in a select of
// its own; see Ticket, whose methods it shares. Once Ready is closed with
// a nil Err, Item returns the item handed over: it has been fetched, so it
// needs its TaskDone. A GetTicket must not be copied, and the methods of a
// zero GetTicket panic.
type GetTicket[T any] struct {
	_   noCopy
	rec ticketRecord[T]
}

// Ready returns a channel that is closed once the Get is decided: an item
// was handed over, or the queue is shut down and empty. It never closes
// after Stop has returned true.
func (t *GetTicket[T]) Ready() <-chan struct{} { return t.made().w.Ready() }

// Err returns, once Ready is closed, nil if an item was handed over, or
// ErrQueueShutDown. It returns ErrTicketStopped once Stop has returned
// true, and nil while the Get still waits.
func (t *GetTicket[T]) Err() error { return t.made().err() }

// Stop withdraws the Get if it is still waiting, and reports whether it
// did, as Ticket's Stop does. When it returns false and Err is nil, the
// caller holds the item Item returns and owes the queue its TaskDone.
func (t *GetTicket[T]) Stop() bool { return t.made().stop() }

// made refuses a zero GetTicket, as Ticket's made does; a GetTicket handed
// out has its owner's mutex set before it is returned.
func (t *GetTicket[T]) made() *ticketRecord[T] {
	if t.rec.mu == nil {
		panic(errZeroTicket)
	}
	return &t.rec
}

// Item returns the item handed over, once Ready is closed with a nil Err;
// otherwise the zero value.
func (t *GetTicket[T]) Item() T {
	// Decided first: the item is written before Ready closes, and only
	// then may it be read without the queue's mutex.
	if w := &t.made().w; w.Decided() && !w.Refused {
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

// ticketLeaver is the policy of a primitive for a waiter that leaves its
// line unserved: the one a cancelled blocking call runs, which a stopped
// ticket runs too. It is an interface on the primitive itself, so that a
// ticket's record refers to it without a closure to allocate.
type ticketLeaver[T any] interface {
	ticketLeftLocked(w *waitq.Waiter[T])
}

// ticketRecord is a ticket's waiter, and what it needs of the primitive
// whose line it stands in.
type ticketRecord[T any] struct {
	w       waitq.Waiter[T]
	mu      *sync.Mutex     // guards the line and every grant
	leave   ticketLeaver[T] // nil: nothing to do when a waiter leaves
	refusal error           // why a refused waiter was not served
}

func (r *ticketRecord[T]) init(mu *sync.Mutex, leave ticketLeaver[T], refusal error, weight int) {
	r.w.InitTicket(weight)
	r.mu, r.leave, r.refusal = mu, leave, refusal
}

func (r *ticketRecord[T]) stop() bool {
	// The race with a grant is decided in the core, under the owner's
	// mutex, with the owner's policy for a waiter that leaves.
	if r.leave == nil {
		return waitq.Withdraw(r.mu, &r.w, nil)
	}
	return waitq.Withdraw(r.mu, &r.w, r.leave.ticketLeftLocked)
}

func (r *ticketRecord[T]) err() error {
	// Decided first: Refused is written before Ready closes.
	if r.w.Decided() {
		if r.w.Refused {
			return r.refusal
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

// newTicket makes a ticket for a request of weight in the line guarded by
// mu, with the primitive's leave policy and refusal error. It
// allocates the record and the channel, both here, in the goroutine that
// makes the ticket (R9).
func newTicket[T any](mu *sync.Mutex, leave ticketLeaver[T], refusal error, weight int) (*Ticket, *waitq.Waiter[T]) {
	b := &ticketBox[T]{}
	b.rec.init(mu, leave, refusal, weight)
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
	t, w := newTicket[struct{}](&l.mu, l, nil, 0)
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

// Stopped tickets run the Lock's leave policy.
var _ ticketLeaver[struct{}] = (*Lock)(nil)

// ticketLeftLocked clears lockWaiters when a stopped ticket was the last
// in line, as for a cancelled Lock. A Lock refuses nobody, so its tickets
// need no refusal error.
func (l *Lock) ticketLeftLocked(w *waitq.Waiter[struct{}]) { l.leftLocked(w) }

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
	// limit is the bound of a BoundedSemaphore and math.MaxInt otherwise,
	// so only a bounded request can exceed it.
	if uint64(n) > s.limit(bounded) {
		decideNow(w, true) // refused: the ticket's refusal is ErrExceedsBound
		return t
	}
	// The uncontended case: free permits with nobody in line.
	if s.tryAcquire(n) {
		decideNow(w, false)
		return t
	}
	s.mu.Lock()
	// Look at the bound again under mu: should a bound ever change, it
	// would change under mu, and then no request above it may join the
	// line.
	if uint64(n) > s.limit(bounded) {
		s.mu.Unlock()
		decideNow(w, true)
		return t
	}
	// Raise semaWaiters first, as a parking AcquireN does: from here on
	// the fast paths stay out, so the count only changes under mu and a
	// Release comes to serveLocked, which serves the ticket in its turn.
	st := s.state.Or(semaWaiters)
	if s.waiters.Len() == 0 && st>>semaShift >= uint64(n) {
		// Permits came back since tryAcquire, and nobody waits: take
		// them. Storing st lowers the flag this call raised; a flag
		// that was already up with nobody in line (should the
		// semaphore ever keep one for a reason of its own) stays up.
		s.state.Store(st - uint64(n)<<semaShift)
		s.mu.Unlock()
		decideNow(w, false)
		return t
	}
	s.waiters.PushBack(w)
	s.mu.Unlock()
	return t
}

// Stopped tickets run the sema's leave policy.
var _ ticketLeaver[struct{}] = (*sema)(nil)

// ticketLeftLocked serves the line again when a stopped ticket leaves it,
// as for a cancelled AcquireN: the ticket may have been the large request
// holding smaller ones back, and if it was the last, serveLocked hands the
// state back to the fast paths. A semaphore refuses only requests above
// its bound, so its refusal error is ErrExceedsBound.
func (s *sema) ticketLeftLocked(w *waitq.Waiter[struct{}]) { s.serveLocked(w) }

// PutTicket returns a ticket for putting item: a place in the same line as
// the blocked Put calls, which the caller waits for in a select (see
// Ticket). If there is room and no Put waits, the item is added before the
// ticket is returned. On a shut-down queue the ticket is decided at once
// with ErrQueueShutDown, and a Shutdown while it waits decides it with
// that error, the item not added. Once Ready is closed with a nil Err the
// item has been added; a Stop that returns true added nothing.
func (q *Queue[T]) PutTicket(item T) *Ticket {
	// The queue's leave policy, as for a cancelled Put or Get: one that
	// leaves holds nobody back (a Put waits only while the queue is full,
	// a Get only while it is empty), but a ring queue lets its fast paths
	// go again once nobody is parked.
	t, w := newTicket[T](&q.mu, q, ErrQueueShutDown, 0)
	q.mu.Lock()
	switch {
	case q.shut:
		decideNow(w, true) // refused: ticketRefusal says ErrQueueShutDown
	case q.ring != nil:
		q.ring.raise() // our decision must be final, as in putRing
		if q.addRingLocked(item) {
			q.lowerIfIdleLocked()
			decideNow(w, false)
			break
		}
		w.Value = item
		q.putters.PushBack(w)
	case q.fullLocked():
		// In line with the blocked Puts; the Get that makes room takes
		// the item in and grants the ticket, under mu.
		w.Value = item
		q.putters.PushBack(w)
	default:
		q.addLocked(item)
		decideNow(w, false)
	}
	q.mu.Unlock()
	return t
}

// GetTicket returns a ticket for getting an item: a place in the same line
// as the blocked Get calls, which the caller waits for in a select (see
// GetTicket). If an item is there, it is taken before the ticket is
// returned. On a shut-down, empty queue the ticket is decided at once with
// ErrQueueShutDown, and a Shutdown while it waits decides it with that
// error. Once Ready is closed with a nil Err, Item returns the item, which
// needs its TaskDone; a Stop that returns true took nothing.
func (q *Queue[T]) GetTicket() *GetTicket[T] {
	t := &GetTicket[T]{}
	t.rec.init(&q.mu, q, ErrQueueShutDown, 0) // the leave policy of PutTicket
	w := &t.rec.w
	q.mu.Lock()
	if q.ring != nil {
		q.getTicketRingLocked(w)
		q.mu.Unlock()
		return t
	}
	switch {
	case q.Len() > 0:
		// Gets wait only while the queue is empty, so nobody is ahead
		// of us; takeLocked lets a blocked Put fill the room.
		w.Value = q.takeLocked()
		decideNow(w, false)
	case q.shut:
		decideNow(w, true)
	default:
		// In line with the blocked Gets; the next Put hands its item
		// straight to the first of them, under mu.
		q.getters.PushBack(w)
	}
	q.mu.Unlock()
	return t
}

// getTicketRingLocked decides or lines up a GetTicket's waiter on a ring
// queue, as getRing does a Get. q.mu must be held.
func (q *Queue[T]) getTicketRingLocked(w *waitq.Waiter[T]) {
	if q.shut && q.ring.emptyLocked() {
		decideNow(w, true)
		return
	}
	q.ring.raise()
	if item, ok := q.takeRingLocked(); ok {
		q.lowerIfIdleLocked()
		w.Value = item
		decideNow(w, false)
		return
	}
	if q.shut && q.ring.emptyLocked() {
		decideNow(w, true)
		return
	}
	q.getters.PushBack(w)
}
