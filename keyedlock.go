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
	t := newKeyedTable[K, Lock](0)
	// The mark's lock is held for good, so that Locked and Waiting read
	// a key marked held as held with nobody waiting; nobody locks or
	// unlocks it.
	t.held.v.state.Store(lockHeld)
	m.tab.CompareAndSwap(nil, t)
	return m.tab.Load()
}

// A key taken by one caller with nobody else in line or on the way in is
// marked held (its slot points to the table's mark) rather than given an
// entry of its own: an uncontended Lock and Unlock then touch only the
// shard and its table, not an entry that goroutines on other keys of the
// shard used before them. The key gets an entry, held, once a second
// caller must wait for it (heldEntryLocked).

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
	t := m.table()
	sh, h := t.shard(key)
	sh.mu.Lock()
	i := sh.indexLocked(h, key)
	if i < 0 {
		// Nobody holds or wants the key: take it.
		sh.insertLocked(h, key, &t.held)
		sh.mu.Unlock()
		return nil
	}
	e := entryLocked(t, sh, i)
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
	t := m.table()
	sh, h := t.shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		sh.insertLocked(h, key, &t.held)
		sh.mu.Unlock()
		return true
	}
	// The mark's lock is held: TryLock fails on a key marked held.
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
	t := m.table()
	sh, h := t.shard(key)
	sh.mu.Lock()
	i := sh.indexLocked(h, key)
	// Every Unlock of a key goes through its shard's mutex, so a key seen
	// locked here stays locked until the Unlock below.
	if i < 0 || !sh.slots[i].e.v.Locked() {
		sh.mu.Unlock()
		panic(errKeyedUnlock)
	}
	e := sh.slots[i].e
	if e == &t.held {
		// Held by the caller alone: nothing to hand over.
		sh.deleteLocked(uint64(i))
		sh.mu.Unlock()
		return
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
	tab := m.table()
	sh, h := tab.shard(key)
	sh.mu.Lock()
	i := sh.indexLocked(h, key)
	if i < 0 {
		// A ticket's key has an entry of its own even when granted at
		// once: the ticket's record needs its lock's mutex.
		e := heldEntryLocked(sh)
		sh.insertLocked(h, key, e)
		b.rec.mu, b.rec.leave = &e.v.mu, &e.v
		decideNow(&b.rec.w, false)
		sh.mu.Unlock()
		return t
	}
	e := entryLocked(tab, sh, i)
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

// settle retires key's entry if a withdrawn ticket left it idle. (The
// mark's lock is never free, so a key marked held stays.)
func (m *KeyedLock[K]) settle(key K) {
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	if e := sh.findLocked(h, key); e != nil && e.refs == 0 && e.v.state.Load() == 0 {
		retireFreeLocked(sh, h, e)
	}
	sh.mu.Unlock()
}

// A KeyedLock's retired entries keep their lock held, as a key needs one
// only when a second caller finds it held: the entry is then ready as it
// comes off the free list, and the last Unlock of a key whose line has
// emptied retires its entry without an atomic swap. Nobody else can reach a
// retired entry's lock: calls find entries only in the table, under the
// shard's mutex, and every call that worked on the entry without it has
// been counted out.

// entryLocked returns the entry of the key in slot i of sh, first giving
// the key one, held, if it was marked held: a second caller is about to
// wait for it. sh.mu must be held.
func entryLocked[K comparable](t *keyedTable[K, Lock], sh *keyedShard[K, Lock], i int) *keyedEntry[Lock] {
	e := sh.slots[i].e
	if e == &t.held {
		e = heldEntryLocked(sh)
		sh.slots[i].e = e
	}
	return e
}

// heldEntryLocked returns an entry for a key, held, not yet in the table.
// sh.mu must be held.
func heldEntryLocked[K comparable](sh *keyedShard[K, Lock]) *keyedEntry[Lock] {
	e, fresh := sh.newEntryLocked()
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
