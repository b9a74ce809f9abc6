package ctxsync

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// keyedShards is how many shards a keyed table splits its keys over, each
// with a mutex and a table of keys of its own, so that calls on different
// keys from different goroutines rarely meet on one mutex. A power of two,
// so that bits of the hash pick the shard.
const keyedShards = 64

// keyedFreeMax is how many retired entries each shard keeps for reuse, so
// that a key taken and given back over and over allocates nothing, while a
// burst of keys leaves at most keyedShards*keyedFreeMax entries behind.
const keyedFreeMax = 8

// keyedMinSlots is the fewest slots a shard's table has once it has held a
// key. A table that grows past it shrinks back as keys go, and is dropped
// when it empties, so that the memory of a burst of keys goes back to the
// garbage collector; one that never grew keeps its slots, so that keys taken
// and given back one at a time allocate nothing.
const keyedMinSlots = 8

// keyedEntry is one key's primitive (a Lock or a BoundedSemaphore) and
// the count of blocking calls on their way into it.
type keyedEntry[E any] struct {
	v E
	// refs counts the blocking calls that work on v without the shard's
	// mutex: taken under that mutex before the call lets it go, and given
	// back under it after. While refs > 0 the entry stays, so nobody can
	// retire it under a request on its way in (the race that breaks
	// hand-written maps of mutexes).
	refs int
	next *keyedEntry[E] // the shard's free list
}

// keyedSlot is one slot of a shard's table: a key, its hash and its entry,
// or nothing (e == nil).
type keyedSlot[K comparable, E any] struct {
	hash uint64
	key  K
	e    *keyedEntry[E]
}

// keyedShard is one mutex's share of a keyed table. Its keys live in an
// open-addressing table of its own rather than a Go map: the hash that
// picked the shard serves the table too (a map would hash the key again for
// each lookup, insert and delete), and the table shrinks, which a map never
// does. Entries are created, found, counted and retired only under mu.
type keyedShard[K comparable, E any] struct {
	mu    sync.Mutex
	slots []keyedSlot[K, E] // a power of two in length, or nil
	n     int               // keys in slots
	free  *keyedEntry[E]
	nfree int
	// Shards sit side by side in an array: pad each to 64 bytes (56
	// above on 64-bit), the size of a cache line, so that goroutines
	// working on keys of different shards seldom share a line and slow
	// each other down.
	_ [8]byte
}

// keyedTable is what a KeyedLock or KeyedSemaphore is made of: the seed
// that spreads keys over the shards, and the shards.
type keyedTable[K comparable, E any] struct {
	seed   maphash.Seed
	bound  int // a KeyedSemaphore's permits per key
	shards [keyedShards]keyedShard[K, E]
}

func newKeyedTable[K comparable, E any](bound int) *keyedTable[K, E] {
	return &keyedTable[K, E]{seed: maphash.MakeSeed(), bound: bound}
}

// shard returns key's shard and hash. The top bits of the hash pick the
// shard and the bottom bits the slot in its table, so the two do not
// correlate.
func (t *keyedTable[K, E]) shard(key K) (*keyedShard[K, E], uint64) {
	h := maphash.Comparable(t.seed, key)
	return &t.shards[h>>(64-keyedShardBits)], h
}

// keyedShardBits is log2(keyedShards).
const keyedShardBits = 6

