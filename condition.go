package ctxsync

import (
	"context"
	"math"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// A Condition lets goroutines wait, holding a Lock, until another goroutine
// notifies them that something has changed, like Python's
// asyncio.Condition and Go's sync.Cond, but with waits that a context can
// end. The zero value is ready to use with a Lock of its own; NewCondition
// makes one that shares a Lock. A Condition must not be copied after first
// use.
//
// Notify and NotifyAll wake waiters in the order they started waiting.
// Woken waiters do not stampede: each joins the Lock's FIFO line, behind
// goroutines already waiting in Lock, and they return one at a time, in the
// order they were notified, as the lock is handed to them. If its context
// ends first, Wait takes the lock back and returns ctx.Err(), and no
// notification is spent on it.
//
// In the terminology of the Go memory model, a Notify or NotifyAll
// synchronizes before the return of each Wait that it wakes, and, as for
// Lock, each Unlock synchronizes before the Lock or Wait it lets go on.
type Condition struct {
	l       *Lock // nil: own is the lock
	own     Lock
	waiters waitq.List[struct{}] // guarded by the lock's internal mutex
}

// NewCondition returns a Condition that uses l as its lock. If l is nil, the
// Condition makes its own Lock.
func NewCondition(l *Lock) *Condition {
	return &Condition{l: l}
}

func (c *Condition) lock() *Lock {
	if c.l != nil {
		return c.l
	}
	return &c.own
}

// Lock takes the Condition's lock; see Lock.Lock.
func (c *Condition) Lock(ctx context.Context) error { return c.lock().Lock(ctx) }

// TryLock takes the Condition's lock if it is free and nobody waits for it;
// see Lock.TryLock.
func (c *Condition) TryLock() bool { return c.lock().TryLock() }

// Unlock releases the Condition's lock; see Lock.Unlock.
func (c *Condition) Unlock() { c.lock().Unlock() }

// Locked reports whether the Condition's lock is held.
func (c *Condition) Locked() bool { return c.lock().Locked() }

// Wait releases the lock, waits until it is notified, takes the lock again
// and returns nil. It panics if the lock is not held.
//
// Wait always returns with the lock held. If ctx is already done, Wait
// returns ctx.Err() at once without letting go of the lock. If ctx ends
// while Wait waits, Wait takes the lock back, ignoring ctx, and then
// returns ctx.Err(); no notification is spent on it. A waiter that has been
// notified returns nil, whatever its context does afterwards.
func (c *Condition) Wait(ctx context.Context) error {
	return c.wait(ctx, "ctxsync: Condition.Wait without holding the lock")
}

func (c *Condition) wait(ctx context.Context, misuse string) error {
	l := c.lock()
	l.mu.Lock()
	if l.state.Load()&lockHeld == 0 {
		l.mu.Unlock()
		panic(misuse)
	}
	if err := ctx.Err(); err != nil {
		l.mu.Unlock()
		return err
	}
	w := signalWaiterPool.Get(ctx, 0)
	c.waiters.PushBack(w)
	l.unlockLocked()
	// Notify moves w into the lock's line, so the grant that ends
	// ParkUnlock is the lock itself. If ctx ends first, pinLocked puts w in
	// that line instead, and ParkUnlock waits for the lock before
	// returning ctx.Err().
	err := waitq.ParkUnlock(ctx, &l.mu, w, l.pinLocked)
	signalWaiterPool.Put(w)
	return err
}

// WaitFor waits until pred returns true. It calls pred, with the lock
// held, before waiting and after each wake-up, and returns nil as soon as
// pred is true, whatever the state of ctx. If ctx ends first, it returns
// ctx.Err(), with the lock held. It panics if the lock is not held, even if
// pred is already true. If pred panics, the panic goes on with the lock
// held.
func (c *Condition) WaitFor(ctx context.Context, pred func() bool) error {
	const misuse = "ctxsync: Condition.WaitFor without holding the lock"
	if !c.Locked() {
		panic(misuse)
	}
	for !pred() {
		if err := c.wait(ctx, misuse); err != nil {
			return err
		}
	}
	return nil
}

// Notify wakes up to n goroutines waiting on the Condition, in the order
// they started waiting; n <= 0 wakes none. Waiters whose context has ended
// are passed over, so no notification is spent on them. Each woken waiter
// returns from Wait once the lock is handed to it, after the caller and
// those already waiting in Lock. Notify panics if the lock is not held.
func (c *Condition) Notify(n int) {
	c.notify(n, "ctxsync: Condition.Notify without holding the lock")
}

// NotifyAll wakes every goroutine waiting on the Condition; see Notify. It
// panics if the lock is not held.
func (c *Condition) NotifyAll() {
	c.notify(math.MaxInt, "ctxsync: Condition.NotifyAll without holding the lock")
}

// notify moves up to n waiters into the lock's line.
func (c *Condition) notify(n int, misuse string) {
	l := c.lock()
	l.mu.Lock()
	if l.state.Load()&lockHeld == 0 {
		l.mu.Unlock()
		panic(misuse)
	}
	for ; n > 0; n-- {
		// First passes over waiters whose context has ended: they are
		// leaving, and a notification spent on them would be lost.
		w := c.waiters.First()
		if w == nil {
			break
		}
		c.waiters.Remove(w)
		// Picked: pinned, w returns nil whatever its context does now.
		l.pinLocked(w)
	}
	l.mu.Unlock()
}
