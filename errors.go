package ctxsync

import "errors"

// Errors returned by ctxsync calls. Each reports a state of the object that
// makes the call fail for good, so it is reported in preference to the
// context's error when both apply.
var (
	// ErrQueueFull is returned by TryPut on a full bounded queue.
	ErrQueueFull = errors.New("ctxsync: queue full")
	// ErrQueueEmpty is returned by TryGet on an empty queue.
	ErrQueueEmpty = errors.New("ctxsync: queue empty")
	// ErrQueueShutDown is returned by puts once a queue is shut down, and
	// by gets once it is also empty.
	ErrQueueShutDown = errors.New("ctxsync: queue shut down")
	// ErrBrokenBarrier is returned by Barrier.Wait while the barrier is
	// broken, and to waiters caught by Reset or Abort.
	ErrBrokenBarrier = errors.New("ctxsync: barrier broken")
	// ErrExceedsBound is returned by BoundedSemaphore.AcquireN for a
	// request larger than the bound, which could never be served.
	ErrExceedsBound = errors.New("ctxsync: request exceeds semaphore bound")
)

// ErrTicketStopped is what Ticket.Err and GetTicket.Err return once Stop
// has withdrawn the ticket's request: it was never decided, and never
// will be.
var ErrTicketStopped = errors.New("ctxsync: ticket stopped")

// ErrAbandoned is the cause with which a Group cancels the context of a
// call's function once every caller that joined the call has left.
var ErrAbandoned = errors.New("ctxsync: call abandoned")
