package ctxsync

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// A Queue is a queue of items of type T for producers and consumers, like
// Python's asyncio.Queue, LifoQueue and PriorityQueue: NewQueue,
// NewLifoQueue and NewPriorityQueue choose the order in which Get returns
// items. A queue may be bounded, so that Put waits while it is full. It
// counts unfinished tasks for Join, and can be shut down. The zero value is
// an empty, unbounded FIFO queue. A Queue must not be copied after first
// use.
//
// Fairness: blocked Puts complete in the order they started, and blocked
// Gets receive items in the order they started. Items are handed straight
// from Put to a waiting Get, and from a waiting Put into the room a Get
// makes, so TryPut and TryGet never overtake a blocked call. A hand-off is
// kept: once a blocked Get has been handed an item it returns it, and a
// blocked Put whose item was taken in returns nil, even if their context
// ends at that moment. If the context of a blocked Put or Get ends first,
// it returns ctx.Err() and leaves the Queue unchanged; the caller loses its
// place in line.
//
// Speed: a bounded FIFO queue (NewQueue with 1 <= maxsize <= 65,536)
// keeps its items in a lock-free ring, made up front as a channel's buffer
// is: while no call is blocked and the queue is not shut down, Put, Get,
// their Try forms and the batch gets take no lock. Blocking, hand-offs and
// shutdown go through a mutex, as they do on every other queue: LIFO,
// priority, unbounded and larger bounded queues keep all their items under
// it. Either way the rules above are the same. On a ring queue a call may
// wait a moment, as for a lock, for a Put or Get in progress on the slot
// it needs (one that has claimed its place and not yet written its item
// or freed its slot); TryPut and TryGet never wait for room or items. A
// Put that finds a ring queue full spins for a few microseconds at most
// while Gets on other cores keep freeing slots, and yields or parks as
// soon as they stop: on a busy queue, waiting on its core is cheaper than
// handing the core to another consumer.
//
// In the terminology of the Go memory model, a Put synchronizes before the
// Get or TryGet that receives its item, and the TaskDone that brings the
// unfinished count to zero synchronizes before the Join calls it lets
// return.
type Queue[T any] struct {
	order   queueOrder
	maxsize int // <= 0: unbounded
	less    func(a, b T) bool

	// ring is the lock-free store of a bounded FIFO queue (ring.go);
	// nil for the other queues, which keep their items under mu.
	ring *slotRing[T]

	mu    sync.Mutex
	items deque[T]       // FIFO and LIFO queues
	heap  []heapEntry[T] // priority queues
	seq   uint64         // arrival number of the next item into heap
	shut  bool           // Shutdown or ShutdownNow was called
	// tasks counts the items put whose TaskDone has not come yet. It is
	// atomic so that TaskDone, called once per item, need not take mu
	// unless it wakes Join.
	tasks atomic.Int64
	// size is the number of items in the store. It changes only under
	// mu, but is atomic so that Len and a spinning Get can read it
	// without mu.
	size atomic.Int64
	// A ring queue counts its unfinished tasks as its ring's tail
	// position plus handoffs, minus the ring's done count (see
	// unfinished), so that a Put into the ring touches no counter.
	// handoffs is changed under mu.
	handoffs atomic.Int64
	// joining is set under mu while a Join of a ring queue is parked:
	// only then need TaskDone read the tail to see whether it brought the
	// count to zero.
	joining atomic.Bool

	// getters wait while the queue is empty and are handed an item in
	// Value. putters wait while it is full, with their item in Value.
	// Shutdown sends both away Refused.
	getters, putters waitq.List[T]
	joiners          waitq.List[T] // Join calls; Value is unused
	stalled          waitq.List[T] // ring queues: calls waiting for a claim in progress (stallLocked)
	waiterPool       waitq.Pool[T] // recycles the waiter records of all three
}

type queueOrder uint8

const (
	fifoOrder queueOrder = iota
	lifoOrder
	priorityOrder
)

// NewQueue returns a FIFO queue that holds at most maxsize items; with
// maxsize <= 0 it is unbounded. Up to 65,536 items it makes its ring of
// maxsize slots at once (see Queue).
func NewQueue[T any](maxsize int) *Queue[T] {
	q := &Queue[T]{maxsize: maxsize}
	if maxsize > 0 && maxsize <= ringMaxCap {
		q.ring = newSlotRing[T](maxsize)
	}
	return q
}

