package ctxsync

import (
	"context"
)

// A KeyedSemaphore is a set of BoundedSemaphores of n permits, one for each
// key, made when a key is first acquired and dropped once all its permits
// are back and nobody waits: "at most 2 requests per host". Make one with
// NewKeyedSemaphore; every method of the zero value panics. A
// KeyedSemaphore must not be copied after first use.
//
// Each key behaves exactly as its own BoundedSemaphore of n permits, with
// the same rules: a request for more than n returns ErrExceedsBound at
// once; AcquireN returns ctx.Err() at once when ctx is already done, and
// ctx.Err() when ctx ends while it waits, taking nothing; releasing more
// than the key holds panics. Keys are independent: a waiter on one key
// never holds back another.
//
// A key takes memory only while it has permits held or requests waiting
// (tickets included); a request for 0 permits on a key nobody holds
// succeeds and leaves nothing behind.
//
// Fairness: blocked requests on one key are served strictly in the order
// they started waiting, a large request at the head of a key's line holds
// back smaller ones behind it, and no newcomer overtakes a waiter.
//
// In the terminology of the Go memory model, a Release(key) synchronizes
// before any Acquire(key) that it lets succeed.
type KeyedSemaphore[K comparable] struct {
	_   noCopy
	tab *keyedTable[K, BoundedSemaphore]
}

// NewKeyedSemaphore returns a KeyedSemaphore that gives each key n
// permits. It panics if n < 0.
func NewKeyedSemaphore[K comparable](n int) *KeyedSemaphore[K] {
	if n < 0 {
		panic("ctxsync: negative semaphore size")
	}
	return &KeyedSemaphore[K]{tab: newKeyedTable[K, BoundedSemaphore](n)}
}

const errZeroKeyedSemaphore = "ctxsync: zero KeyedSemaphore; make one with NewKeyedSemaphore"

func (s *KeyedSemaphore[K]) table() *keyedTable[K, BoundedSemaphore] {
	if s.tab == nil {
		panic(errZeroKeyedSemaphore)
	}
	return s.tab
}

// idleSema reports whether e's semaphore is as NewKeyedSemaphore would
// make it: every permit free and nobody in line.
func idleSema(e *keyedEntry[BoundedSemaphore], bound int) bool {
	return e.v.s.state.Load() == uint64(bound)<<semaShift
}

// addSemaLocked makes key's entry with n of its permits taken. sh.mu must
// be held.
func addSemaLocked[K comparable](t *keyedTable[K, BoundedSemaphore], sh *keyedShard[K, BoundedSemaphore], h uint64, key K, n int) *keyedEntry[BoundedSemaphore] {
	e, fresh := sh.addLocked(h, key)
	if fresh {
		e.v.s.init(t.bound, t.bound)
	}
	e.v.s.state.Store(uint64(t.bound-n) << semaShift)
	return e
}

// Acquire takes one of key's permits, blocking until one is free or ctx
// ends. It is AcquireN(ctx, key, 1).
func (s *KeyedSemaphore[K]) Acquire(ctx context.Context, key K) error {
	return s.AcquireN(ctx, key, 1)
}

// AcquireN takes n of key's permits at once, blocking until all n can be
// had or ctx ends, as BoundedSemaphore.AcquireN does. A request for more
// than the per-key bound returns ErrExceedsBound at once, before ctx is
// looked at. A request for 0 permits on a key nobody holds succeeds and
// leaves no entry. It panics if n < 0.
func (s *KeyedSemaphore[K]) AcquireN(ctx context.Context, key K, n int) error {
	t := s.table() // a zero KeyedSemaphore is the first misuse to report
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	if n > t.bound {
		return ErrExceedsBound
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sh, h := t.shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		if n > 0 {
			addSemaLocked(t, sh, h, key, n)
		}
		sh.mu.Unlock()
		return nil
	}
	if e.v.s.tryAcquire(n) {
		sh.mu.Unlock()
		return nil
	}
	e.refs++
	sh.mu.Unlock()
	err := e.v.AcquireN(ctx, n)
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 && idleSema(e, t.bound) {
		sh.retireLocked(h, e)
	}
	sh.mu.Unlock()
	return err
}

// TryAcquire takes one of key's permits if one is free and nobody waits
// for the key, and reports whether it did. It never blocks.
func (s *KeyedSemaphore[K]) TryAcquire(key K) bool { return s.TryAcquireN(key, 1) }

