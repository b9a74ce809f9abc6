package ctxsync

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// The state word of an RWLock: two flags in the low bits and, above them,
// a count of read locks. The count sits in the high bits so that adding or
// taking rwReader never carries into the flags, and a count driven below
// zero by a misused RUnlock makes the whole word negative, which RUnlock's
// fast path sees with one comparison.
//
// The count is the read locks held plus, for an instant, the adds of
// RLocks whose fast path found a flag set (see rLockSlow): each such add
// is taken back, or kept as a read lock if the flags are gone by the time
// its owner looks again. No writer is granted while the count is not zero,
// so such an add can only delay a writer, never let one in beside a
// reader; and a goroutine that takes its add back while others wait
// settles the line under mu at once, so the delay ends with it.
const (
	rwWriter  int64 = 1 << iota // a writer holds the lock
	rwWaiters                   // the line is not empty: fast paths must go slow
	rwReader                    // one read lock in the count

	rwFlags = rwWriter | rwWaiters

	// rwNegative is the sign bit: set when the count is below zero.
	rwNegative int64 = -1 << 63
)

// Weights of the waiters in an RWLock's line: a read request asks for one
// share of the lock, a write request for all of it. Only the difference
// matters: grantLocked lets in readers until it meets a writer.
const (
	rwReadWeight  = 1
	rwWriteWeight = 2
)

// An RWLock is a reader/writer mutual exclusion lock whose RLock and Lock
// can be cancelled through their context. The lock can be held by any
// number of readers or by one writer. The zero value is an unlocked
// RWLock. An RWLock must not be copied after first use.
//
// Readers and writers stand in one FIFO line. The readers at the head of
// the line, up to the first writer, are granted together; a writer is
// granted once it is at the head and nobody holds the lock. A reader that
// arrives while anyone waits, a writer included, queues behind them, so
// writers never starve; TryRLock and TryLock fail while anyone waits. When
// a waiting writer at the head leaves on its context, the readers queued
// behind it are granted in the same step, unless a writer holds the lock.
// Downgrade turns the write lock into a read lock and grants the readers
// then at the head with it, with no writer in between.
//
// An RWLock is not tied to a goroutine, as with sync.RWMutex: any goroutine
// may unlock it, and the read locks are only counted.
//
// In the terminology of the Go memory model, the n'th call to Unlock
// synchronizes before the m'th successful Lock or TryLock for any n < m,
// as with a Lock. For any call to RLock or a successful TryRLock, there is
// an n such that the n'th call to Unlock synchronizes before the return of
// that call, and the matching call to RUnlock synchronizes before the
// return of call n+1 to Lock. A Downgrade acts as an Unlock followed by an
// RLock that cannot fail.
type RWLock struct {
	// state is read and changed with atomics so that the uncontended
	// calls need not take mu. While rwWaiters is set, the flags change
	// only under mu; the count may still move by the fast paths of
	// RLock (an add it takes back) and RUnlock.
	state atomic.Int64
	mu    sync.Mutex
	line  waitq.List[struct{}] // readers and writers, in the order they came
}

// RLock blocks until the caller holds a read lock, or ctx ends.
//
// If ctx is already done, RLock returns ctx.Err() without taking the lock,
// even when it is free. If ctx ends while RLock waits, RLock returns
// ctx.Err() and leaves the lock unchanged; the caller loses its place in
// line. A grant that races with the end of ctx is either kept (RLock
// returns nil and the caller holds a read lock) or passed on, never lost.
func (rw *RWLock) RLock(ctx context.Context) error {
	// R1: a done context fails even when the lock is free, so look at it
	// before the add.
	if err := ctx.Err(); err != nil {
		return err
	}
	// The uncontended case, one atomic add as in sync.RWMutex: with no
	// writer holding the lock and nobody in line, the add is the read
	// lock.
	if rw.state.Add(rwReader)&rwFlags == 0 {
		return nil
	}
	return rw.rLockSlow(ctx)
}

func (rw *RWLock) rLockSlow(ctx context.Context) error {
	// The fast path's add went in while a writer held the lock or others
	// waited. If both have gone since, the add stands as a read lock: no
	// writer can have been granted while it was counted, and nobody is in
	// line to overtake.
	if rw.state.Load()&rwFlags == 0 {
		return nil
	}
	// Otherwise it is no read lock. Take it back before anything else, so
	// that it holds back a writer no longer than needed.
	if rw.state.Add(-rwReader)&rwWaiters == 0 {
		// Only a writer holds the lock, and nobody is in line that the
		// add could have held back. Spin briefly before parking, as
		// Lock does: a writer that is running will often let go within
		// a few hundred nanoseconds, and parking costs a goroutine
		// switch on both sides. TryRLock takes only a lock with no
		// writer and nobody in line, so spinning never overtakes a
		// waiter.
		for range lockSpins {
			if rw.TryRLock() {
				return nil
			}
			runtime.Gosched()
		}
	}
	// With someone in line, go straight to mu: the add taken back may
	// have been all that held back a writer at the head.
	rw.mu.Lock()
	// Taking the add back may have left a waiting head writer free to go:
	// settle the line before looking at it, so that it is seen as it
	// truly is.
	rw.grantLocked()
	if err := ctx.Err(); err != nil {
		// Ended since the first look: fail without any effect (R3).
		rw.mu.Unlock()
		return err
	}
	w := signalWaiters.Get(ctx, rwReadWeight)
	if rw.enqueueLocked(w) {
		rw.mu.Unlock()
		signalWaiters.Put(w)
		return nil
	}
	err := waitq.ParkUnlock(ctx, &rw.mu, w, rw.leftLocked)
	signalWaiters.Put(w)
	return err
}

