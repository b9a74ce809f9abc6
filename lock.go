package ctxsync

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// spinsBeforePark is how many times a blocked Lock, Acquire, AcquireN,
// RLock or RWLock.Lock looks again, yielding in between, for a free lock or
// free permits before it parks: a holder that is running often lets go
// within a few hundred nanoseconds, and parking costs a goroutine switch on
// both sides. The value was picked by hand; the benchmarks it moves are
// BenchmarkLockContended, BenchmarkSemaphoreContended and
// BenchmarkRWLockWriteHeavy (BENCHMARKS.md).
const spinsBeforePark = 4

// signalWaiterPool recycles the waiter records of the primitives whose
// waiters carry nothing but their wake-up: Lock, Semaphore, RWLock, Event
// and Condition.
var signalWaiterPool waitq.Pool[struct{}]

// Lock state bits. A Lock with waiters is always locked: Unlock hands the
// lock straight to the first waiter instead of setting it free, so
// lockWaiters is never set without lockHeld.
const (
	lockHeld    int32 = 1 << iota // someone holds the lock
	lockWaiters                   // the line is not empty: fast paths must go slow
)

// A Lock is a mutual exclusion lock whose Lock method can be cancelled
// through its context, like Python's asyncio.Lock. The zero value is an
// unlocked Lock. A Lock must not be copied after first use.
//
// A Lock is not reentrant and not tied to a goroutine: any goroutine may
// Unlock it, as with sync.Mutex.
//
// Fairness: blocked Lock calls are served strictly in the order they
// started waiting. Unlock hands the lock straight to the longest waiter, so
// Locked stays true across the hand-off and no newcomer, TryLock included,
// can overtake a waiter. If its context ends first, Lock returns ctx.Err()
// and leaves the Lock unchanged; the caller loses its place in line.
//
// In the terminology of the Go memory model, the n'th call to Unlock
// synchronizes before the m'th successful Lock or TryLock for any n < m.
type Lock struct {
	// state is read and changed with atomics so that the uncontended
	// Lock, TryLock and Unlock need not take mu. Once lockWaiters is set,
	// only holders of mu change it.
	state   atomic.Int32
	mu      sync.Mutex
	waiters waitq.List[struct{}]
}

// Lock blocks until the lock is held by the caller, or ctx ends.
//
// If ctx is already done, Lock returns ctx.Err() without taking the lock,
// even when the lock is free. If ctx ends while Lock waits, Lock returns
// ctx.Err() and leaves the lock unchanged; the caller loses its place in
// line. A hand-off that races with the end of ctx is either kept (Lock
// returns nil and the caller holds the lock) or passed on to the next
// waiter (Lock returns ctx.Err()), never lost.
func (l *Lock) Lock(ctx context.Context) error {
	// The uncontended case. Look at the context first: a done context
	// must fail even when the lock is free (R1), so the look must come
	// before the CAS that would take it. ctx.Err() is the cheapest exact
	// look (BenchmarkContextCheck): a non-blocking receive on ctx.Done()
	// costs more, and allocates the channel of a cancelCtx whose Done
	// nobody has asked for yet (R8); ctx.Done() == nil alone is no cheaper
	// for a context that never ends and cannot tell a live cancellable
	// context from a done one. It costs this path one indirect call more
	// than sync.Mutex's, and keeps Lock from being inlined (the inliner
	// charges each of its two calls, ctx.Err and lockSlow, most of its
	// budget).
	if ctx.Err() == nil && l.state.CompareAndSwap(0, lockHeld) {
		return nil
	}
	return l.lockSlow(ctx)
}

func (l *Lock) lockSlow(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Spin briefly before parking: a holder that is running will often
	// let go within a few hundred nanoseconds, and parking costs a
	// goroutine switch on both sides. Only a free lock with nobody in
	// line is taken, so spinning never overtakes a waiter.
	for range spinsBeforePark {
		preempt(ptLockState)
		if l.state.Load() == 0 && l.state.CompareAndSwap(0, lockHeld) {
			return nil
		}
		runtime.Gosched()
	}
	l.mu.Lock()
	w := signalWaiterPool.Get(ctx, 0)
	if l.enqueueLocked(w) {
		l.mu.Unlock()
		signalWaiterPool.Put(w)
		return nil
	}
	err := waitq.ParkUnlock(ctx, &l.mu, w, l.leftLocked)
	signalWaiterPool.Put(w)
	return err
}

