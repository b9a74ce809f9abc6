package ctxsync

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// An Event is a flag that goroutines can wait for, like Python's
// asyncio.Event: Set raises it and wakes every waiter, Clear lowers it
// again. The zero value is an Event that is not set. An Event must not be
// copied after first use.
//
// A waiter woken by Set returns nil even if Clear follows at once. Waiters
// are woken together, in the order they started waiting. If its context
// ends first, Wait returns ctx.Err() and leaves the Event unchanged.
//
// In the terminology of the Go memory model, Set synchronizes before every
// Wait that it wakes or that finds the event set, and before a receive from
// a Done channel that it closes.
type Event struct {
	set     atomic.Bool // read without mu so that IsSet and a set Wait are cheap
	mu      sync.Mutex
	waiters waitq.List[struct{}]
	round   chan struct{} // what Done returns for this round; nil until asked for
}

// Set sets the event and wakes every goroutine waiting in Wait. Until Clear,
// Wait returns at once. Setting a set event does nothing.
func (e *Event) Set() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set.Load() {
		return
	}
	e.set.Store(true)
	// Every waiter is woken, abandoned ones too: the event is set, so nil
	// is a true answer for each of them.
	waitq.GrantAll(&e.waiters, nil)
	if e.round != nil {
		close(e.round)
	}
}

// Clear resets the event, so that Wait blocks again until the next Set.
// Channels handed out by Done before stay closed; later calls to Done get a
// fresh one.
func (e *Event) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set.Load() {
		e.set.Store(false)
		e.round = nil
	}
}

// IsSet reports whether the event is set.
func (e *Event) IsSet() bool { return e.set.Load() }

// Wait blocks until the event is set, or ctx ends. It returns nil at once if
// the event is already set, whatever the state of ctx. Otherwise, if ctx is
// done or ends while Wait blocks, it returns ctx.Err() and leaves the event
// unchanged.
func (e *Event) Wait(ctx context.Context) error {
	if e.set.Load() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	if e.set.Load() {
		e.mu.Unlock()
		return nil
	}
	w := signalWaiterPool.Get(ctx, 0)
	e.waiters.PushBack(w)
	err := waitq.ParkUnlock(ctx, &e.mu, w, nil)
	signalWaiterPool.Put(w)
	return err
}

// Done returns a channel that is closed when the event is set, for use in a
// select. Each round between a Clear and the next Set has a channel of its
// own: after Clear, Done returns a fresh channel, while those handed out
// before stay closed.
//
// The channel of a round is made by the first call to Done in that round.
// Inside a testing/synctest bubble, it belongs to the bubble of that call.
func (e *Event) Done() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.round == nil {
		e.round = make(chan struct{})
		if e.set.Load() {
			close(e.round)
		}
	}
	return e.round
}
