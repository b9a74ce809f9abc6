// Package waitq is the one waiter line that every ctxsync primitive parks on.
//
// It knows nothing of locks, permits or items. A primitive keeps its own
// state and one sync.Mutex; under that mutex it decides whether a call can go
// on at once, and if not, it pushes a Waiter into a List and calls
// ParkUnlock, which lets go of the mutex while it waits. To let a waiter go
// it calls Grant, which wakes the waiter by closing the waiter's own
// channel; a waiter sent away unserved is granted with Refused set
// (RefuseAll does that for a whole line). Everything a Waiter is linked
// into must be guarded by the same mutex: a waiter may move from one List to
// another (a notified Condition waiter moves into its Lock's line) and
// ParkUnlock looks at it under that mutex alone.
//
// Cancellation is written once, in ParkUnlock, in the shape of
// golang.org/x/sync/semaphore: when the context ends while a waiter is
// parked, ParkUnlock re-takes the mutex and looks whether the grant came
// first. A grant that came is kept (ParkUnlock returns nil); otherwise the
// waiter leaves the
// line and the primitive's policy for a leaving waiter runs, so nothing is
// lost and nothing is doubled.
//
// A ticket is a waiter that no goroutine parks on: its caller waits for
// Ready in a select of its own and may withdraw it. Withdrawing is written
// once, in Withdraw, in the same shape as the cancellation in ParkUnlock:
// under the owner's mutex, a waiter still in its line leaves it and the
// primitive's policy for a leaving waiter runs; one that is no longer in a
// line has been decided (or withdrawn already), and stays as it is.
package waitq

import (
	"context"
	"sync"
	"sync/atomic"
)

// Waiter is one parked call. Weight, Refused and Value are the primitive's
// to use, each with one meaning whatever the primitive. They are read and
// written under the owner's mutex; a value written before Grant is
// visible to the waiter once ParkUnlock returns.
type Waiter[T any] struct {
	next, prev *Waiter[T]
	list       *List[T] // the line w is in; nil once granted or removed

	// ready is closed exactly once, by Grant. It is made for this call
	// only and never reused, so a waiter parked inside a testing/synctest
	// bubble is durably blocked and no channel leaves its bubble.
	ready chan struct{}
	done  <-chan struct{} // the caller's ctx.Done(); nil never fires

	granted bool

	// chosen is set when First returns w: from then on First returns w
	// again without looking at its context (see First). First chooses
	// only the head, and a chosen waiter stays the head until it leaves
	// its line for good, moves into a line where it is Pinned (a notified
	// Condition waiter), or goes round a rotation that keeps the line's
	// order (SetBound's refusals), so the mark never needs taking back.
	chosen bool

	// withdrawn is set, under the owner's mutex, when Withdraw takes a
	// ticket's waiter out of its line. It is atomic so that a ticket can
	// report it without that mutex.
	withdrawn atomic.Bool

	// Pinned marks a waiter whose grant has been promised, such as a
	// notified Condition waiter that now only waits for its lock: it
	// ignores its context, and First does not drop it.
	Pinned bool

	// Refused is set before the Grant that wakes a waiter without
	// serving it, because the object can no longer serve it (a Queue
	// shut down, a Barrier reset or aborted, a BoundedSemaphore's bound
	// lowered below the request).
	Refused bool

	// Weight is how much the call asks for: a Semaphore request's
	// permits. It is 0 for calls that ask for one thing.
	Weight int

	// Value is what is handed over, in either direction: the item of a
	// Queue's Put or Get, the index a Barrier gives a party.
	Value T
}

// NewWaiter returns a waiter for one blocking call made with ctx, asking
// for weight.
func NewWaiter[T any](ctx context.Context, weight int) *Waiter[T] {
	return &Waiter[T]{ready: make(chan struct{}), done: ctx.Done(), Weight: weight}
}

// InitTicket makes w a ticket's waiter asking for weight: a request that
// no goroutine parks on, whose caller waits for Ready in a select of its
// own. Its channel is made here, by the goroutine that makes the ticket,
// and never reused (R9). It has no context, so First never drops it: it
// waits until it is granted, refused or withdrawn. A ticket's record is
// not pooled, since nobody can tell when its caller is done with it.
func (w *Waiter[T]) InitTicket(weight int) {
	w.ready = make(chan struct{})
	w.Weight = weight
}