// enqueueLocked takes the lock for w if it is free and nobody waits
// (returning true), or puts w at the end of the line. l.mu must be held.
func (l *Lock) enqueueLocked(w *waitq.Waiter[struct{}]) bool {
	for {
		s := l.state.Load()
		if s == 0 {
			if l.state.CompareAndSwap(0, lockHeld) {
				return true
			}
			continue
		}
		// Raise lockWaiters before the holder can unlock through the
		// fast path, so that its Unlock comes here for the hand-off.
		preempt(ptLockState)
		if s&lockWaiters != 0 || l.state.CompareAndSwap(s, s|lockWaiters) {
			preempt(ptLockState)
			l.waiters.PushBack(w)
			return false
		}
	}
}

// leftLocked runs when a waiter leaves unserved. l.mu is held.
func (l *Lock) leftLocked(*waitq.Waiter[struct{}]) {
	if l.waiters.Len() == 0 {
		// An atomic And, not a Store: if Unlock dropped this waiter
		// already, the lock may be free and in use by the fast paths.
		preempt(ptLockState)
		l.state.And(^lockWaiters)
	}
}

// pinLocked puts a Condition waiter in line for the lock, pinned so that
// its context no longer matters, or hands it the lock at once if the lock
// is free (someone may have unlocked it since it was last seen held). It
// serves both a notified waiter and one whose context ended, which must
// get the lock back all the same. l.mu is held.
func (l *Lock) pinLocked(w *waitq.Waiter[struct{}]) {
	w.Pinned = true
	if l.enqueueLocked(w) {
		waitq.Grant(w)
	}
}

// TryLock takes the lock if it is free and nobody waits for it, and
// reports whether it did. It never blocks.
func (l *Lock) TryLock() bool {
	return l.state.CompareAndSwap(0, lockHeld)
}

// Unlock releases the lock. If goroutines wait in Lock, the lock passes
// straight to the one that has waited longest.
//
// It panics if the lock is not locked.
func (l *Lock) Unlock() {
	// Held with nobody in line is the only state the fast path may end:
	// with lockWaiters up the lock goes to the first waiter under mu, and
	// a free lock is misuse. A CAS rather than sync.Mutex's atomic Add,
	// because an Add would drop lockHeld while waiters wait (Locked must
	// stay true across a hand-off) and could not leave an unlocked Lock
	// unchanged; an Add measured no faster on amd64 (each is one locked
	// instruction). Unlock is small enough to be inlined.
	if l.state.CompareAndSwap(lockHeld, 0) {
		return
	}
	l.unlockSlow()
}

func (l *Lock) unlockSlow() {
	l.mu.Lock()
	if l.state.Load()&lockHeld == 0 {
		l.mu.Unlock()
		panic("ctxsync: Unlock of unlocked Lock")
	}
	l.unlockLocked()
	l.mu.Unlock()
}

// unlockLocked releases a held lock, handing it to the first waiter whose
// context has not ended. l.mu must be held.
func (l *Lock) unlockLocked() {
	w := l.waiters.First()
	preempt(ptLockState)
	if w == nil {
		l.state.Store(0)
		return
	}
	if l.waiters.Len() == 1 {
		l.state.Store(lockHeld)
	}
	waitq.Grant(w)
}

// Locked reports whether the lock is held.
func (l *Lock) Locked() bool {
	return l.state.Load()&lockHeld != 0
}

// Waiting returns how many Lock calls are in line now and not yet granted,
// counting one whose context has just ended but that has not left the line
// yet. It is a snapshot for metrics and load shedding, and allocates
// nothing.
func (l *Lock) Waiting() int {
	// lockWaiters is raised under mu before the first waiter is pushed and
	// dropped under mu once the line is empty, so a clear bit means an
	// empty line at the moment of the load, and the common case needs no
	// lock.
	if l.state.Load()&lockWaiters == 0 {
		return 0
	}
	// The line itself is guarded by mu.
	l.mu.Lock()
	n := l.waiters.Len()
	l.mu.Unlock()
	return n
}

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