// findLocked returns key's entry, or nil. sh.mu must be held.
func (sh *keyedShard[K, E]) findLocked(h uint64, key K) *keyedEntry[E] {
	if sh.n == 0 {
		return nil
	}
	// The table is never full, so the probe ends at an empty slot.
	mask := uint64(len(sh.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.e == nil {
			return nil
		}
		if s.hash == h && s.key == key {
			return s.e
		}
	}
}

// addLocked makes an idle entry for key, which has none, and returns it;
// fresh tells whether it was allocated rather than reused, as then it still
// needs its primitive initialized. sh.mu must be held.
func (sh *keyedShard[K, E]) addLocked(h uint64, key K) (e *keyedEntry[E], fresh bool) {
	if e = sh.free; e != nil {
		sh.free, e.next = e.next, nil
		sh.nfree--
	} else {
		e, fresh = new(keyedEntry[E]), true
	}
	// At most three quarters full, so probes stay short.
	if (sh.n+1)*4 > len(sh.slots)*3 {
		sh.resizeLocked(max(keyedMinSlots, 2*len(sh.slots)))
	}
	sh.put(keyedSlot[K, E]{h, key, e})
	sh.n++
	return e, fresh
}

// put stores s in the first empty slot from its hash on.
func (sh *keyedShard[K, E]) put(s keyedSlot[K, E]) {
	mask := uint64(len(sh.slots) - 1)
	i := s.hash & mask
	for sh.slots[i].e != nil {
		i = (i + 1) & mask
	}
	sh.slots[i] = s
}

// resizeLocked moves the keys into a table of size slots (a power of two,
// or 0 when there are none). sh.mu must be held.
func (sh *keyedShard[K, E]) resizeLocked(size int) {
	old := sh.slots
	sh.slots = nil
	if size > 0 {
		sh.slots = make([]keyedSlot[K, E], size)
	}
	for _, s := range old {
		if s.e != nil {
			sh.put(s)
		}
	}
}

// retireLocked removes the entry e of the key whose hash is h. Nobody
// holds it, waits for it or is on the way into it, so its primitive is
// idle, exactly as when it was made, and e may serve another key as it is.
// sh.mu must be held.
func (sh *keyedShard[K, E]) retireLocked(h uint64, e *keyedEntry[E]) {
	mask := uint64(len(sh.slots) - 1)
	i := h & mask
	for sh.slots[i].e != e {
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move up each later key of the run whose
	// home slot is not between the hole and itself, so that every key
	// stays reachable from its home without tombstones.
	for j := i; ; {
		j = (j + 1) & mask
		s := &sh.slots[j]
		if s.e == nil {
			break
		}
		home := s.hash & mask
		// Distances from the hole's side: j's home lies in (i, j] when
		// it is no farther from i than j is.
		if (home-i-1)&mask < (j-i)&mask {
			continue
		}
		sh.slots[i] = *s
		i = j
	}
	sh.slots[i] = keyedSlot[K, E]{} // drop the key, for the collector
	sh.n--
	switch {
	case sh.n == 0 && len(sh.slots) > keyedMinSlots:
		sh.resizeLocked(0)
	case len(sh.slots) > keyedMinSlots && sh.n*8 <= len(sh.slots):
		// Down to an eighth: halve twice, to a quarter, hysteresis
		// enough that a key coming and going cannot resize each time.
		sh.resizeLocked(len(sh.slots) / 4)
	}
	if sh.nfree < keyedFreeMax {
		e.next, sh.free = sh.free, e
		sh.nfree++
	}
}

// length is how many keys have an entry in t now.
func (t *keyedTable[K, E]) length() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// keyedSettler is what a keyed ticket needs of its owner when Stop
// withdraws it: to retire the key's entry if that left it idle.
type keyedSettler[K comparable] interface {
	settle(key K)
}

// keyedTicket is a keyed ticket, its record and what it needs to retire
// its key's entry, in one allocation.
type keyedTicket[K comparable] struct {
	t     Ticket
	rec   ticketRecord[struct{}]
	owner keyedSettler[K]
	key   K
}

func newKeyedTicket[K comparable](owner keyedSettler[K], key K, refusal error, n int) (*keyedTicket[K], *Ticket) {
	b := &keyedTicket[K]{owner: owner, key: key}
	// The channel is made here, by the calling goroutine (R9), before
	// any shard's mutex is taken; the mutex and leave policy of the
	// key's line are set once it is found.
	b.rec.init(nil, nil, refusal, n)
	b.t.ready = b.rec.w.Ready()
	b.t.req = b
	return b, &b.t
}

// stop withdraws the request as any ticket's Stop does; when it did, the
// key's entry may have been kept alive only by this request.
func (b *keyedTicket[K]) stop() bool {
	if !b.rec.stop() {
		return false
	}
	b.owner.settle(b.key)
	return true
}

func (b *keyedTicket[K]) err() error { return b.rec.err() }

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
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	e := sh.findLocked(h, key)
	locked := e != nil && e.v.Locked()
	sh.mu.Unlock()
	return locked
}

// Waiting returns how many Lock calls and tickets are in key's line now and
// not yet granted, as Lock.Waiting does.
func (m *KeyedLock[K]) Waiting(key K) int {
	sh, h := m.table().shard(key)
	sh.mu.Lock()
	n := 0
	if e := sh.findLocked(h, key); e != nil {
		n = e.v.Waiting()
	}
	sh.mu.Unlock()
	return n
}

// Len returns how many keys are held or waited for now: the keys that take
// memory.
func (m *KeyedLock[K]) Len() int { return m.table().length() }

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
	if e.v.s.enqueueTicket(w, n) {
		decideNow(w, false)
	}
	sh.mu.Unlock()
	return t
}

// enqueueTicket takes n permits for a ticket's waiter w if they are free
// and nobody waits (returning true), or puts w at the end of the line, as
// acquireTicket does for a request within the bound.
func (s *sema) enqueueTicket(w *waitq.Waiter[struct{}], n int) bool {
	if s.tryAcquire(n) {
		return true
	}
	s.mu.Lock()
	// Raise semaWaiters first, as acquireTicket does, so the count only
	// changes under mu from here on; a waiter that left since tryAcquire
	// may have handed the state back with permits free.
	st := s.state.Or(semaWaiters)
	if s.waiters.Len() == 0 && st>>semaShift >= uint64(n) {
		s.state.Store(st - uint64(n)<<semaShift)
		s.mu.Unlock()
		return true
	}
	s.waiters.PushBack(w)
	s.mu.Unlock()
	return false
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
	sh, h := t.shard(key)
	sh.mu.Lock()
	n := t.bound
	if e := sh.findLocked(h, key); e != nil {
		n = e.v.Available()
	}
	sh.mu.Unlock()
	return n
}

// Waiting returns how many AcquireN calls and tickets are in key's line now
// and not yet granted, as BoundedSemaphore.Waiting does.
func (s *KeyedSemaphore[K]) Waiting(key K) int {
	sh, h := s.table().shard(key)
	sh.mu.Lock()
	n := 0
	if e := sh.findLocked(h, key); e != nil {
		n = e.v.Waiting()
	}
	sh.mu.Unlock()
	return n
}

// Len returns how many keys have permits held or requests waiting now: the
// keys that take memory.
func (s *KeyedSemaphore[K]) Len() int { return s.table().length() }
