package ctxsync

import (
	"context"
	"sync/atomic"
)

// A KeyedLock is a set of Locks, one for each key, made when a key is
// first locked and dropped once nobody holds it or waits for it: "lock
// this user's row" for keys that cannot be listed in advance. The zero
// value is ready to use, with every key unlocked. A KeyedLock must not be
// copied after first use.
//
// Each key behaves exactly as its own Lock, with the same rules: Lock(ctx,
// key) returns ctx.Err() at once when ctx is already done, and ctx.Err()
// when ctx ends while it waits, leaving the key as it was; Unlock hands the
// key straight to its longest waiter. Keys are independent: a waiter on
// one key never holds back another.
//
// A key takes memory only while it is held or waited for (tickets
// included), and the memory of a burst of keys is given back. Keys are
// spread over shards, each with its own mutex, so calls on different keys
// rarely contend.
//
// Fairness: blocked Lock calls and tickets on one key are served strictly
// in the order they started waiting, and no newcomer, TryLock included,
// overtakes them.
//
// In the terminology of the Go memory model, the n'th call to Unlock(key)
// synchronizes before the m'th successful Lock(key) or TryLock(key) for any
// n < m.
type KeyedLock[K comparable] struct {
	_   noCopy
	tab atomic.Pointer[keyedTable[K, Lock]]
}

func (m *KeyedLock[K]) table() *keyedTable[K, Lock] {
	if t := m.tab.Load(); t != nil {
		return t
	}
	// The zero value makes its table on first use. Racing first calls
	// each make one and all take the one that was stored first.
	m.tab.CompareAndSwap(nil, newKeyedTable[K, Lock](0))
	return m.tab.Load()
}

// Lock blocks until the caller holds key's lock, or ctx ends.
//
// If ctx is already done, Lock returns ctx.Err() without taking the lock,
// even when the key is free. If ctx ends while Lock waits, Lock returns
// ctx.Err() and leaves the key as it was; the caller loses its place in
// the key's line. A hand-off that races with the end of ctx is either kept
// (nil) or passed on to the next waiter (ctx.Err()), never lost.
func (m *KeyedLock[K]) Lock(ctx context.Context, key K) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		// Nobody holds or wants the key: take it with a new entry.
		addHeldLocked(sh, h, key)
		sh.mu.Unlock()
		return nil
	}
	if e.v.TryLock() {
		sh.mu.Unlock()
		return nil
	}
	// Count the call in before letting go of the shard, so that the entry
	// outlives the wait.
	e.refs++
	sh.mu.Unlock()
	err := e.v.Lock(ctx)
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 && e.v.state.Load() == 0 {
		retireFreeLocked(sh, h, e)
	}
	sh.mu.Unlock()
	return err
}

// TryLock takes key's lock if nobody holds it or waits for it, and reports
// whether it did. It never blocks.
func (m *KeyedLock[K]) TryLock(key K) bool {
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		addHeldLocked(sh, h, key)
		sh.mu.Unlock()
		return true
	}
	ok := e.v.TryLock()
	sh.mu.Unlock()
	return ok
}

const errKeyedUnlock = "ctxsync: KeyedLock.Unlock of unlocked key"

// Unlock releases key's lock. If goroutines wait for the key, the lock
// passes straight to the one that has waited longest; otherwise the key's
// entry is dropped.
//
// It panics, changing nothing, if the key is not locked.
func (m *KeyedLock[K]) Unlock(key K) {
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	// Every Unlock of a key goes through its shard's mutex, so a key seen
	// locked here stays locked until the Unlock below.
	if e == nil || !e.v.Locked() {
		sh.mu.Unlock()
		panic(errKeyedUnlock)
	}
	if e.refs == 0 && e.v.state.Load() == lockHeld {
		// Held, with nobody in line or on the way in: the entry goes as
		// it is, still held, ready for the next key that takes it.
		sh.retireLocked(h, e)
		sh.mu.Unlock()
		return
	}
	e.v.Unlock()
	if e.refs == 0 && e.v.state.Load() == 0 {
		retireFreeLocked(sh, h, e)
	}
	sh.mu.Unlock()
}

// LockTicket returns a ticket for key's lock: a place in the same line as
// the key's blocked Lock calls, which the caller waits for in a select (see
// Ticket). If the key is free and nobody waits, the ticket is granted
// before it is returned. Once Ready is closed the caller holds the key and
// must Unlock it; a Stop that returns true left the key as it was (and
// dropped its entry if nobody else wants it).
func (m *KeyedLock[K]) LockTicket(key K) *Ticket {
	b, t := newKeyedTicket[K](m, key, nil, 0)
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		e = addHeldLocked(sh, h, key)
		b.rec.mu, b.rec.leave = &e.v.mu, &e.v
		decideNow(&b.rec.w, false)
		sh.mu.Unlock()
		return t
	}
	b.rec.mu, b.rec.leave = &e.v.mu, &e.v
	// A ticket in the line keeps the lock held, and so the entry alive,
	// without a count: the entry goes only once the key is idle.
	e.v.mu.Lock()
	if e.v.enqueueLocked(&b.rec.w) {
		decideNow(&b.rec.w, false)
	}
	e.v.mu.Unlock()
	sh.mu.Unlock()
	return t
}

// settle retires key's entry if a withdrawn ticket left it idle.
func (m *KeyedLock[K]) settle(key K) {
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	if e := sh.findLocked(h, key); e != nil && e.refs == 0 && e.v.state.Load() == 0 {
		retireFreeLocked(sh, h, e)
	}
	sh.mu.Unlock()
}

// A KeyedLock's retired entries keep their lock held, so that the key that
// takes one next holds it without an atomic store, and the last Unlock of a
// key without waiters retires its entry without an atomic swap: two of the
// six atomic operations of an uncontended Lock and Unlock. Nobody else can
// reach a retired entry's lock: calls find entries only in the table, under
// the shard's mutex, and every call that worked on the entry without it has
// been counted out.

// addHeldLocked makes key's entry, held. sh.mu must be held.
func addHeldLocked[K comparable](sh *keyedShard[K, Lock], h uint64, key K) *keyedEntry[Lock] {
	e, fresh := sh.addLocked(h, key)
	if fresh {
		e.v.state.Store(lockHeld)
	}
	return e
}

// retireFreeLocked retires e, whose lock is free and idle, taking its lock
// for its next key. sh.mu must be held.
func retireFreeLocked[K comparable](sh *keyedShard[K, Lock], h uint64, e *keyedEntry[Lock]) {
	e.v.state.Store(lockHeld)
	sh.retireLocked(h, e)
}

// Locked reports whether key's lock is held.
func (m *KeyedLock[K]) Locked(key K) bool {
	return peek(m.table(), key, false, (*Lock).Locked)
}

// Waiting returns how many Lock calls and tickets are in key's line now and
// not yet granted, as Lock.Waiting does.
func (m *KeyedLock[K]) Waiting(key K) int {
	return peek(m.table(), key, 0, (*Lock).Waiting)
}

// Len returns how many keys are held or waited for now: the keys that take
// memory.
func (m *KeyedLock[K]) Len() int { return m.table().length() }
