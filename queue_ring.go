package ctxsync

import (
	"context"
	"runtime"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// The Queue's side of the lock-free ring (ring.go): the fast paths that
// use it, and what is decided under q.mu once ringSlow is up: parking,
// hand-offs to parked callers, batches and shutdown.

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
	w := q.waiterPool.Get(ctx, 0)
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
	w := q.waiterPool.Get(context.Background(), 0)
	q.stalled.PushBack(w)
	_ = waitq.ParkUnlock(context.Background(), &q.mu, w, nil)
	q.waiterPool.Put(w)
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
	return q.parkUnlock(ctx, &q.getters, q.waiterPool.Get(ctx, 0))
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
	item, err := q.parkUnlock(ctx, &q.getters, q.waiterPool.Get(ctx, 0))
	if err != nil {
		return 0, err
	}
	// One instant, one batch, as on the mutex path (GetMany).
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

// getTicketRingLocked decides or lines up a GetTicket's waiter on a ring
// queue, as getRing does a Get. q.mu must be held.
func (q *Queue[T]) getTicketRingLocked(w *waitq.Waiter[T]) {
	if q.shut && q.ring.emptyLocked() {
		decideNow(w, true)
		return
	}
	q.ring.raise()
	if item, ok := q.takeRingLocked(); ok {
		q.lowerIfIdleLocked()
		w.Value = item
		decideNow(w, false)
		return
	}
	if q.shut && q.ring.emptyLocked() {
		decideNow(w, true)
		return
	}
	q.getters.PushBack(w)
}
