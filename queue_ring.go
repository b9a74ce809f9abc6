package ctxsync

import (
	"context"
	"math/bits"
	"runtime"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
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
// Why spin (measured on 2 cores, bench/pc, one producer and four Get
// consumers): a Put that yields when the ring is full hands its core to a
// second consumer, and two consumers fighting over the head move fewer
// items than one that runs alone beside the producer: 12-15 M items/s
// against 22-24 M with the spin. Why ringAhead places on: spun on, the
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

// waitRoom's spin. A look at a line nobody is writing is cheap (on the
// 2-core test machine, 1,024 looks took about 460 ns), so ringSpinCheck
// looks leave Gets running on another core time to free several slots,
// and cost less than a yield when none is running; ringSpinMax bounds a
// spin that keeps seeing progress at about four microseconds.
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

// The Queue's methods on the ring path.

// putRing is Put for a ring queue after Put's first fast-path attempt,
// which ended in res: ringFlagged if ctx was already done and nothing was
// tried (R1: a done context adds nothing; below, under q.mu, a shutdown
// is reported first, R10).
func (q *Queue[T]) putRing(ctx context.Context, item T, res ringResult) error {
	r := q.ring
	// Room is often a moment away: a spinning Put has not started
	// waiting, so it overtakes nobody.
	for i := 0; res == ringBusy && i <= queueSpins; i++ {
		if i == 0 {
			r.waitRoom()
		} else {
			runtime.Gosched()
		}
		res = r.push(item)
	}
	switch res {
	case ringDone:
		return nil
	case ringDoneKick:
		q.kick()
		return nil
	}
	q.mu.Lock()
	if q.shut {
		q.mu.Unlock()
		return ErrQueueShutDown
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return err
	}
	r.raise()
	if q.addRingLocked(item) {
		q.lowerIfIdleLocked()
		q.mu.Unlock()
		return nil
	}
	w := q.records.Get(ctx, 0)
	w.Value = item
	_, err := q.parkUnlock(ctx, &q.putters, w)
	return err
}

// kick serves the parked callers after a fast-path call found ringSlow up
// once it was done: its item or its freed slot may be what they wait for.
func (q *Queue[T]) kick() {
	q.mu.Lock()
	// Calls waiting for a claim to finish (stallLocked) look again. Only
	// a kick wakes them: a claim ends nowhere else, and woken by any
	// other holder of q.mu, two stalled calls would wake each other for
	// ever.
	waitq.GrantAll(&q.stalled, nil)
	q.serveRingLocked()
	q.lowerIfIdleLocked()
	q.mu.Unlock()
}

// addRingLocked adds item now if it can be, as a Put that does not wait:
// handed to the longest-waiting Get when the ring is empty, else into the
// ring behind the items there. It reports false if the item must wait:
// Puts are parked, or there is no room. q.mu must be held and the ring
// raised.
func (q *Queue[T]) addRingLocked(item T) bool {
	q.serveRingLocked()
	if q.putters.First() != nil {
		return false
	}
	if w := q.getters.First(); w != nil && q.ring.emptyLocked() {
		q.handoffs.Add(1) // an unfinished task that never enters the ring
		w.Value = item
		waitq.Grant(w)
		return true
	}
	if q.ring.pushLocked(item) {
		q.serveRingLocked() // a Get may be parked for a Put still writing ahead of us
		return true
	}
	return false
}

// takeRingLocked takes the next item now if one is there and no Get is
// ahead in line. q.mu must be held and the ring raised.
func (q *Queue[T]) takeRingLocked() (T, bool) {
	q.serveRingLocked()
	if q.getters.First() != nil {
		// Still parked after serving: nothing is written at the head.
		var zero T
		return zero, false
	}
	item, ok := q.ring.popLocked()
	if ok {
		q.serveRingLocked() // let a parked Put into the room
	}
	return item, ok
}

// takeManyRingLocked takes min(len(dst), Len()) items, as takeRingLocked
// takes one, if no Get is ahead in line and all of them are written. It
// returns 0 and stalled true if a Put that claimed its place before the
// flag is still writing one of them: the batch must not stop short of an
// item that is there. q.mu must be held and the ring raised.
func (q *Queue[T]) takeManyRingLocked(dst []T) (n int, stalled bool) {
	q.serveRingLocked()
	r := q.ring
	if q.getters.First() != nil {
		return 0, false
	}
	k := min(uint64(len(dst)), r.count(r.tail.Load())-r.count(r.head.Load()))
	for i, p := uint64(0), r.head.Load()&^ringSlow; i < k; i, p = i+1, r.next(p) {
		if r.slot(p).stamp.Load() != p+1 {
			return 0, true
		}
	}
	for ; n < int(k); n++ {
		dst[n], _ = r.popLocked()
	}
	if n > 0 {
		// The items of parked Puts join the queue, not this batch.
		q.serveRingLocked()
	}
	return n, false
}

// stallLocked waits for a claim made before the flag to finish: a Put
// still writing its item, or a Get still freeing its slot, which wakes
// q.stalled once its stamp is down (kick). It is the wait a
// call would have for a lock held by a call in progress, so it has no
// context, and it parks instead of spinning: the claimer may have been
// descheduled. q.mu must be held, and the ring raised by this holder of
// q.mu before it saw the claim unfinished; q.mu is held again on return.
func (q *Queue[T]) stallLocked() {
	w := q.records.Get(context.Background(), 0)
	q.stalled.PushBack(w)
	_ = waitq.ParkUnlock(context.Background(), &q.mu, w, nil)
	q.records.Put(w)
	q.mu.Lock()
}

// serveRingLocked does every hand-off that can be done now: written items
// at the head to parked Gets in order, items of parked Puts straight to
// parked Gets when the ring is empty, and parked Puts into free slots in
// order; and when the queue is shut down and empty, it sends the parked
// Gets away. q.mu must be held and the ring raised.
func (q *Queue[T]) serveRingLocked() {
	r := q.ring
	for progressed := true; progressed; {
		progressed = false
		for w := q.getters.First(); w != nil; w = q.getters.First() {
			item, ok := r.popLocked()
			if !ok {
				break
			}
			w.Value = item
			waitq.Grant(w)
			progressed = true
		}
		// Gets and Puts can both be parked only around a claim still at
		// work: a Put parked for a slot being freed, a Get for an item
		// being written. With the ring empty, the Put's item is next.
		if g := q.getters.First(); g != nil && r.emptyLocked() {
			if p := q.putters.First(); p != nil {
				// A context may end here: the line must still give
				// g and p, which First's stability ensures.
				preempt(ptRingServe)
				q.handoffs.Add(1)
				g.Value = p.Value
				waitq.Grant(g)
				waitq.Grant(p)
				progressed = true
				continue
			}
		}
		for w := q.putters.First(); w != nil; w = q.putters.First() {
			if !r.pushLocked(w.Value) {
				break
			}
			waitq.Grant(w)
			progressed = true
		}
	}
	if q.shut && r.emptyLocked() {
		waitq.RefuseAll(&q.getters)
	}
}

// lowerIfIdleLocked lets the fast paths go again once nobody is parked.
// q.mu must be held.
func (q *Queue[T]) lowerIfIdleLocked() {
	// A stalled call waits for a kick, which only a raised flag brings.
	if !q.shut && q.getters.Len() == 0 && q.putters.Len() == 0 && q.stalled.Len() == 0 {
		q.ring.lower()
	}
}

// leftLocked is the policy for a Put, Get or ticket that leaves its line
// unserved: it held nobody back (a Put waits only while the queue is full,
// a Get only while it is empty), but it may have been the last one parked.
func (q *Queue[T]) leftLocked(*waitq.Waiter[T]) {
	if q.ring != nil {
		q.lowerIfIdleLocked()
	}
}

// Stopped tickets run the queue's leave policy.
var _ ticketLeaver[struct{}] = (*Queue[struct{}])(nil)

// ticketLeftLocked is reached through ticketLeaver (PutTicket and
// GetTicket pass q), which the unused linter does not follow for a generic
// type.
//
//nolint:unused // called through the ticketLeaver interface
func (q *Queue[T]) ticketLeftLocked(w *waitq.Waiter[T]) { q.leftLocked(w) }

// tryPutRing is TryPut for a ring queue.
func (q *Queue[T]) tryPutRing(item T) error {
	r := q.ring
	for i := 0; ; i++ {
		switch r.push(item) {
		case ringDone:
			return nil
		case ringDoneKick:
			q.kick()
			return nil
		case ringBusy:
			// Full at the instant len looks; or else a Get that has
			// taken its item is still freeing the slot we need, and
			// the room is a moment away.
			if r.len() >= int(r.cap) {
				return ErrQueueFull
			}
			if i < queueSpins {
				runtime.Gosched()
				continue
			}
		}
		break
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.shut {
			return ErrQueueShutDown
		}
		r.raise()
		// Parked Puts come first: addRingLocked serves them, and adds
		// the item only if none is left waiting.
		if q.addRingLocked(item) {
			q.lowerIfIdleLocked()
			return nil
		}
		if r.len() >= int(r.cap) {
			q.lowerIfIdleLocked()
			return ErrQueueFull
		}
		// Not full: a Get that has taken its item is still freeing the
		// slot that the next Put needs, ours or a parked one's. Parked
		// Puts are then waiting for that slot, not for room: answering
		// "full" because they wait would be wrong.
		q.stallLocked()
	}
}

// getRing is Get for a ring queue after Get's first fast-path attempt,
// which ended in res (with item, if it is ringDoneKick): ringFlagged if
// ctx was already done and nothing was tried.
func (q *Queue[T]) getRing(ctx context.Context, item T, res ringResult) (T, error) {
	// An item is often only a moment away: look again a few times before
	// paying for a wake-up channel and two goroutine switches. A spinning
	// Get has not started waiting, so Gets that park meanwhile are
	// rightly served first.
	for i := 0; res == ringBusy && i < queueSpins; i++ {
		runtime.Gosched()
		item, res = q.ring.pop()
	}
	switch res {
	case ringDone:
		return item, nil
	case ringDoneKick:
		q.kick()
		return item, nil
	}
	var zero T
	q.mu.Lock()
	if q.shut && q.ring.emptyLocked() {
		q.mu.Unlock()
		return zero, ErrQueueShutDown
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return zero, err
	}
	q.ring.raise()
	if item, ok := q.takeRingLocked(); ok {
		q.lowerIfIdleLocked()
		q.mu.Unlock()
		return item, nil
	}
	if q.shut && q.ring.emptyLocked() {
		q.mu.Unlock()
		return zero, ErrQueueShutDown
	}
	// Parked in line; a Put hands us its item, or the claimer still
	// writing the item at the head serves us when it is done.
	return q.parkUnlock(ctx, &q.getters, q.records.Get(ctx, 0))
}

// tryGetRing is TryGet for a ring queue.
func (q *Queue[T]) tryGetRing() (T, error) {
	r := q.ring
	var zero T
	for i := 0; ; i++ {
		item, res := r.pop()
		switch res {
		case ringDone:
			return item, nil
		case ringDoneKick:
			q.kick()
			return item, nil
		case ringBusy:
			// Empty at the instant len looks; or else a Put that has
			// claimed its place is still writing the item at the
			// head, and the item is a moment away.
			if r.len() == 0 {
				return zero, ErrQueueEmpty
			}
			if i < queueSpins {
				runtime.Gosched()
				continue
			}
		}
		break
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		r.raise()
		if item, ok := q.takeRingLocked(); ok {
			q.lowerIfIdleLocked()
			return item, nil
		}
		if r.emptyLocked() {
			q.lowerIfIdleLocked()
			if q.shut {
				return zero, ErrQueueShutDown
			}
			return zero, ErrQueueEmpty
		}
		// Items are there, but the one at the head is still being
		// written (parked Gets were served what was written).
		q.stallLocked()
	}
}

// getManyRing is GetMany for a ring queue.
func (q *Queue[T]) getManyRing(ctx context.Context, dst []T) (int, error) {
	r := q.ring
	if ctx.Err() == nil {
		for i := 0; ; i++ {
			n, res := r.popMany(dst)
			switch res {
			case ringDone:
				return n, nil
			case ringDoneKick:
				q.kick()
				return n, nil
			case ringBusy:
				if i < queueSpins {
					runtime.Gosched()
					continue
				}
			}
			break
		}
	}
	q.mu.Lock()
	if q.shut && r.emptyLocked() {
		q.mu.Unlock()
		return 0, ErrQueueShutDown
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return 0, err
	}
	for {
		r.raise()
		n, stalled := q.takeManyRingLocked(dst)
		if n > 0 {
			q.lowerIfIdleLocked()
			q.mu.Unlock()
			return n, nil
		}
		if !stalled && r.emptyLocked() {
			// Empty: wait in line, as Get does. A hand-off then comes
			// from a Put into an empty queue, so one item is all
			// there is.
			break
		}
		// Items are there, but some are still being written (the one
		// at the head, which parked Gets ahead of us may be waiting
		// for, or one inside the batch): wait for their claimers and
		// take the batch whole. Parked, we would be handed one item
		// with others behind it.
		q.stallLocked()
	}
	if q.shut && r.emptyLocked() {
		q.mu.Unlock()
		return 0, ErrQueueShutDown
	}
	item, err := q.parkUnlock(ctx, &q.getters, q.records.Get(ctx, 0))
	if err != nil {
		return 0, err
	}
	// One instant, one batch, as on the mutex path (getmany.go).
	dst[0] = item
	return 1, nil
}

// tryGetManyRing is TryGetMany for a ring queue.
func (q *Queue[T]) tryGetManyRing(dst []T) (int, error) {
	r := q.ring
	for i := 0; ; i++ {
		n, res := r.popMany(dst)
		switch res {
		case ringDone:
			return n, nil
		case ringDoneKick:
			q.kick()
			return n, nil
		case ringBusy:
			if r.len() == 0 {
				return 0, ErrQueueEmpty
			}
			if i < queueSpins {
				runtime.Gosched()
				continue
			}
		}
		break
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		r.raise()
		n, stalled := q.takeManyRingLocked(dst)
		if n > 0 {
			q.lowerIfIdleLocked()
			return n, nil
		}
		if !stalled && r.emptyLocked() {
			q.lowerIfIdleLocked()
			if q.shut {
				return 0, ErrQueueShutDown
			}
			return 0, ErrQueueEmpty
		}
		// Items are there, but still being written, as in getManyRing:
		// the queue is not empty, and what parked Gets ahead of us do
		// not take is ours.
		q.stallLocked()
	}
}

// puts returns how many items have been put into a ring queue: every
// position ever claimed in the ring, and every item handed straight to a
// parked Get.
func (q *Queue[T]) puts() int64 {
	return int64(q.ring.count(q.ring.tail.Load())) + q.handoffs.Load()
}

// unfinished returns the number of unfinished tasks.
func (q *Queue[T]) unfinished() int64 {
	if q.ring == nil {
		return q.tasks.Load()
	}
	// done first: puts only grow, so the difference is never below the
	// true count at the moment done was read.
	done := q.ring.done.Load()
	return q.puts() - done
}

// taskDoneRing is TaskDone for a ring queue.
func (q *Queue[T]) taskDoneRing() {
	r := q.ring
	for {
		d := r.done.Load()
		// Below the items taken out, d is below the items put. The head
		// is the consumers' word, so the usual case leaves the tail, the
		// producers' word, alone. (done first: head only grows.)
		if d >= int64(r.count(r.head.Load()))+q.handoffs.Load() && d >= q.puts() {
			panic("ctxsync: TaskDone called more times than there were items")
		}
		if r.done.CompareAndSwap(d, d+1) {
			// Join raises joining before it reads the count, so
			// either it saw this TaskDone or we see the flag. Zero,
			// unless a Put came since: Join's decision is made under
			// mu, so look again there.
			if q.joining.Load() && d+1 == q.puts() {
				q.mu.Lock()
				q.wakeJoinersLocked()
				q.mu.Unlock()
			}
			return
		}
	}
}

// shutdownNowRing is ShutdownNow for a ring queue.
func (q *Queue[T]) shutdownNowRing() []T {
	r := q.ring
	q.mu.Lock()
	q.shut = true
	r.raise()
	waitq.RefuseAll(&q.putters)
	// Every item in the ring is ours now, also those whose Put claimed
	// its place before the flag and is still writing it: move head past
	// them all at once, so that no Get takes one meanwhile.
	h, t := r.head.Load(), r.tail.Load()
	r.head.Store(t)
	var drained []T
	if n := r.count(t) - r.count(h); n > 0 {
		drained = make([]T, 0, n)
	}
	for p := h &^ ringSlow; p != t&^ringSlow; p = r.next(p) {
		s := r.slot(p)
		for s.stamp.Load() != p+1 {
			q.stallLocked() // its Put is still writing the item
		}
		drained = append(drained, s.item)
		var zero T
		s.item = zero
		s.stamp.Store(p + r.oneLap)
	}
	if len(drained) > 0 {
		// Count them as done, never past the items put: TaskDone may
		// already have been called for items that were still queued.
		for {
			d := q.ring.done.Load()
			if q.ring.done.CompareAndSwap(d, min(d+int64(len(drained)), q.puts())) {
				break
			}
		}
		q.wakeJoinersLocked()
	}
	q.serveRingLocked() // the queue is empty now: parked Gets go away
	q.mu.Unlock()
	return drained
}
