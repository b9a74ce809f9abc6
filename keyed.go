package ctxsync

import (
	"hash/maphash"
	"sync"
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
	// Shards sit side by side in an array: pad each to two cache lines
	// (the fields above take 56 bytes on 64-bit), so that no two shards'
	// fields share a line, and goroutines working on keys of different
	// shards do not slow each other down, wherever the table starts: a
	// table is not aligned to a line (an allocation of this size starts
	// after the allocator's 8-byte header).
	_ [72]byte
}

// keyedTable is what a KeyedLock or KeyedSemaphore is made of: the seed
// that spreads keys over the shards, and the shards.
type keyedTable[K comparable, E any] struct {
	seed  maphash.Seed
	bound int // a KeyedSemaphore's permits per key
	// held is a KeyedLock's mark for a key held by one caller, with
	// nobody else in line or on the way in: the slot of such a key
	// points to it instead of an entry of its own (see KeyedLock.Lock).
	held   keyedEntry[E]
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
	if i := sh.indexLocked(h, key); i >= 0 {
		return sh.slots[i].e
	}
	return nil
}

// indexLocked returns the index of key's slot, or -1 if it has none. The
// index holds until the table next changes. sh.mu must be held.
func (sh *keyedShard[K, E]) indexLocked(h uint64, key K) int {
	if sh.n == 0 {
		return -1
	}
	// The table is never full, so the probe ends at an empty slot.
	mask := uint64(len(sh.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.e == nil {
			return -1
		}
		if s.hash == h && s.key == key {
			return int(i)
		}
	}
}

// addLocked makes an idle entry for key, which has none, and returns it;
// fresh tells whether it was allocated rather than reused, as then it still
// needs its primitive initialized. sh.mu must be held.
func (sh *keyedShard[K, E]) addLocked(h uint64, key K) (e *keyedEntry[E], fresh bool) {
	e, fresh = sh.newEntryLocked()
	sh.insertLocked(h, key, e)
	return e, fresh
}

// newEntryLocked returns a retired entry of the shard's, or a new one
// (fresh). sh.mu must be held.
func (sh *keyedShard[K, E]) newEntryLocked() (e *keyedEntry[E], fresh bool) {
	if e = sh.free; e != nil {
		sh.free, e.next = e.next, nil
		sh.nfree--
		return e, false
	}
	return new(keyedEntry[E]), true
}

// insertLocked gives key, which has no slot, one holding e. sh.mu must be
// held.
func (sh *keyedShard[K, E]) insertLocked(h uint64, key K, e *keyedEntry[E]) {
	// At most three quarters full, so probes stay short.
	if (sh.n+1)*4 > len(sh.slots)*3 {
		sh.resizeLocked(max(keyedMinSlots, 2*len(sh.slots)))
	}
	sh.put(keyedSlot[K, E]{h, key, e})
	sh.n++
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
	sh.deleteLocked(i)
	if sh.nfree < keyedFreeMax {
		e.next, sh.free = sh.free, e
		sh.nfree++
	}
}

// deleteLocked empties slot i, and shrinks the table if that left it
// mostly empty. sh.mu must be held.
func (sh *keyedShard[K, E]) deleteLocked(i uint64) {
	mask := uint64(len(sh.slots) - 1)
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

// peek returns what f says of key's primitive, looked at under its shard's
// mutex, or none if the key has no entry (nobody holds it or waits for
// it): the snapshots Locked, Waiting and Available.
func peek[K comparable, E, R any](t *keyedTable[K, E], key K, none R, f func(*E) R) R {
	sh, h := t.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.findLocked(h, key); e != nil {
		return f(&e.v)
	}
	return none
}