// TryAcquireN takes n of key's permits if n are free and nobody waits for
// the key, and reports whether it did. It never blocks, and it is false for
// any n above the per-key bound. It panics if n < 0.
func (s *KeyedSemaphore[K]) TryAcquireN(key K, n int) bool {
	t := s.table() // a zero KeyedSemaphore is the first misuse to report
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	if n > t.bound {
		return false
	}
	sh, h := t.shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		if n > 0 {
			addSemaLocked(t, sh, h, key, n)
		}
		sh.mu.Unlock()
		return true
	}
	ok := e.v.s.tryAcquire(n)
	sh.mu.Unlock()
	return ok
}

// Release gives back one of key's permits. It is ReleaseN(key, 1).
func (s *KeyedSemaphore[K]) Release(key K) { s.ReleaseN(key, 1) }

const errKeyedOverRelease = "ctxsync: KeyedSemaphore released more permits than the key holds"

// ReleaseN gives back n of key's permits, handing them straight to the
// key's waiters in the order they came; once all are back and nobody
// waits, the key's entry is dropped. ReleaseN(key, 0) does nothing. It
// panics, changing nothing, if n < 0 or if n is more than the key holds.
func (s *KeyedSemaphore[K]) ReleaseN(key K, n int) {
	t := s.table() // a zero KeyedSemaphore is the first misuse to report
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	sh, h := t.shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	held := 0
	if e != nil {
		// Every release of a key goes through its shard's mutex, so the
		// held count cannot drop before the ReleaseN below.
		held = t.bound - e.v.Available()
	}
	if n > held {
		sh.mu.Unlock()
		panic(errKeyedOverRelease)
	}
	if n > 0 {
		e.v.ReleaseN(n)
		if e.refs == 0 && idleSema(e, t.bound) {
			sh.retireLocked(h, e)
		}
	}
	sh.mu.Unlock()
}

// AcquireTicket returns a ticket for n of key's permits: a place in the
// same line as the key's blocked AcquireN calls, which the caller waits for
// in a select (see Ticket). If n permits are free and nobody waits, the
// ticket is granted before it is returned; a request for more than the
// per-key bound is decided at once with ErrExceedsBound. Once Ready is
// closed with a nil Err the caller holds the n permits and must release
// them. It panics if n < 0.
func (s *KeyedSemaphore[K]) AcquireTicket(key K, n int) *Ticket {
	tab := s.table()
	if n < 0 {
		panic("ctxsync: negative permit count")
	}
	b, t := newKeyedTicket[K](s, key, ErrExceedsBound, n)
	w := &b.rec.w
	sh, h := tab.shard(key)
	if n > tab.bound {
		// Stands in no line: the shard's mutex serves its Stop, which
		// finds it decided.
		b.rec.mu = &sh.mu
		decideNow(w, true)
		return t
	}
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	if e == nil {
		if n == 0 {
			b.rec.mu = &sh.mu
		} else {
			e = addSemaLocked(tab, sh, h, key, n)
			b.rec.mu, b.rec.leave = &e.v.s.mu, &e.v.s
		}
		decideNow(w, false)
		sh.mu.Unlock()
		return t
	}
	b.rec.mu, b.rec.leave = &e.v.s.mu, &e.v.s
	// A key's bound never changes and n is within it: never refused.
	if e.v.s.admitTicket(w, n, true) == admitGranted {
		decideNow(w, false)
	}
	sh.mu.Unlock()
	return t
}

// settle retires key's entry if a withdrawn ticket left it idle.
func (s *KeyedSemaphore[K]) settle(key K) {
	t := s.table()
	sh, h := t.shard(key)
	sh.mu.Lock()
	if e := sh.findLocked(h, key); e != nil && e.refs == 0 && idleSema(e, t.bound) {
		sh.retireLocked(h, e)
	}
	sh.mu.Unlock()
}

// Available returns how many of key's permits are free: n for a key
// nobody holds.
func (s *KeyedSemaphore[K]) Available(key K) int {
	t := s.table()
	return peek(t, key, t.bound, (*BoundedSemaphore).Available)
}

// Waiting returns how many AcquireN calls and tickets are in key's line now
// and not yet granted, as BoundedSemaphore.Waiting does.
func (s *KeyedSemaphore[K]) Waiting(key K) int {
	return peek(s.table(), key, 0, (*BoundedSemaphore).Waiting)
}

// Len returns how many keys have permits held or requests waiting now: the
// keys that take memory.
func (s *KeyedSemaphore[K]) Len() int { return s.table().length() }
