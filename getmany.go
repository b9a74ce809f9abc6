package ctxsync

import (
	"context"
	"runtime"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

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
		item, err := q.parkUnlock(ctx, &q.getters, q.records.Get(ctx, 0))
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
