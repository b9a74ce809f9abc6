package ctxsync

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// A Group runs one call of a function per key at a time, and gives its
// result to every caller that asked for the key while it ran: the cache
// stampede, with contexts. The zero value is ready to use. A Group must not
// be copied after first use.
//
// Unlike golang.org/x/sync/singleflight, each caller can leave: a caller
// whose context ends returns ctx.Err() at once while the call goes on for
// the others. The function runs in a goroutine of its own under a context
// that keeps the values of the first caller's context but not its
// cancellation or deadline; that context is cancelled, with cause
// ErrAbandoned, once every caller has left, and the key is then free for a
// new call at once. There is no caching: a Do after a call has delivered
// starts a new one.
//
// Fairness does not arise: every caller waiting for a call gets its result
// at the same moment.
//
// In the terminology of the Go memory model, the return of a call's
// function synchronizes before the return of every Do, and the close of
// every GroupTicket's Ready channel, that delivers its result.
type Group[K comparable, V any] struct {
	_    noCopy
	mu   sync.Mutex
	m    map[K]*groupCall[K, V] // the calls a Do would join now
	peak int                    // the most keys m held since it was last dropped
}

// groupCall is one run of a function, and who waits for it. Its fields
// are guarded by g.mu, but for the result, which deliver writes under g.mu
// before it cancels ctx, and callers read after they see ctx done.
type groupCall[K comparable, V any] struct {
	g   *Group[K, V]
	key K

	val V
	err error
	pe  *PanicError

	callers   int         // callers and tickets that joined and have not left
	delivered atomic.Bool // the result is in: a caller that leaves now takes it; set under g.mu, after the result
	values    groupValues // the parent of ctx
	ctx       context.Context
	cancel    context.CancelCauseFunc
	tickets   *GroupTicket[V] // the waiting tickets, linked through next
}

// errGoexit is the error a call delivers when its function called
// runtime.Goexit: it returned no value, and raised no panic to re-raise.
var errGoexit = errors.New("ctxsync: Group call's function called runtime.Goexit")

// A PanicError is what a Group raises, in each caller waiting for a call,
// when the call's function panicked: the value it panicked with and the
// stack of the function's goroutine at the panic.
type PanicError struct {
	Value any    // what the function panicked with
	Stack []byte // the stack of the function's goroutine at the panic
}

