package ctxsync

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// The state word of an RWLock: from the low bits up, two flags, an epoch
// and a count.
//
// While both flags are clear (the lock is "fast"), the count is the read
// locks held, and RLock and RUnlock are one atomic add each. While either
// flag is set (the lock is "slow": a writer holds it, or someone waits),
// the read locks held are counted exactly in RWLock.readers, under mu, and
// the count in the word is only the adds of RLock and RUnlock fast paths
// that found a flag set and have not been settled yet. Each such add is
// settled by its own goroutine: taken back, and for an RUnlock counted off
// readers under mu. So an RLock on its way to the line is never counted
// as a reader (Readers stays exact), and an RUnlock that meets a waiting
// writer is seen under mu, where it can hand the lock over.
//
// The lock becomes fast again by a fold, under mu, once nobody waits and
// no writer holds it: the word takes readers into its count (with any
// unsettled adds, which then stand as a read lock taken or given back) and
// a new epoch. A goroutine settling an add compares the epoch it saw with
// the one now: if the lock folded in between, its add was taken in as it
// was, and there is nothing to take back. The epoch has 24 bits, so this
// could only be fooled by a goroutine stalled between two of its own
// atomic operations while the lock folds 16 million times.
//
// The count sits in the high bits so that adding or taking rwReader never
// carries into the epoch or the flags, and a count driven below zero by a
// misused RUnlock on a fast lock makes the whole word negative, which
// RUnlock's fast path sees with the same test as the flags.
const (
	rwWriter  int64 = 1 << iota // a writer holds the lock
	rwWaiters                   // the line is not empty: fast paths must go slow

	rwFlags = rwWriter | rwWaiters

	rwEpochShift       = 2
	rwEpochBits        = 24
	rwEpochOne   int64 = 1 << rwEpochShift
	rwEpochMask  int64 = (1<<rwEpochBits - 1) << rwEpochShift

	rwCountShift       = rwEpochShift + rwEpochBits
	rwReader     int64 = 1 << rwCountShift // one read lock in the count

	// rwNegative is the sign bit: set when the count is below zero.
	rwNegative int64 = -1 << 63
)

// rwFold returns the fast state word that s becomes when the lock stops
// being slow with readers read locks held: the count takes them in, on top
// of the adds not yet settled, and the epoch moves on.
func rwFold(s int64, readers int) int64 {
	count := s>>rwCountShift + int64(readers)
	return count<<rwCountShift | (s+rwEpochOne)&rwEpochMask
}

// Weights of the waiters in an RWLock's line: a read request asks for one
// share of the lock, a write request for all of it, as in a weighted
// semaphore. Only the difference matters: grantLocked lets in readers
// until it meets a writer.
const (
	rwReadWeight  = 1
	rwWriteWeight = math.MaxInt
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
	// calls need not take mu. Once a flag is set, only holders of mu
	// change the flags, except that the fast Unlock and Downgrade let a
	// writer that nobody waits for go without it.
	state atomic.Int64
	mu    sync.Mutex
	// readers is the read locks held while the lock is slow; 0 while it
	// is fast, when the state word counts them.
	readers int
	line    waitq.List[struct{}] // readers and writers, in the order they came
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
	s := rw.state.Add(rwReader)
	if s&rwFlags == 0 {
		return nil
	}
	return rw.rLockSlow(ctx, s)
}

