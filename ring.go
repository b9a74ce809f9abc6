package ctxsync

import (
	"math/bits"
	"sync/atomic"
)

// The lock-free path of a bounded FIFO Queue.
//
// The store is a ring of slots after D. Vyukov's bounded MPMC queue, laid
// out as crossbeam's ArrayQueue so that any capacity works: a position is
// lap*oneLap + index, with oneLap the smallest power of two above the
// capacity. Each slot carries a stamp saying whose turn it is. A Put claims
// the position in tail with a CAS, writes the item and stamps the slot
// full; a Get claims the position in head with a CAS, takes the item and
// stamps the slot free for the Put one lap later. While nobody is parked
// and the queue is not shut down, Put, Get, TryPut, TryGet and the batch
// gets do only that: no mutex.
//
// Everything else is decided under q.mu, as for the other queues: parking,
// hand-offs to parked callers, shutdown. Before it parks anyone, a caller
// under q.mu raises ringSlow in both position words. A fast-path claim
// compares the whole word, so from that instant every fast-path claim
// fails and its caller takes q.mu; head and tail then move only under
// q.mu, and what the holder sees is final, but for claims made before the
// flag whose item is not yet written (a Put between its CAS and its stamp)
// or whose slot is not yet freed (a Get between its CAS and its stamp).
// Nobody waits for those: after its stamp, a fast-path claimer loads its
// position word again and, if ringSlow is up, takes q.mu and serves the
// parked callers itself. Both sides use sequentially consistent atomics
// (the raiser: flag, then stamp; the claimer: stamp, then flag), so at
// least one of them sees the other: a late item or freed slot is never
// left unserved, and a descheduled claimer holds up nobody but the callers
// its own slot is for. The flag comes down, under q.mu, once nobody is
// parked.
//
// Unfinished tasks are counted from the ring's tail position (every item
// that ever entered the ring) plus the items handed straight from a Put to
// a parked Get, minus TaskDone calls: Put touches no counter of its own.

// ringSlow is the flag in head and tail that sends every caller to q.mu.
const ringSlow = 1 << 63

// ringMaxCap is the largest capacity that gets the ring: the ring's slots
// are made up front, as a channel's buffer is, and a queue bounded by a
// huge maxsize (as an "unbounded enough" guard) should not cost that
// memory. Larger bounds use the mutex path, whose buffer grows as needed.
const ringMaxCap = 1 << 16

// cacheLinePad keeps head and tail on cache lines of their own, so that
// Puts and Gets do not invalidate each other's word.
type cacheLinePad struct{ _ [64]byte }

type slotRing[T any] struct {
	_    cacheLinePad
	head atomic.Uint64 // position of the next Get, with ringSlow
	_    cacheLinePad
	tail atomic.Uint64 // position of the next Put, with ringSlow
	_    cacheLinePad
	// done counts TaskDone calls, and the items ShutdownNow took out. It
	// is the consumers' counter, so it has a line of its own too.
	done atomic.Int64
	_    cacheLinePad

	slots    []ringSlot[T]
	cap      uint64
	oneLap   uint64
	lapShift uint

	// claimed, when a test sets it, runs between a fast-path claim and
	// its stamp: put tells a Put's claim from a Get's.
	claimed func(put bool)
}

type ringSlot[T any] struct {
	// stamp is p when the slot is free for the Put at position p, and
	// p+1 when it holds that Put's item for the Get at p.
	stamp atomic.Uint64
	item  T
}

func newSlotRing[T any](capacity int) *slotRing[T] {
	c := uint64(capacity)
	shift := uint(bits.Len64(c)) // 1<<shift is the smallest power of two above c
	r := &slotRing[T]{slots: make([]ringSlot[T], c), cap: c, oneLap: 1 << shift, lapShift: shift}
	for i := range r.slots {
		r.slots[i].stamp.Store(uint64(i))
	}
	return r
}

func (r *slotRing[T]) slot(p uint64) *ringSlot[T] { return &r.slots[p&(r.oneLap-1)] }

// next returns the position after p; a flag in p is kept.
func (r *slotRing[T]) next(p uint64) uint64 {
	if p&(r.oneLap-1)+1 < r.cap {
		return p + 1
	}
	return p&^(r.oneLap-1) + r.oneLap
}

// count returns how many positions come before p: the items that have
// passed through the word p was read from.
func (r *slotRing[T]) count(p uint64) uint64 {
	p &^= ringSlow
	return p>>r.lapShift*r.cap + p&(r.oneLap-1)
}

// ringResult is how a fast-path attempt ended.
type ringResult uint8