// Ready returns the channel that Grant closes.
func (w *Waiter[T]) Ready() <-chan struct{} { return w.ready }

// Decided reports whether w has been granted or refused, without the
// owner's mutex: the close of Ready happens after every field the grant
// wrote, so a caller that sees true may read them.
func (w *Waiter[T]) Decided() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// Withdrawn reports whether Withdraw took w out of its line. It needs no
// mutex.
func (w *Waiter[T]) Withdrawn() bool { return w.withdrawn.Load() }

// Withdraw takes a ticket's waiter out of its line if it is still waiting
// there, runs onLeave (may be nil) under mu as ParkUnlock runs onCancel for
// a cancelled waiter, and returns true; w is then spent and never decided.
// It returns false if w was already granted, refused or withdrawn.
//
// This is the whole of "withdrawing races a grant": grants are made under
// mu and take the waiter out of its line before they unlock, so under mu a
// waiter is either still in its line (not granted: withdrawing wins, and
// onLeave passes on what it held back) or not (granted, and its channel is
// already closed: the grant wins). Never both, never neither.
//
// onLeave must not put w back in a line or grant it: a ticket is not a
// Condition waiter that must get its lock back.
func Withdraw[T any](mu *sync.Mutex, w *Waiter[T], onLeave func(*Waiter[T])) bool {
	mu.Lock()
	if w.list == nil {
		// Granted or refused (Grant takes a waiter out of its line
		// under mu, and closes its channel before mu is let go), or
		// withdrawn by an earlier call.
		mu.Unlock()
		return false
	}
	w.list.Remove(w)
	// Marked before mu is let go: a later Withdraw, which returns false,
	// is then sure to see it.
	w.withdrawn.Store(true)
	if onLeave != nil {
		onLeave(w)
	}
	if w.list != nil || w.granted {
		mu.Unlock()
		panic("waitq: a withdrawn ticket was put back in line or granted")
	}
	mu.Unlock()
	return true
}

// Pool recycles waiter records, so that a blocking call allocates only its
// wake-up channel, which is never reused (R9). The zero value is ready to
// use.
type Pool[T any] struct{ p sync.Pool }

// Get returns a waiter for one blocking call made with ctx, asking for
// weight.
func (p *Pool[T]) Get(ctx context.Context, weight int) *Waiter[T] {
	w, _ := p.p.Get().(*Waiter[T])
	if w == nil {
		return NewWaiter[T](ctx, weight)
	}
	*w = Waiter[T]{ready: make(chan struct{}), done: ctx.Done(), Weight: weight}
	return w
}

// Put recycles w once its call is over: ParkUnlock has returned and the
// caller has read what it needs. Nothing else refers to w by then: a waiter
// is only referred to by the line it is in, and leaves every line before
// ParkUnlock returns.
func (p *Pool[T]) Put(w *Waiter[T]) {
	*w = Waiter[T]{} // drop the channel, the context and the item
	p.p.Put(w)
}

// Granted reports whether w has been granted.
func (w *Waiter[T]) Granted() bool { return w.granted }