// TryRLock takes a read lock if no writer holds the lock and nobody waits,
// and reports whether it did. It never blocks.
func (rw *RWLock) TryRLock() bool {
	// A CAS loop rather than the add of RLock: a failed Try must leave
	// no trace in the count, not even for an instant. The loop only
	// retries when another reader's add or release moved the count.
	for s := rw.state.Load(); s&rwFlags == 0; s = rw.state.Load() {
		if rw.state.CompareAndSwap(s, s+rwReader) {
			return true
		}
	}
	return false
}

// RUnlock gives back one read lock. When it was the last one and a writer
// waits at the head of the line, the lock passes straight to that writer.
//
// It panics if no read lock is held.
func (rw *RWLock) RUnlock() {
	// The uncontended case, one atomic add. The sign bit is a count
	// driven below zero (no read lock was held); a flag means there may be
	// someone to hand the lock to. One test for both keeps RUnlock small
	// enough to inline.
	if s := rw.state.Add(-rwReader); s&(rwFlags|rwNegative) != 0 {
		rw.rUnlockSlow(s)
	}
}

func (rw *RWLock) rUnlockSlow(s int64) {
	if s < 0 || s&rwWriter != 0 {
		// Misuse: no read lock can be held, as the count went negative
		// or a writer holds the lock. Put the read lock back under mu,
		// and settle the line, since someone may have looked at the
		// count while it was short, before panicking with the lock as
		// it was (R6).
		rw.mu.Lock()
		rw.state.Add(rwReader)
		rw.grantLocked()
		rw.mu.Unlock()
		panic("ctxsync: RUnlock of RWLock without a read lock")
	}
	if s>>2 != 0 {
		// Other readers still hold the lock: nobody in line can go yet,
		// since the head of the line is a writer.
		return
	}
	rw.mu.Lock()
	rw.grantLocked()
	rw.mu.Unlock()
}

// Lock blocks until the caller holds the write lock, or ctx ends.
//
// If ctx is already done, Lock returns ctx.Err() without taking the lock,
// even when it is free. If ctx ends while Lock waits, Lock returns
// ctx.Err() and leaves the lock unchanged; the caller loses its place in
// line, and readers queued right behind it are let in if nobody else
// holds them back. A grant that races with the end of ctx is either kept
// or passed on, never lost.
func (rw *RWLock) Lock(ctx context.Context) error {
	// The uncontended case: free, nobody in line. Look at the context
	// first: a done context must fail even when the lock is free (R1).
	if ctx.Err() == nil && rw.state.CompareAndSwap(0, rwWriter) {
		return nil
	}
	return rw.lockSlow(ctx)
}

func (rw *RWLock) lockSlow(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Spin as rLockSlow does; only a free lock with nobody in line is
	// taken.
	for range lockSpins {
		if rw.state.Load() == 0 && rw.state.CompareAndSwap(0, rwWriter) {
			return nil
		}
		runtime.Gosched()
	}
	rw.mu.Lock()
	w := signalWaiters.Get(ctx, rwWriteWeight)
	if rw.enqueueLocked(w) {
		rw.mu.Unlock()
		signalWaiters.Put(w)
		return nil
	}
	err := waitq.ParkUnlock(ctx, &rw.mu, w, rw.leftLocked)
	signalWaiters.Put(w)
	return err
}

// TryLock takes the write lock if nobody holds it and nobody waits, and
// reports whether it did. It never blocks.
func (rw *RWLock) TryLock() bool {
	// A zero word is the only state that lets a writer in: no writer, no
	// read lock, nobody in line.
	return rw.state.CompareAndSwap(0, rwWriter)
}

// Unlock releases the write lock. The lock passes straight to those at the
// head of the line: a writer, or the readers up to the first writer.
//
// It panics if the write lock is not held.
func (rw *RWLock) Unlock() {
	// Nobody in line and no stray read add: nothing to hand over.
	if rw.state.CompareAndSwap(rwWriter, 0) {
		return
	}
	rw.unlockSlow()
}

func (rw *RWLock) unlockSlow() {
	rw.mu.Lock()
	// Only holders of mu clear rwWriter once it is set and the fast path
	// failed, so this look cannot be overtaken.
	if rw.state.Load()&rwWriter == 0 {
		rw.mu.Unlock()
		panic("ctxsync: Unlock of RWLock without the write lock")
	}
	// An atomic And, not a Store: stray read adds may move the count.
	rw.state.And(^rwWriter)
	rw.grantLocked()
	rw.mu.Unlock()
}