// NewLifoQueue returns a last-in, first-out queue that holds at most maxsize
// items; with maxsize <= 0 it is unbounded.
func NewLifoQueue[T any](maxsize int) *Queue[T] {
	return &Queue[T]{order: lifoOrder, maxsize: maxsize}
}

// NewPriorityQueue returns a queue whose Get returns the smallest item by
// less first; items that compare equal leave in the order they came. It
// holds at most maxsize items; with maxsize <= 0 it is unbounded. It panics
// if less is nil.
func NewPriorityQueue[T any](maxsize int, less func(a, b T) bool) *Queue[T] {
	if less == nil {
		panic("ctxsync: NewPriorityQueue with nil less function")
	}
	return &Queue[T]{order: priorityOrder, maxsize: maxsize, less: less}
}

// Put adds item to the queue, waiting while the queue is full.
//
// It returns ErrQueueShutDown, adding nothing, once the queue is shut down,
// also when that happens while it waits. Otherwise, if ctx is already done,
// Put returns ctx.Err() without adding the item, even if there is room; if
// ctx ends while Put waits, it returns ctx.Err() and leaves the queue
// unchanged, and the caller loses its place in line.
func (q *Queue[T]) Put(ctx context.Context, item T) error {
	if r := q.ring; r != nil {
		// The usual case first, here rather than in putRing: one call
		// less (a generic method calls another through its dictionary,
		// and neither is inlined). R1: a done context adds nothing.
		if ctx.Err() != nil {
			return q.putRing(ctx, item, ringFlagged)
		}
		if res := r.push(item); res != ringDone {
			return q.putRing(ctx, item, res)
		}
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
	if q.fullLocked() {
		w := q.waiterPool.Get(ctx, 0)
		w.Value = item
		_, err := q.parkUnlock(ctx, &q.putters, w)
		return err
	}
	q.addLocked(item)
	q.mu.Unlock()
	return nil
}

// parkUnlock puts w in line and parks it until it is served, its context
// ends, or Shutdown sends it away, and returns the item a Get was handed.
// Call it with q.mu held; it returns with q.mu released.
func (q *Queue[T]) parkUnlock(ctx context.Context, line *waitq.List[T], w *waitq.Waiter[T]) (T, error) {
	line.PushBack(w)
	err := waitq.ParkUnlock(ctx, &q.mu, w, q.leftLocked)
	item, refused := w.Value, w.Refused
	q.waiterPool.Put(w)
	var zero T
	switch {
	case err != nil:
		return zero, err
	case refused:
		return zero, ErrQueueShutDown
	}
	return item, nil
}

// TryPut adds item to the queue if there is room now. It returns nil,
// ErrQueueFull if the queue is full (or blocked Puts wait for room), or
// ErrQueueShutDown once the queue is shut down.
func (q *Queue[T]) TryPut(item T) error {
	if q.ring != nil {
		return q.tryPutRing(item)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shut {
		return ErrQueueShutDown
	}
	if q.fullLocked() {
		return ErrQueueFull
	}
	q.addLocked(item)
	return nil
}

// fullLocked reports whether a new item must wait. Blocked Puts wait only
// while the queue is full, so their presence alone means no room: a
// newcomer queues behind them.
func (q *Queue[T]) fullLocked() bool {
	return q.putters.Len() > 0 || (q.maxsize > 0 && q.Len() >= q.maxsize)
}

// addLocked takes item in as a new unfinished task: straight into the hands
// of the longest-waiting Get, if any, else into the store. Gets wait only
// while the queue is empty, so the item given to a Get is the one it would
// have taken from the store in any order.
func (q *Queue[T]) addLocked(item T) {
	q.tasks.Add(1)
	if w := q.getters.First(); w != nil {
		w.Value = item
		waitq.Grant(w)
		return
	}
	q.pushLocked(item)
}

// Get removes and returns an item, waiting while the queue is empty.
//
// Once the queue is shut down and empty, Get returns ErrQueueShutDown, also
// when that happens while it waits; a shut-down queue that still holds
// items goes on handing them out. Otherwise, if ctx is already done, Get
// returns ctx.Err() and takes nothing, even if an item is there; if ctx
// ends while Get waits, it returns ctx.Err() and leaves the queue
// unchanged, and the caller loses its place in line.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	if r := q.ring; r != nil {
		// As in Put: the usual case here, one call less.
		var zero T
		if ctx.Err() != nil {
			return q.getRing(ctx, zero, ringFlagged)
		}
		item, res := r.pop()
		if res != ringDone {
			return q.getRing(ctx, item, res)
		}
		return item, nil
	}
	var zero T
	q.mu.Lock()
	if q.shut && q.Len() == 0 {
		q.mu.Unlock()
		return zero, ErrQueueShutDown
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return zero, err
	}
	if q.Len() == 0 && !q.shut {
		// An item is often only a moment away: look again a few times,
		// yielding in between and without holding mu (size is atomic),
		// before paying for a wake-up channel and two goroutine
		// switches. A spinning Get has not started waiting, so Gets that
		// park meanwhile are rightly served first.
		q.mu.Unlock()
		for i := 0; i < queueSpins && q.size.Load() == 0; i++ {
			runtime.Gosched()
		}
		q.mu.Lock()
	}
	if q.Len() == 0 {
		if q.shut {
			q.mu.Unlock()
			return zero, ErrQueueShutDown
		}
		return q.parkUnlock(ctx, &q.getters, q.waiterPool.Get(ctx, 0))
	}
	item := q.takeLocked()
	q.mu.Unlock()
	return item, nil
}