const (
	ringDone     ringResult = iota // done
	ringDoneKick                   // done, but ringSlow came up meanwhile: serve under q.mu
	ringBusy                       // full (push) or empty (pop) for now; may also be a claimer still at work
	ringFlagged                    // ringSlow is up: decide under q.mu
	ringShort                      // a batch: fewer items than asked for; take them under q.mu
)

// push adds item at the tail without a lock, unless the ring is full or
// flagged.
func (r *slotRing[T]) push(item T) ringResult {
	for {
		t := r.tail.Load()
		if t&ringSlow != 0 {
			return ringFlagged
		}
		s := r.slot(t)
		switch st := s.stamp.Load(); {
		case st == t:
			// Free for us: whoever wins the CAS owns the slot until
			// its stamp.
			preempt(ptPushClaim)
			if !r.tail.CompareAndSwap(t, r.next(t)) {
				continue
			}
			preempt(ptPushClaimed)
			if r.claimed != nil {
				r.claimed(true)
			}
			s.item = item
			s.stamp.Store(t + 1) // publishes the item to the Get at t
			preempt(ptPushStamped)
			// After the stamp: a raiser that missed it sees ringSlow
			// here (see the top of the file).
			if r.tail.Load()&ringSlow != 0 {
				return ringDoneKick
			}
			return ringDone
		case st < t:
			// The item of the lap before is still there, or a Get is
			// still freeing its slot: full for now, if tail did not
			// move meanwhile.
			if r.tail.Load() == t {
				return ringBusy
			}
		}
		// Another Put took t: look again.
	}
}

// pop takes the item at the head without a lock, unless the ring is empty
// or flagged.
func (r *slotRing[T]) pop() (T, ringResult) {
	var zero T
	for {
		h := r.head.Load()
		if h&ringSlow != 0 {
			return zero, ringFlagged
		}
		s := r.slot(h)
		switch st := s.stamp.Load(); {
		case st == h+1:
			preempt(ptPopClaim)
			if !r.head.CompareAndSwap(h, r.next(h)) {
				continue
			}
			preempt(ptPopClaimed)
			if r.claimed != nil {
				r.claimed(false)
			}
			item := s.item
			s.item = zero               // let the item be collected
			s.stamp.Store(h + r.oneLap) // frees the slot for the Put one lap on
			preempt(ptPopStamped)
			if r.head.Load()&ringSlow != 0 {
				return item, ringDoneKick
			}
			return item, ringDone
		case st <= h:
			// Nothing put at h yet, or its Put is still writing it.
			if r.head.Load() == h {
				return zero, ringBusy
			}
		}
	}
}

// waitRoom spins, without yielding its thread, while the ring is full and
// Gets keep taking from it quickly, until the slot ringAhead places past
// the tail is free (or the tail moves: another Put claimed it, or the flag
// came up). It decides nothing: the caller tries its claim again.
//
// Why spin: a Put that yields when the ring is full hands its core to a
// second consumer, and two consumers fighting over the head move fewer
// items than one that runs alone beside the producer (bench/pc, one
// producer and four consumers). Why ringAhead places on: spun on, the
// very slot the next Get frees bounces between the two cores on every
// item; ringAhead slots on, the Put reads a line nobody is writing until
// the Gets get there. Why it stops early: once per ringSpinCheck looks it
// reads the head, and gives up if fewer than one in eight of the slots it
// waits for were freed meanwhile (the Gets are not running, or are slow:
// yielding or parking is cheaper than waiting for them).
func (r *slotRing[T]) waitRoom() {
	t := r.tail.Load()
	if t&ringSlow != 0 {
		return
	}
	ahead := min(ringAhead, r.cap/4)
	p := r.advance(t, ahead)
	s := r.slot(p)
	minFreed := max(1, ahead/8)
	progress := r.count(r.head.Load())
	for i := 1; i <= ringSpinMax; i++ {
		if s.stamp.Load() == p {
			return
		}
		// The position words only now and then: others write them.
		if i%ringSpinCheck == 0 {
			if r.tail.Load() != t {
				return
			}
			h := r.count(r.head.Load())
			if h-progress < minFreed {
				return
			}
			progress = h
		}
	}
}

// waitRoom's spin. A look at a line nobody is writing is cheap, so
// ringSpinCheck looks leave Gets running on another core time to free
// several slots, and cost less than a yield when none is running;
// ringSpinMax bounds a spin that keeps seeing progress at a few
// microseconds.
const (
	ringAhead     = 64
	ringSpinCheck = 1024
	ringSpinMax   = 8 * ringSpinCheck
)

// advance returns the position k places after p, 0 <= k < r.cap, with p's
// flag kept.
func (r *slotRing[T]) advance(p, k uint64) uint64 {
	if i := p&(r.oneLap-1) + k; i >= r.cap {
		return p&^(r.oneLap-1) + r.oneLap + (i - r.cap)
	}
	return p + k
}