// rLockSlow is RLock once its fast path's add met a flag; added is the
// state word that add made.
func (rw *RWLock) rLockSlow(ctx context.Context, added int64) error {
	// The add is no read lock while the lock is slow: take it back. A
	// CAS that also checks the epoch, so that it cannot cross a fold: if
	// the lock has folded since, the fold took the add in as a read lock,
	// granted at a moment when nobody waited and no writer held the lock.
	s := added
	preempt(ptRWState)
	for !rw.state.CompareAndSwap(s, s-rwReader) {
		s = rw.state.Load()
		if (s^added)&rwEpochMask != 0 {
			return nil
		}
	}
	if (s-rwReader)&rwFlags == rwWriter {
		// Only a writer holds the lock, and nobody is in line. Spin
		// briefly before parking, as Lock does: a writer that is
		// running will often let go within a few hundred nanoseconds,
		// and parking costs a goroutine switch on both sides.
		// TryRLock takes only a lock with no writer and nobody in line,
		// so spinning never overtakes a waiter.
		for range spinsBeforePark {
			if rw.TryRLock() {
				return nil
			}
			runtime.Gosched()
		}
	}
	rw.mu.Lock()
	if err := ctx.Err(); err != nil {
		// Ended since the first look: fail without any effect (R3).
		rw.mu.Unlock()
		return err
	}
	w := signalWaiterPool.Get(ctx, rwReadWeight)
	if rw.enqueueLocked(w) {
		rw.mu.Unlock()
		signalWaiterPool.Put(w)
		return nil
	}
	err := waitq.ParkUnlock(ctx, &rw.mu, w, rw.leftLocked)
	signalWaiterPool.Put(w)
	return err
}