// abandoned reports whether w's context has ended while it waits: such a
// waiter will leave by itself, so handing it anything would only make it
// hand it back.
func (w *Waiter[T]) abandoned() bool {
	if w.Pinned || w.chosen {
		return false
	}
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// List is a FIFO line of waiters. The zero value is an empty line. It is
// intrusive, so pushing and removing any waiter is O(1) and allocates
// nothing.
type List[T any] struct {
	head, tail *Waiter[T]
	n          int
}

// Len returns the number of waiters in line, including any whose context
// has ended but that have not left yet.
func (l *List[T]) Len() int { return l.n }

// PushBack puts w at the end of the line. w must not be in a line.
func (l *List[T]) PushBack(w *Waiter[T]) {
	if w.list != nil {
		panic("waitq: waiter already in a line")
	}
	w.list = l
	w.prev = l.tail
	w.next = nil
	if l.tail == nil {
		l.head = w
	} else {
		l.tail.next = w
	}
	l.tail = w
	l.n++
}

// Remove takes w out of l. It does nothing if w is not in l.
func (l *List[T]) Remove(w *Waiter[T]) {
	if w.list != l {
		return
	}
	if w.prev == nil {
		l.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		l.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.next, w.prev, w.list = nil, nil, nil
	l.n--
}

// Head returns the first waiter in line, whatever its context, or nil.
func (l *List[T]) Head() *Waiter[T] { return l.head }

// First returns the first waiter in line whose context had not ended when
// First reached it, or nil. Waiters found abandoned on the way are dropped
// from the line without a grant: each is already leaving through its
// context and will return ctx.Err(), so whatever the primitive wanted to
// hand over goes to a waiter that will keep it.
//
// First is stable: once it has returned w, it returns w again, without
// looking at w's context, for as long as w is at the head. A context ends
// without the owner's mutex, so a First that looked again could drop the
// very waiter that its caller had just decided on, and the take that
// follows the decision would find another waiter, or none (the Queue.Get
// panic of issue 21). With a stable First a primitive may read the line as
// often as it likes within one step under its mutex, and it acts on what it
// decided on. The price is small and allowed by R3: a waiter that First has
// returned and whose context ends before it is served may still be served,
// and then keeps what it was handed (ParkUnlock keeps a grant that came
// first).
func (l *List[T]) First() *Waiter[T] {
	for w := l.head; w != nil; w = l.head {
		if !w.abandoned() {
			w.chosen = true
			return w
		}
		l.Remove(w)
	}
	return nil
}

// Grant takes w out of its line, if it is in one, and wakes it: its
// ParkUnlock returns nil. Call Grant at most once per waiter.
func Grant[T any](w *Waiter[T]) {
	if w.list != nil {
		w.list.Remove(w)
	}
	w.granted = true
	close(w.ready)
}

// GrantAll grants every waiter in l, in order, abandoned ones too, after
// calling set (if not nil) on each to leave it its answer.
func GrantAll[T any](l *List[T], set func(w *Waiter[T])) {
	for w := l.head; w != nil; w = l.head {
		if set != nil {
			set(w)
		}
		Grant(w)
	}
}

// RefuseAll wakes every waiter in l as GrantAll does, each marked Refused:
// its ParkUnlock returns nil, and the primitive reports why it was not
// served.
func RefuseAll[T any](l *List[T]) {
	GrantAll(l, func(w *Waiter[T]) { w.Refused = true })
}

// parkHook, when a test sets it, runs in the goroutine of every call that
// parks, once it has let go of the owner's mutex and before it waits: a
// test can hold it there while it grants the call, ends its context, or
// both, and so choose what the call finds when it looks, which the
// scheduler decides otherwise.
var parkHook atomic.Pointer[func()]

// SetParkHook makes f run in every call that parks, before it waits, and
// returns the hook set before (nil for none). For tests only; f == nil
// removes the hook.
func SetParkHook(f func()) (previous func()) {
	var old *func()
	if f == nil {
		old = parkHook.Swap(nil)
	} else {
		old = parkHook.Swap(&f)
	}
	if old == nil {
		return nil
	}
	return *old
}

// ParkUnlock blocks the caller until w is granted or ctx ends. Call it with
// mu held and w in a line; like the runtime's goparkunlock, it releases mu
// while it waits, and returns without it. ctx must be the context w was
// made with.
//
// It returns nil when w was granted, also when ctx ended at the same moment:
// a grant is kept, never undone. Otherwise it takes w out of its line and
// runs onCancel (may be nil) under mu: the primitive's policy for a waiter
// that leaves unserved, such as letting smaller requests behind it go. That
// policy may put w back in a line as Pinned, or grant it (a Condition waiter
// must get its lock back even when its context ends); ParkUnlock then waits
// for that grant, ignoring ctx. Either way it returns ctx.Err().
func ParkUnlock[T any](ctx context.Context, mu *sync.Mutex, w *Waiter[T], onCancel func(*Waiter[T])) error {
	ready := w.ready
	mu.Unlock()
	if h := parkHook.Load(); h != nil {
		(*h)()
	}

	if w.done == nil {
		// A context that never ends: a plain receive is cheaper than a
		// select.
		<-ready
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-w.done:
	}

	mu.Lock()
	if w.granted {
		// The grant came while we were being cancelled: keep it, so
		// that it is neither lost nor doubled.
		mu.Unlock()
		return nil
	}
	if w.Pinned {
		// Promised a grant that is on its way; the context no longer
		// matters.
		mu.Unlock()
		<-ready
		return nil
	}
	if w.list != nil {
		w.list.Remove(w)
	}
	if onCancel != nil {
		onCancel(w)
	}
	requeued := w.list != nil || w.granted
	mu.Unlock()
	if requeued {
		<-ready
	}
	return ctx.Err()
}