// queueSpins is how many times a Get (and, on a ring queue, a Put, after
// the spin of slotRing.waitRoom) yields and looks again before it parks:
// a few yields let the caller on the other side come first without a park
// on either side, which is what BenchmarkQueuePingPong measures; more cost
// it again, and move BenchmarkQueue4x4 and BenchmarkQueueSPSC not at all.
// A Get yields between its looks, unlike waitRoom's Put, because the Put it
// waits for is often runnable on its own core.
const queueSpins = 3

// TryGet removes and returns an item if one is there now. Otherwise it
// returns ErrQueueShutDown if the queue is shut down, else ErrQueueEmpty.
func (q *Queue[T]) TryGet() (T, error) {
	if q.ring != nil {
		return q.tryGetRing()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Len() > 0 {
		return q.takeLocked(), nil
	}
	var zero T
	if q.shut {
		return zero, ErrQueueShutDown
	}
	return zero, ErrQueueEmpty
}

// takeLocked removes the next item from a non-empty store, and lets the
// longest-waiting Put fill the room it made.
func (q *Queue[T]) takeLocked() T {
	item := q.popLocked()
	if w := q.putters.First(); w != nil {
		q.tasks.Add(1)
		q.pushLocked(w.Value)
		waitq.Grant(w)
	}
	return item
}

// TaskDone tells the queue that one item taken from it has been fully
// processed. When every item put has had its TaskDone, Join calls return.
// It panics if there is no unfinished task.
func (q *Queue[T]) TaskDone() {
	if q.ring != nil {
		q.taskDoneRing()
		return
	}
	for {
		n := q.tasks.Load()
		if n == 0 {
			panic("ctxsync: TaskDone called more times than there were items")
		}
		if q.tasks.CompareAndSwap(n, n-1) {
			if n == 1 {
				q.mu.Lock()
				q.wakeJoinersLocked()
				q.mu.Unlock()
			}
			return
		}
	}
}

// wakeJoinersLocked lets every Join return, if no task is unfinished. It
// looks at the count again under mu: a Put may have come since it reached
// zero, and Join decides under mu whether to wait.
func (q *Queue[T]) wakeJoinersLocked() {
	if q.unfinished() == 0 {
		waitq.GrantAll(&q.joiners, nil)
		q.joining.Store(false)
	}
}

// joinLeftLocked drops the joining flag once no Join is parked. q.mu is
// held.
func (q *Queue[T]) joinLeftLocked(*waitq.Waiter[T]) {
	if q.joiners.Len() == 0 {
		q.joining.Store(false)
	}
}

// Join blocks until every item put in the queue has had its TaskDone. It
// returns nil at once if there is no unfinished task, whatever the state of
// ctx; otherwise it returns ctx.Err() if ctx is done or ends first.
// Shutdown does not affect it.
func (q *Queue[T]) Join(ctx context.Context) error {
	q.mu.Lock()
	// Raised before the count is read: a TaskDone that brings it to zero
	// after this read sees the flag (both are sequentially consistent
	// atomics), and wakes us.
	q.joining.Store(true)
	if q.unfinished() == 0 {
		q.joinLeftLocked(nil)
		q.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		q.joinLeftLocked(nil)
		q.mu.Unlock()
		return err
	}
	w := q.waiterPool.Get(ctx, 0)
	q.joiners.PushBack(w)
	err := waitq.ParkUnlock(ctx, &q.mu, w, q.joinLeftLocked)
	q.waiterPool.Put(w)
	return err
}

// Shutdown shuts the queue down gracefully: from now on Put and TryPut
// fail with ErrQueueShutDown, and blocked Puts wake with it, their items
// not added. Get and TryGet go on returning the items left; once the queue
// is empty they fail with ErrQueueShutDown, and blocked Gets wake with it.
// Join is unaffected. Shutting down again does no harm.
func (q *Queue[T]) Shutdown() {
	q.mu.Lock()
	q.shutdownLocked()
	q.mu.Unlock()
}

func (q *Queue[T]) shutdownLocked() {
	q.shut = true
	if q.ring != nil {
		// Raised for good: every call now decides under mu.
		q.ring.raise()
		waitq.RefuseAll(&q.putters)
		q.serveRingLocked()
		return
	}
	waitq.RefuseAll(&q.putters)
	if q.Len() == 0 {
		waitq.RefuseAll(&q.getters)
	}
}

// ShutdownNow shuts the queue down as Shutdown does, and also removes every
// item at once. It returns them in the order Get would have returned them
// (nil when there are none), and counts each of them as done for Join.
// Calling it after Shutdown drains what Shutdown left.
func (q *Queue[T]) ShutdownNow() []T {
	if q.ring != nil {
		return q.shutdownNowRing()
	}
	q.mu.Lock()
	var drained []T
	if n := q.Len(); n > 0 {
		drained = make([]T, 0, n)
		for q.Len() > 0 {
			drained = append(drained, q.popLocked())
		}
		// Never below zero: TaskDone may already have been called for
		// items that were still queued.
		for {
			n := q.tasks.Load()
			if q.tasks.CompareAndSwap(n, max(n-int64(len(drained)), 0)) {
				break
			}
		}
		q.wakeJoinersLocked()
	}
	q.shutdownLocked()
	q.mu.Unlock()
	return drained
}

// Len returns the number of items in the queue.
func (q *Queue[T]) Len() int {
	if q.ring != nil {
		return q.ring.len()
	}
	// An atomic, so that Len needs no lock; the queue's own code calls it
	// under mu, where it is exact.
	return int(q.size.Load())
}

// Cap returns the most items the queue holds: its maxsize, or 0 when it is
// unbounded.
func (q *Queue[T]) Cap() int { return max(q.maxsize, 0) }

// Empty reports whether the queue holds no items.
func (q *Queue[T]) Empty() bool { return q.Len() == 0 }

// Full reports whether the queue holds Cap() items. It is always false for
// an unbounded queue.
func (q *Queue[T]) Full() bool {
	return q.maxsize > 0 && q.Len() >= q.maxsize
}

// GetMany removes up to len(dst) items into dst and returns how many,
// waiting as Get does while the queue is empty. Once at least one item is
// there it takes as many as are there, up to len(dst), in the order Get
// would return them; the rest of dst is left as it was. It stands in the
// same FIFO line as Get: a blocked GetMany is served in its turn among
// blocked Gets, and returns the one item it is handed (the queue was empty
// until then), so every batch is what was there at one instant. Each item
// taken is one fetched task, which needs its own TaskDone. It panics if
// len(dst) is 0.
//
// Its errors are Get's, and an error means nothing was taken: once the
// queue is shut down and empty GetMany returns ErrQueueShutDown, also when
// that happens while it waits; otherwise, if ctx is already done, it
// returns ctx.Err() even if items are there, and if ctx ends while it
// waits, it returns ctx.Err() and the caller loses its place in line. A
// blocked GetMany that has been handed an item keeps it, as Get does.
func (q *Queue[T]) GetMany(ctx context.Context, dst []T) (int, error) {
	if len(dst) == 0 {
		panic("ctxsync: GetMany with an empty dst")
	}
	if q.ring != nil {
		return q.getManyRing(ctx, dst)
	}
	// The same steps as Get, in the same order, so R1, R3 and R10 come
	// out the same.
	q.mu.Lock()
	if q.shut && q.Len() == 0 {
		q.mu.Unlock()
		return 0, ErrQueueShutDown
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return 0, err
	}
	if q.Len() == 0 && !q.shut {
		// Look again a few times before parking, as Get does; a
		// spinning GetMany has not started waiting, so those that park
		// meanwhile are rightly served first.
		q.mu.Unlock()
		for i := 0; i < queueSpins && q.size.Load() == 0; i++ {
			runtime.Gosched()
		}
		q.mu.Lock()
	}
	if q.Len() == 0 {
		if q.shut {
			q.mu.Unlock()
			return 0, ErrQueueShutDown
		}
		// Park in the getters' line, where Put hands items to Gets and
		// GetManys alike in the order they came.
		item, err := q.parkUnlock(ctx, &q.getters, q.waiterPool.Get(ctx, 0))
		if err != nil {
			return 0, err
		}
		// One instant, one batch: when a Put hands its item to a parked
		// GetMany the queue is empty (Gets wait only while it is), so
		// that item is all there was. Items that came later are for the
		// next call; taking them too would make a batch of two
		// instants, around any Get between them.
		dst[0] = item
		return 1, nil
	}
	n := q.takeManyLocked(dst)
	q.mu.Unlock()
	return n, nil
}

// TryGetMany removes up to len(dst) items into dst if any are there now,
// as GetMany does without waiting, and returns how many. Otherwise it
// returns ErrQueueShutDown if the queue is shut down, else ErrQueueEmpty.
// It panics if len(dst) is 0.
func (q *Queue[T]) TryGetMany(dst []T) (int, error) {
	if len(dst) == 0 {
		panic("ctxsync: TryGetMany with an empty dst")
	}
	if q.ring != nil {
		return q.tryGetManyRing(dst)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Len() > 0 {
		return q.takeManyLocked(dst), nil
	}
	if q.shut {
		return 0, ErrQueueShutDown
	}
	return 0, ErrQueueEmpty
}

// takeManyLocked removes min(len(dst), Len()) items from the store into
// dst, in Get order, then lets as many of the longest-waiting Puts fill the
// room it made, in order. It takes only what was there when it started: the
// items of blocked Puts join the queue, not this batch, as they would
// behind any other Get. q.mu must be held.
func (q *Queue[T]) takeManyLocked(dst []T) int {
	n := min(len(dst), q.Len())
	for i := range n {
		dst[i] = q.popLocked()
	}
	for range n {
		w := q.putters.First()
		if w == nil {
			break
		}
		q.tasks.Add(1) // each Put let in adds its unfinished task, as in takeLocked
		q.pushLocked(w.Value)
		waitq.Grant(w)
	}
	return n
}

// PutTicket returns a ticket for putting item: a place in the same line as
// the blocked Put calls, which the caller waits for in a select (see
// Ticket). If there is room and no Put waits, the item is added before the
// ticket is returned. On a shut-down queue the ticket is decided at once
// with ErrQueueShutDown, and a Shutdown while it waits decides it with
// that error, the item not added. Once Ready is closed with a nil Err the
// item has been added; a Stop that returns true added nothing.
func (q *Queue[T]) PutTicket(item T) *Ticket {
	// The queue's leave policy, as for a cancelled Put or Get: one that
	// leaves holds nobody back (a Put waits only while the queue is full,
	// a Get only while it is empty), but a ring queue lets its fast paths
	// go again once nobody is parked.
	t, w := newTicket[T](&q.mu, q, ErrQueueShutDown, 0)
	q.mu.Lock()
	switch {
	case q.shut:
		decideNow(w, true) // refused: the ticket's refusal is ErrQueueShutDown
	case q.ring != nil:
		q.ring.raise() // our decision must be final, as in putRing
		if q.addRingLocked(item) {
			q.lowerIfIdleLocked()
			decideNow(w, false)
			break
		}
		w.Value = item
		q.putters.PushBack(w)
	case q.fullLocked():
		// In line with the blocked Puts; the Get that makes room takes
		// the item in and grants the ticket, under mu.
		w.Value = item
		q.putters.PushBack(w)
	default:
		q.addLocked(item)
		decideNow(w, false)
	}
	q.mu.Unlock()
	return t
}

// GetTicket returns a ticket for getting an item: a place in the same line
// as the blocked Get calls, which the caller waits for in a select (see
// GetTicket). If an item is there, it is taken before the ticket is
// returned. On a shut-down, empty queue the ticket is decided at once with
// ErrQueueShutDown, and a Shutdown while it waits decides it with that
// error. Once Ready is closed with a nil Err, Item returns the item, which
// needs its TaskDone; a Stop that returns true took nothing.
func (q *Queue[T]) GetTicket() *GetTicket[T] {
	t := &GetTicket[T]{}
	t.rec.init(&q.mu, q, ErrQueueShutDown, 0) // the leave policy of PutTicket
	w := &t.rec.w
	q.mu.Lock()
	if q.ring != nil {
		q.getTicketRingLocked(w)
		q.mu.Unlock()
		return t
	}
	switch {
	case q.Len() > 0:
		// Gets wait only while the queue is empty, so nobody is ahead
		// of us; takeLocked lets a blocked Put fill the room.
		w.Value = q.takeLocked()
		decideNow(w, false)
	case q.shut:
		decideNow(w, true)
	default:
		// In line with the blocked Gets; the next Put hands its item
		// straight to the first of them, under mu.
		q.getters.PushBack(w)
	}
	q.mu.Unlock()
	return t
}

// The store: a deque for FIFO and LIFO queues, a binary heap for
// priority queues. Each reuses its memory, so that a queue in steady state
// allocates nothing per item.

func (q *Queue[T]) pushLocked(item T) {
	q.size.Add(1)
	if q.order == priorityOrder {
		q.heap = append(q.heap, heapEntry[T]{item: item, seq: q.seq})
		q.seq++
		q.siftUp(len(q.heap) - 1)
		return
	}
	q.items.push(item)
}

func (q *Queue[T]) popLocked() T {
	q.size.Add(-1)
	switch q.order {
	case lifoOrder:
		return q.items.popBack()
	case priorityOrder:
		return q.popHeap()
	default:
		return q.items.popFront()
	}
}

// deque is a growable circular buffer, taken from the front (FIFO) or the
// back (LIFO): the mutex path's store, not to be confused with the
// lock-free slotRing.
type deque[T any] struct {
	buf     []T
	head, n int
}

func (r *deque[T]) push(v T) {
	if r.n == len(r.buf) {
		grown := make([]T, max(2*len(r.buf), 8))
		// Copy out in order: the part from head to the end, then the
		// part that wrapped around.
		k := copy(grown, r.buf[r.head:])
		copy(grown[k:], r.buf[:r.head])
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
}

func (r *deque[T]) popFront() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero // let the item be collected
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v
}

func (r *deque[T]) popBack() T {
	var zero T
	i := (r.head + r.n - 1) % len(r.buf)
	v := r.buf[i]
	r.buf[i] = zero
	r.n--
	return v
}

// heapEntry is an item of a priority queue with its arrival number, which
// breaks ties so that equal items leave in the order they came.
type heapEntry[T any] struct {
	item T
	seq  uint64
}

func (q *Queue[T]) heapLess(i, j int) bool {
	a, b := &q.heap[i], &q.heap[j]
	if q.less(a.item, b.item) {
		return true
	}
	if q.less(b.item, a.item) {
		return false
	}
	return a.seq < b.seq
}

func (q *Queue[T]) siftUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q.heapLess(i, parent) {
			return
		}
		q.heap[i], q.heap[parent] = q.heap[parent], q.heap[i]
		i = parent
	}
}

func (q *Queue[T]) popHeap() T {
	h := q.heap
	top := h[0].item
	last := len(h) - 1
	h[0] = h[last]
	h[last] = heapEntry[T]{} // let the item be collected
	q.heap = h[:last]
	for i := 0; ; {
		smallest := i
		for _, child := range [2]int{2*i + 1, 2*i + 2} {
			if child < last && q.heapLess(child, smallest) {
				smallest = child
			}
		}
		if smallest == i {
			break
		}
		q.heap[i], q.heap[smallest] = q.heap[smallest], q.heap[i]
		i = smallest
	}
	return top
}