// TryRLock takes a read lock if no writer holds the lock and nobody waits,
// and reports whether it did. It never blocks.
func (rw *RWLock) TryRLock() bool {
	// A CAS loop rather than the add of RLock: a failed Try must leave
	// no trace in the word. The loop only retries when another reader's
	// add or release moved the count. A slow lock always has a writer or
	// someone in line (it folds as soon as it has neither), so a flag
	// means no.
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

// rUnlockSlow is RUnlock once its fast path's add met a flag or drove the
// count below zero; added is the state word that add made.
func (rw *RWLock) rUnlockSlow(added int64) {
	if added&rwFlags == 0 {
		// A fast lock, and the count went below zero: no read lock was
		// held. Put the count back before panicking with the lock as it
		// was (R6). No fold or move under mu takes in a count below
		// zero (enqueueLocked waits for it), so this needs no mu.
		rw.state.Add(rwReader)
		panic("ctxsync: RUnlock of RWLock without a read lock")
	}
	preempt(ptRWState)
	rw.mu.Lock()
	if s := rw.state.Load(); (s^added)&rwEpochMask != 0 {
		// The lock folded since the add, which took it in as the read
		// lock given back.
		if s&rwFlags == 0 && s < 0 {
			// ... and the fold came out below zero, so no read lock
			// was held: put it back, as on a fast lock.
			rw.state.Add(rwReader)
			rw.mu.Unlock()
			panic("ctxsync: RUnlock of RWLock without a read lock")
		}
		rw.mu.Unlock()
		return
	}
	// The lock is still slow: the read locks are counted in readers.
	// Take the add back and count the read lock off there instead.
	rw.state.Add(rwReader)
	if rw.readers == 0 {
		rw.mu.Unlock()
		panic("ctxsync: RUnlock of RWLock without a read lock")
	}
	rw.readers--
	if rw.readers == 0 {
		// The last reader: a writer at the head may go now. (Nobody
		// else can be let in by fewer readers.)
		rw.grantLocked()
	}
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
	if ctx.Err() == nil && rw.TryLock() {
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
	for range spinsBeforePark {
		if rw.TryLock() {
			return nil
		}
		runtime.Gosched()
	}
	rw.mu.Lock()
	w := signalWaiterPool.Get(ctx, rwWriteWeight)
	if rw.enqueueLocked(w) {
		rw.mu.Unlock()
		signalWaiterPool.Put(w)
		return nil
	}
	err := waitq.ParkUnlock(ctx, &rw.mu, w, rw.leftLocked)
	signalWaiterPool.Put(w)
	return err
}

// TryLock takes the write lock if nobody holds it and nobody waits, and
// reports whether it did. It never blocks.
func (rw *RWLock) TryLock() bool {
	// Only a word with nothing but an epoch lets a writer in: no writer,
	// no read lock, nobody in line. Setting rwWriter makes the lock slow
	// with readers at 0, which it is while the lock is fast.
	s := rw.state.Load()
	return s&^rwEpochMask == 0 && rw.state.CompareAndSwap(s, s|rwWriter)
}

// Unlock releases the write lock. The lock passes straight to those at the
// head of the line: a writer, or the readers up to the first writer.
//
// It panics if the write lock is not held.
func (rw *RWLock) Unlock() {
	// Nobody in line and no unsettled add: the lock becomes fast again
	// with nothing to fold in.
	if s := rw.state.Load(); s&^rwEpochMask == rwWriter && rw.state.CompareAndSwap(s, s&^rwWriter) {
		return
	}
	rw.unlockSlow()
}

func (rw *RWLock) unlockSlow() {
	rw.mu.Lock()
	// Apart from the holder's own fast path, only holders of mu clear
	// rwWriter, so this look cannot be overtaken.
	if rw.state.Load()&rwWriter == 0 {
		rw.mu.Unlock()
		panic("ctxsync: Unlock of RWLock without the write lock")
	}
	rw.releaseLocked(0)
	rw.mu.Unlock()
}

// Downgrade turns the caller's write lock into a read lock, in one step,
// and lets in with it the readers at the head of the line, up to the first
// writer. No writer can take the lock in between.
//
// It panics if the write lock is not held.
func (rw *RWLock) Downgrade() {
	// Nobody in line and no unsettled add: one CAS makes the write lock
	// one read lock of a fast lock.
	if s := rw.state.Load(); s&^rwEpochMask == rwWriter && rw.state.CompareAndSwap(s, s&^rwWriter+rwReader) {
		return
	}
	rw.downgradeSlow()
}

func (rw *RWLock) downgradeSlow() {
	rw.mu.Lock()
	if rw.state.Load()&rwWriter == 0 {
		rw.mu.Unlock()
		panic("ctxsync: Downgrade of RWLock without the write lock")
	}
	rw.releaseLocked(1)
	rw.mu.Unlock()
}

// releaseLocked ends the write lock, leaving readers read locks held (1
// for the caller of Downgrade), and lets in whoever that lets in. rw.mu
// must be held, and a writer hold the lock.
func (rw *RWLock) releaseLocked(readers int) {
	// readers was 0 under the writer. Set it before the writer bit goes:
	// whoever reads it next holds mu, after this call.
	rw.readers = readers
	if rw.line.Len() == 0 {
		// Nobody waits: fold at once, the writer bit going in the same
		// CAS, so that the lock is never slow with neither a writer nor
		// a line (TryRLock relies on it).
		for {
			s := rw.state.Load()
			preempt(ptRWState)
			if rw.state.CompareAndSwap(s, rwFold(s&^rwWriter, rw.readers)) {
				rw.readers = 0
				return
			}
		}
	}
	// rwWaiters stays set, so the lock stays slow while grantLocked lets
	// in the head of the line.
	preempt(ptRWState)
	rw.state.And(^rwWriter)
	rw.grantLocked()
}

// Readers returns the number of read locks held now. The read locks are
// counted, not tied to goroutines, as with sync.RWMutex.
//
// While anyone waits or a writer holds the lock, it counts them under the
// lock's mutex, so that an RLock on its way into the line is never
// counted.
func (rw *RWLock) Readers() int {
	s := rw.state.Load()
	if s&rwFlags == 0 {
		// A fast lock: the word counts them. Below zero only for the
		// instant a misused RUnlock puts it back.
		return int(max(s>>rwCountShift, 0))
	}
	if s&rwWriter != 0 {
		return 0
	}
	// A slow lock counts them under mu.
	rw.mu.Lock()
	n := rw.readers
	if s := rw.state.Load(); s&rwFlags == 0 {
		n = int(max(s>>rwCountShift, 0)) // folded meanwhile
	}
	rw.mu.Unlock()
	return n
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

// enqueueLocked grants w at once if the lock lets it in and nobody waits
// (returning true), or puts it at the end of the line. rw.mu must be held.
// The line is settled whenever mu is free (see grantLocked), so a slow
// lock lets nobody in: it has a writer or a line, and w must queue (R4).
func (rw *RWLock) enqueueLocked(w *waitq.Waiter[struct{}]) bool {
	for {
		s := rw.state.Load()
		if s&rwFlags == 0 {
			// A fast lock: no writer, nobody in line. A CAS from the
			// state decided on, so that a read add or release in
			// between makes w decide again.
			if w.Weight == rwReadWeight {
				if rw.state.CompareAndSwap(s, s+rwReader) {
					return true
				}
				continue
			}
			count := s >> rwCountShift
			switch {
			case count == 0:
				if rw.state.CompareAndSwap(s, s|rwWriter) {
					return true
				}
				continue
			case count < 0:
				// A misused RUnlock is putting the count back; it
				// does so without mu, at once.
				runtime.Gosched()
				continue
			}
			// Readers hold it: make the lock slow, moving their count
			// under mu in the same CAS, so that from now on each of
			// their releases comes to mu and can hand the lock to w.
			preempt(ptRWState)
			if rw.state.CompareAndSwap(s, s&rwEpochMask|rwWaiters) {
				rw.readers = int(count)
				rw.line.PushBack(w)
				return false
			}
			continue
		}
		// Raise rwWaiters in the same CAS that saw the lock held, so
		// that a writer's fast Unlock cannot slip through unseen: it
		// comes to mu instead, to hand the lock over.
		preempt(ptRWState)
		if s&rwWaiters != 0 || rw.state.CompareAndSwap(s, s|rwWaiters) {
			rw.line.PushBack(w)
			return false
		}
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
// holds the lock, or that writer if no reader holds it either. Once the
// line is empty it clears rwWaiters, and folds the lock back to fast if no
// writer holds it. rw.mu must be held and the lock slow, or fast with an
// empty line. It is called after every change that may let someone in,
// so the line is always settled when mu is released: a waiter at the head
// waits for a holder, never for nothing.
func (rw *RWLock) grantLocked() {
	for {
		// First skips waiters whose context has ended: each is leaving
		// on its own, and granting it would only make it hand the lock
		// back.
		w := rw.line.First()
		if w == nil {
			rw.emptiedLocked()
			return
		}
		if rw.state.Load()&rwWriter != 0 {
			return
		}
		if w.Weight == rwWriteWeight {
			if rw.readers != 0 {
				return
			}
			// Mark the writer before waking it, so no newcomer sees
			// the lock free. rwWaiters stays set while the line is
			// not empty, and the next round clears it otherwise.
			rw.state.Or(rwWriter)
			waitq.Grant(w)
			continue
		}
		// A reader at the head with no writer holding: in it goes, and
		// the loop goes on to the readers behind it.
		rw.readers++
		waitq.Grant(w)
	}
}

// emptiedLocked brings the word in line with an empty line: rwWaiters
// clear, and the lock fast again unless a writer holds it. rw.mu is held.
func (rw *RWLock) emptiedLocked() {
	for {
		s := rw.state.Load()
		var next int64
		switch {
		case s&rwFlags == 0:
			return // fast already
		case s&rwWriter != 0:
			next = s &^ rwWaiters
		default:
			next = rwFold(s&^rwWaiters, rw.readers)
		}
		if next == s {
			return
		}
		// A CAS, not an And: unsettled adds may move the count, and a
		// writer that nobody waits for may unlock without mu.
		preempt(ptRWState)
		if rw.state.CompareAndSwap(s, next) {
			if next&rwWriter == 0 {
				rw.readers = 0 // now in the word
			}
			return
		}
	}
}