// Error returns the panic value and the stack at the panic.
func (e *PanicError) Error() string {
	return fmt.Sprintf("ctxsync: panic in Group call: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error, so that errors.Is and
// errors.As see through to it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Do calls fn for key, or joins the call for key already running, and
// returns its value and error. It blocks until the call delivers, or ctx
// ends.
//
// fn runs in a goroutine of its own, with a context that carries ctx's
// values but not its cancellation or deadline, cancelled with cause
// ErrAbandoned once every caller has left, and cancelled once fn has
// returned. If ctx is already done, Do returns ctx.Err() and neither starts
// nor joins a call. If ctx ends before the call delivers, Do returns
// ctx.Err() at once and the call goes on for the others; if both happen at
// once, Do returns either the call's result or ctx.Err().
//
// If fn panics, Do panics with a *PanicError holding the value and fn's
// stack, in every caller waiting; if none waits, the panic crashes the
// program, as any goroutine's would.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(ctx context.Context) (V, error)) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
	g.mu.Lock()
	c, started := g.joinLocked(ctx, key)
	g.mu.Unlock()
	if started {
		// Always in a goroutine of its own, even for a caller that can
		// never leave (ctx.Done() == nil), which could run fn itself: the
		// contract promises fn its own goroutine, and its panic's stack.
		go c.run(fn)
		// Let fn run first: a quick one is then done by the time we look
		// again, and we return without parking and being woken, the
		// costliest part of a fresh call after starting the goroutine.
		// The look is a load of the call's own flag: it makes no
		// channel, and costs less than the context's Err, a call through
		// an interface (BENCHMARKS.md).
		runtime.Gosched()
		if c.delivered.Load() {
			return c.result()
		}
	}
	// fn's context ends when the call delivers, or when every caller has
	// left, which cannot happen while we are in: its Done is our wake-up.
	select {
	case <-c.ctx.Done():
		return c.result()
	case <-ctx.Done():
	}
	if c.leave() {
		var zero V
		return zero, ctx.Err()
	}
	// Delivered as ctx ended: the result was meant for us, and a panic
	// must not be swallowed.
	return c.result()
}

// joinLocked joins the call running for key, or makes one, with fn's
// context carrying ctx's values, and reports that the caller must run fn.
// g.mu must be held.
func (g *Group[K, V]) joinLocked(ctx context.Context, key K) (c *groupCall[K, V], started bool) {
	if c = g.m[key]; c != nil {
		c.callers++
		return c, false
	}
	c = &groupCall[K, V]{g: g, key: key, callers: 1}
	c.values.Context = ctx
	c.ctx, c.cancel = context.WithCancelCause(&c.values)
	if g.m == nil {
		g.m = make(map[K]*groupCall[K, V])
	}
	g.m[key] = c
	g.peak = max(g.peak, len(g.m))
	return c, true
}

// groupValues is the parent of a call's context: the values of the
// context of the caller that started the call, without its cancellation
// or deadline, as context.WithoutCancel gives, but held in the call
// itself rather than allocated apart.
type groupValues struct{ context.Context }

func (*groupValues) Deadline() (deadline time.Time, ok bool) { return }
func (*groupValues) Done() <-chan struct{}                   { return nil }
func (*groupValues) Err() error                              { return nil }
func (v *groupValues) String() string                        { return "ctxsync.Group call values" }

// forgetLocked drops c from the calls a Do would join, if it is still
// there. g.mu must be held.
func (g *Group[K, V]) forgetLocked(c *groupCall[K, V]) {
	if g.m[c.key] != c {
		return
	}
	delete(g.m, c.key)
	// Go maps never shrink: once a burst of keys is over, drop the map so
	// that its memory goes back.
	if len(g.m) == 0 && g.peak >= groupShrinkMin {
		g.m, g.peak = nil, 0
	}
}

// run calls fn and delivers its result, or its panic.
func (c *groupCall[K, V]) run(fn func(context.Context) (V, error)) {
	var (
		val      V
		err      error
		returned bool
	)
	defer func() {
		var pe *PanicError
		if !returned {
			if r := recover(); r != nil {
				// Still on the panicking goroutine, so this is fn's
				// stack at the panic.
				pe = &PanicError{Value: r, Stack: debug.Stack()}
			} else {
				err = errGoexit
			}
		}
		waiting := c.deliver(val, err, pe)
		if pe != nil && waiting == 0 {
			// Nobody is left to re-raise it: crash as any goroutine's
			// panic would, rather than swallow it.
			panic(pe)
		}
	}()
	val, err = fn(c.ctx)
	returned = true
}

// deliver hands the result to every caller still waiting, frees the key,
// cancels fn's context, and returns how many callers take the result.
func (c *groupCall[K, V]) deliver(val V, err error, pe *PanicError) int {
	g := c.g
	g.mu.Lock()
	c.val, c.err, c.pe = val, err, pe
	c.delivered.Store(true)
	g.forgetLocked(c)
	waiting := c.callers
	// fn has returned: its context ends, which wakes the callers in Do, now
	// that the result is in. A call abandoned before keeps ErrAbandoned as
	// its cause (and then nobody is left in Do to wake). All of it under
	// g.mu, as abandoning is, so the two are ordered: a caller that sees
	// its ticket Ready, or the result, sees fn's context ended too, and a
	// ticket's Stop that returns false finds Ready closed. Cancelling calls
	// nothing of ours back: a context's cancellation only closes channels
	// and starts the goroutines of its AfterFuncs.
	c.cancel(nil)
	for t := c.tickets; t != nil; t = t.next {
		close(t.ready)
	}
	c.tickets = nil
	g.mu.Unlock()
	return waiting
}

// leave takes a caller out of c, and reports whether it left before the
// result was in. The last to leave abandons the call.
func (c *groupCall[K, V]) leave() bool {
	g := c.g
	g.mu.Lock()
	if c.delivered.Load() {
		g.mu.Unlock()
		return false
	}
	c.leaveLocked()
	g.mu.Unlock()
	return true
}

// leaveLocked counts a caller out and, if it was the last, abandons the
// call: it frees the key at once and cancels fn's context with cause
// ErrAbandoned. g.mu must be held.
func (c *groupCall[K, V]) leaveLocked() {
	c.callers--
	if c.callers > 0 {
		return
	}
	c.g.forgetLocked(c)
	c.cancel(ErrAbandoned)
}

// result returns the call's result, or re-raises its panic. The result
// must be in.
func (c *groupCall[K, V]) result() (V, error) {
	if c.pe != nil {
		panic(c.pe)
	}
	return c.val, c.err
}

// DoTicket joins the call for key, or starts one with fn, as Do does, and
// returns a ticket the caller waits for in a select of its own. A ticket
// has no context: fn's context carries no values, and the ticket counts
// as a caller until the call delivers or Stop takes it out.
func (g *Group[K, V]) DoTicket(key K, fn func(ctx context.Context) (V, error)) *GroupTicket[V] {
	t := &GroupTicket[V]{ready: make(chan struct{})}
	g.mu.Lock()
	c, started := g.joinLocked(context.Background(), key)
	t.call = c
	t.next = c.tickets
	if t.next != nil {
		t.next.prev = t
	}
	c.tickets = t
	g.mu.Unlock()
	if started {
		go c.run(fn)
	}
	return t
}

// Forget makes the next Do for key start a new call. Callers already
// waiting for the running call still get its result.
func (g *Group[K, V]) Forget(key K) {
	g.mu.Lock()
	if c := g.m[key]; c != nil {
		g.forgetLocked(c)
	}
	g.mu.Unlock()
}

// InFlight returns how many keys have a call that a Do would join now.
func (g *Group[K, V]) InFlight() int {
	g.mu.Lock()
	n := len(g.m)
	g.mu.Unlock()
	return n
}

// groupTicketCall is what a GroupTicket, which knows only its value type,
// needs of its call.
type groupTicketCall[V any] interface {
	stopTicket(t *GroupTicket[V]) bool
	ticketResult() (V, error)
}

// A call is what its tickets refer to.
var _ groupTicketCall[int] = (*groupCall[string, int])(nil)

// A GroupTicket is a caller of a Group's call that waits for it in a select
// of its own, next to channels, timers and ctx.Done():
//
//	t := g.DoTicket(key, fetch)
//	select {
//	case <-t.Ready():
//		return t.Value(), t.Err()
//	case <-ctx.Done():
//		if t.Stop() {
//			return zero, ctx.Err() // left the call
//		}
//		return t.Value(), t.Err() // delivered as we gave up
//	}
//
// Stop leaves the call like a caller whose context ended. A GroupTicket
// must not be copied, and the methods of a zero GroupTicket panic.
//
// In the terminology of the Go memory model, the return of the call's
// function synchronizes before a receive from Ready that observes it
// closed.
type GroupTicket[V any] struct {
	_          noCopy
	ready      chan struct{}
	call       groupTicketCall[V]
	next, prev *GroupTicket[V] // in the call's list of tickets, under g.mu
	stopped    atomic.Bool
}

const errZeroGroupTicket = "ctxsync: zero GroupTicket; tickets come from Group.DoTicket"

func (t *GroupTicket[V]) made() *GroupTicket[V] {
	if t.ready == nil {
		panic(errZeroGroupTicket)
	}
	return t
}

// Ready returns a channel that is closed once the call has delivered. It
// never closes after Stop has returned true.
func (t *GroupTicket[V]) Ready() <-chan struct{} { return t.made().ready }

func (t *GroupTicket[V]) delivered() bool {
	select {
	case <-t.made().ready:
		return true
	default:
		return false
	}
}

// Value returns, once Ready is closed, the call's value; before, or after a
// Stop that returned true, the zero value. If the call's function
// panicked, Value panics with the *PanicError.
func (t *GroupTicket[V]) Value() V {
	if !t.delivered() {
		var zero V
		return zero
	}
	v, _ := t.call.ticketResult()
	return v
}

// Err returns, once Ready is closed, the call's error; ErrTicketStopped
// once Stop has returned true; and nil while the call runs. If the call's
// function panicked, Err panics with the *PanicError.
func (t *GroupTicket[V]) Err() error {
	if t.delivered() {
		_, err := t.call.ticketResult()
		return err
	}
	if t.stopped.Load() {
		return ErrTicketStopped
	}
	return nil
}

// Stop leaves the call, as a caller whose context ended does, if it has not
// delivered yet, and reports whether it did: then Ready never closes and
// Err returns ErrTicketStopped, and if the ticket was the last caller the
// call is abandoned. It returns false if the call had delivered (Ready is
// closed) or an earlier Stop returned true.
func (t *GroupTicket[V]) Stop() bool { return t.made().call.stopTicket(t) }

// stopTicket is GroupTicket.Stop. It and ticketResult are reached through
// groupTicketCall, which the unused linter does not follow for a generic
// type.
//
//nolint:unused // called through the groupTicketCall interface
func (c *groupCall[K, V]) stopTicket(t *GroupTicket[V]) bool {
	g := c.g
	g.mu.Lock()
	if c.delivered.Load() || t.stopped.Load() {
		g.mu.Unlock()
		return false
	}
	t.stopped.Store(true)
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		c.tickets = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.next, t.prev = nil, nil
	c.leaveLocked()
	g.mu.Unlock()
	return true
}

//nolint:unused // called through the groupTicketCall interface
func (c *groupCall[K, V]) ticketResult() (V, error) { return c.result() }

// groupShrinkMin is the fewest keys a Group's map must have held for it to
// be dropped when it empties: a map that only ever held a few is kept, so
// that calls one at a time do not make a map each.
const groupShrinkMin = 64