// popMany takes up to len(dst) items from the head without a lock, with
// one claim for the whole run of written items there.
func (r *slotRing[T]) popMany(dst []T) (int, ringResult) {
	var zero T
	for rescans := 0; ; {
		h := r.head.Load()
		if h&ringSlow != 0 {
			return 0, ringFlagged
		}
		n, end := 0, h
		for n < len(dst) && r.slot(end).stamp.Load() == end+1 {
			n, end = n+1, r.next(end)
		}
		if n == 0 {
			if r.head.Load() == h {
				return 0, ringBusy
			}
			continue
		}
		// A short batch must be all there is at the instant it is taken,
		// and no claim without the lock can know that: tail may move
		// between a load of it and the CAS on head below (a Put
		// claiming the place after the run), and a Put or TryPut that
		// looked meanwhile counted the run as still there, so that the
		// batch would have left a queue that was never as it took it
		// (found by FuzzRingSchedule with a pause before the CAS). Only
		// the holder of q.mu with the flag up sees head and tail
		// together: a short batch is taken there.
		if n < len(dst) {
			if r.tail.Load()&^ringSlow != end {
				// A Put has claimed the place after the run: its
				// item may complete a whole batch. Usually on
				// another core, a moment from its stamp: look
				// again, a few times only, as it may have been
				// descheduled.
				if rescans++; rescans < popManyRescans {
					continue
				}
			}
			return 0, ringShort
		}
		// A whole batch: head still at h at the CAS means nobody took
		// any of the n, and they are the first len(dst) items, whatever
		// came after them. They stay written until their Get, which is
		// now us.
		preempt(ptPopManyClaim)
		if !r.head.CompareAndSwap(h, end) {
			continue
		}
		if r.claimed != nil {
			r.claimed(false)
		}
		for i, p := 0, h; i < n; i, p = i+1, r.next(p) {
			preempt(ptPopManyStamp)
			s := r.slot(p)
			dst[i] = s.item
			s.item = zero
			s.stamp.Store(p + r.oneLap)
		}
		preempt(ptPopManyStamped)
		if r.head.Load()&ringSlow != 0 {
			return n, ringDoneKick
		}
		return n, ringDone
	}
}

// popManyRescans is how many times a batch looks again when a Put has
// claimed the position after its run of written items.
const popManyRescans = 8

// raise sends every later fast-path call to q.mu. q.mu must be held; the
// holder must then serve the parked callers (serveRingLocked) before it
// lets q.mu go, which is what makes a claim made before the flag safe.
func (r *slotRing[T]) raise() {
	r.tail.Or(ringSlow)
	preempt(ptRingRaise)
	r.head.Or(ringSlow)
}

// lower lets the fast paths go again. q.mu must be held.
func (r *slotRing[T]) lower() {
	r.tail.And(^uint64(ringSlow))
	preempt(ptRingLower)
	r.head.And(^uint64(ringSlow))
}

// pushLocked adds item at the tail if its slot is free. q.mu must be held
// and the ring raised: only holders of q.mu move head and tail then.
func (r *slotRing[T]) pushLocked(item T) bool {
	t := r.tail.Load()
	s := r.slot(t)
	if s.stamp.Load() != t&^ringSlow {
		return false // full, or a Get is still freeing the slot
	}
	r.tail.Store(r.next(t))
	preempt(ptRingLocked)
	s.item = item
	s.stamp.Store(t&^ringSlow + 1)
	return true
}

// popLocked takes the item at the head if it is written. q.mu must be held
// and the ring raised.
func (r *slotRing[T]) popLocked() (T, bool) {
	var zero T
	h := r.head.Load()
	p := h &^ ringSlow
	s := r.slot(p)
	if s.stamp.Load() != p+1 {
		return zero, false // empty, or a Put is still writing its item
	}
	r.head.Store(r.next(h))
	preempt(ptRingLocked)
	item := s.item
	s.item = zero
	s.stamp.Store(p + r.oneLap)
	return item, true
}

// emptyLocked reports whether no item is in the ring, written or being
// written. q.mu must be held and the ring raised (or the queue shut down,
// which raises it for good).
func (r *slotRing[T]) emptyLocked() bool {
	return r.head.Load()&^ringSlow == r.tail.Load()&^ringSlow
}

// len returns the number of items claimed into the ring and not yet
// claimed out, from one consistent pair of positions.
func (r *slotRing[T]) len() int {
	for {
		t := r.tail.Load()
		h := r.head.Load()
		// tail unchanged around the load of head: both held at once,
		// and head never passes tail.
		if r.tail.Load() == t {
			return int(r.count(t) - r.count(h))
		}
	}
}