// Downgrade turns the caller's write lock into a read lock, in one step,
// and lets in with it the readers at the head of the line, up to the first
// writer. No writer can take the lock in between.
//
// It panics if the write lock is not held.
func (rw *RWLock) Downgrade() {
	// Nobody in line: the write lock becomes one read lock in one CAS.
	if rw.state.CompareAndSwap(rwWriter, rwReader) {
		return
	}
	rw.mu.Lock()
	if rw.state.Load()&rwWriter == 0 {
		rw.mu.Unlock()
		panic("ctxsync: Downgrade of RWLock without the write lock")
	}
	// One atomic add clears rwWriter and counts the caller's read lock
	// together, so at no moment is the lock free for a writer.
	rw.state.Add(rwReader - rwWriter)
	rw.grantLocked()
	rw.mu.Unlock()
}

// Readers returns the number of read locks held now. The read locks are
// counted, not tied to goroutines, as with sync.RWMutex.
//
// While a writer waits and readers hold the lock, an RLock that is just
// arriving may be counted for an instant before it takes its place in
// line: its fast path counts first and looks after. Once every call has
// settled, the count is exact.
func (rw *RWLock) Readers() int {
	s := rw.state.Load()
	if s&rwWriter != 0 {
		// Any count beside a writer is a stray add about to be taken
		// back, not a reader.
		return 0
	}
	return int(max(s>>2, 0))
}

// Locked reports whether a writer holds the lock.
func (rw *RWLock) Locked() bool {
	return rw.state.Load()&rwWriter != 0
}

// Waiting returns the number of RLock and Lock calls in line now that have
// not been granted, counting one whose context has just ended but that has
// not left yet. It is a snapshot, for metrics and load shedding.
func (rw *RWLock) Waiting() int {
	rw.mu.Lock()
	n := rw.line.Len()
	rw.mu.Unlock()
	return n
}

// enqueueLocked grants w at once if the line is empty and the lock lets it
// in (returning true), or puts it at the end of the line. rw.mu must be
// held, and the line settled (see grantLocked): then a non-empty line can
// let nobody in, and w must queue behind it (R4).
func (rw *RWLock) enqueueLocked(w *waitq.Waiter[struct{}]) bool {
	for {
		s := rw.state.Load()
		if s&rwWaiters == 0 {
			// The line is empty: w may go now if the lock lets it.
			// A CAS from the state it decided on, so that a read add
			// or release in between makes it decide again.
			if w.Weight == rwReadWeight && s&rwWriter == 0 {
				if rw.state.CompareAndSwap(s, s+rwReader) {
					return true
				}
				continue
			}
			if w.Weight == rwWriteWeight && s == 0 {
				if rw.state.CompareAndSwap(0, rwWriter) {
					return true
				}
				continue
			}
			// Raise rwWaiters in the same CAS that saw the lock held,
			// so that the holder's release cannot slip through its
			// fast path unseen: it comes to grantLocked instead.
			if !rw.state.CompareAndSwap(s, s|rwWaiters) {
				continue
			}
		}
		rw.line.PushBack(w)
		return false
	}
}

// leftLocked runs when a waiter leaves unserved. rw.mu is held. A writer
// that leaves may have held back the readers behind it, or, leaving last,
// the fast paths: settling the line lets them go in the same step.
func (rw *RWLock) leftLocked(*waitq.Waiter[struct{}]) {
	rw.grantLocked()
}

// grantLocked lets in as many waiters from the head of the line as the
// lock allows now: the readers up to the first writer, unless a writer
// holds the lock, or that writer if nobody holds it. It clears rwWaiters
// once the line is empty. rw.mu must be held. It is called after every
// change that may let someone in, so the line is always settled when mu
// is released: a waiter at the head waits for a holder, never for nothing.
func (rw *RWLock) grantLocked() {
	for {
		// First skips waiters whose context has ended: each is leaving
		// on its own, and granting it would only make it hand the lock
		// back.
		w := rw.line.First()
		if w == nil {
			// And, not Store: the count may be moving under us.
			rw.state.And(^rwWaiters)
			return
		}
		s := rw.state.Load()
		if s&rwWriter != 0 {
			return
		}
		if w.Weight == rwWriteWeight {
			if s>>2 != 0 {
				// Readers hold the lock (or a stray add is about
				// to leave, and its owner will settle the line).
				return
			}
			// Count the writer before waking it, so no newcomer sees
			// the lock free. rwWaiters stays set if others are left,
			// and the next round clears it otherwise.
			rw.state.Add(rwWriter)
			waitq.Grant(w)
			continue
		}
		// A reader at the head with no writer holding: in it goes, and
		// the loop goes on to the readers behind it.
		rw.state.Add(rwReader)
		waitq.Grant(w)
	}
}
