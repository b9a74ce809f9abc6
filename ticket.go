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
