package ctxsync

import (
	"context"
	"sync"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// A Barrier lets a fixed number of goroutines, its parties, wait for each
// other, like Python's asyncio.Barrier: each calls Wait, and once all
// parties are waiting they are released together. The barrier is cyclic:
// it then starts a new round. Make one with NewBarrier. The zero value has
// no parties, and a barrier of none could only park its callers for good,
// so every method of a zero Barrier panics. A Barrier must not be copied
// after first use.
//
// Each released party gets a distinct index from 0 to parties-1, by its
// order of arrival among those released together. Goroutines that arrive
// while a tripped round is still leaving wait for the next round. If the
// context of a waiting party ends before its round trips, Wait returns
// ctx.Err() and the party withdraws, leaving the Barrier unbroken.
//
// In the terminology of the Go memory model, every Wait of a round
// synchronizes before any Wait of that round returns.
type Barrier struct {
	parties int // never changes
	mu      sync.Mutex
	broken  bool
	// The parties waiting in the current round, in order of arrival. A
	// waiter's Value is the index it is given when the round trips; Reset
	// and Abort send it away Refused.
	waiters waitq.List[barrierIndex]
}

// barrierIndex is what a Barrier hands each party of a round that trips.
type barrierIndex int

// barrierWaiterPool recycles the waiter records of every Barrier.
var barrierWaiterPool waitq.Pool[barrierIndex]

// NewBarrier returns a Barrier for the given number of parties. It panics
// if parties < 1.
func NewBarrier(parties int) *Barrier {
	if parties < 1 {
		panic("ctxsync: Barrier needs at least 1 party")
	}
	return &Barrier{parties: parties}
}

// mustBeMade refuses a zero Barrier. parties never changes after
// NewBarrier, so it needs no lock.
func (b *Barrier) mustBeMade() {
	if b.parties == 0 {
		panic("ctxsync: zero Barrier; make one with NewBarrier")
	}
}

// Wait blocks until all parties of the round are waiting, then returns the
// caller's index in the round and nil.
//
// On any error Wait returns -1: ErrBrokenBarrier if the barrier is broken or
// is reset or aborted while the caller waits (reported in preference to the
// context's error), else ctx.Err() if ctx is done when Wait starts or ends
// before the round trips. A waiter whose context ends withdraws: it is no
// longer counted and the barrier is not broken. A round that has tripped is
// final: its parties get their indexes whatever happens afterwards.
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	b.mustBeMade()
	b.mu.Lock()
	if b.broken {
		b.mu.Unlock()
		return -1, ErrBrokenBarrier
	}
	if err := ctx.Err(); err != nil {
		b.mu.Unlock()
		return -1, err
	}
	if b.waiters.Len()+1 == b.parties {
		// The caller completes the round. Everyone in line is released,
		// also a waiter whose context has just ended but that has not
		// withdrawn yet: the trip comes first and is kept.
		var index barrierIndex
		waitq.GrantAll(&b.waiters, func(w *waitq.Waiter[barrierIndex]) {
			w.Value = index
			index++
		})
		b.mu.Unlock()
		return int(index), nil
	}
	w := barrierWaiterPool.Get(ctx, 0)
	b.waiters.PushBack(w)
	err := waitq.ParkUnlock(ctx, &b.mu, w, nil)
	index, refused := w.Value, w.Refused
	barrierWaiterPool.Put(w)
	switch {
	case err != nil:
		return -1, err
	case refused:
		return -1, ErrBrokenBarrier
	}
	return int(index), nil
}

// releaseBrokenLocked sends every waiter away with ErrBrokenBarrier. b.mu
// is held.
func (b *Barrier) releaseBrokenLocked() {
	waitq.RefuseAll(&b.waiters)
}

// Reset returns the barrier to its empty, unbroken state. Goroutines
// waiting at that moment return ErrBrokenBarrier.
func (b *Barrier) Reset() {
	b.mustBeMade()
	b.mu.Lock()
	b.releaseBrokenLocked()
	b.broken = false
	b.mu.Unlock()
}

// Abort breaks the barrier: goroutines waiting now, and every Wait until
// the next Reset, return ErrBrokenBarrier.
func (b *Barrier) Abort() {
	b.mustBeMade()
	b.mu.Lock()
	b.releaseBrokenLocked()
	b.broken = true
	b.mu.Unlock()
}

// Parties returns the number of parties needed to trip the barrier.
func (b *Barrier) Parties() int {
	b.mustBeMade()
	return b.parties
}

// Waiting returns the number of parties waiting in the current round.
func (b *Barrier) Waiting() int {
	b.mustBeMade()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.Len()
}

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool {
	b.mustBeMade()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.broken
}
