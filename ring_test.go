package ctxsync_test

// Direct tests of what the ring path of a bounded FIFO Queue
// (queue_ring.go) changes: which queues take it, TaskDone's misuse panic,
// and the unfinished count, which the ring keeps from its tail position
// plus the items handed straight to parked Gets.

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// Only a FIFO queue bounded by 1..65536 takes the ring; a larger bound
// keeps the mutex path, whose buffer grows as needed.
func TestRingChosenByBound(t *testing.T) {
	for _, tt := range []struct {
		name string
		q    *ctxsync.Queue[int]
		ring bool
	}{
		{"NewQueue(1)", ctxsync.NewQueue[int](1), true},
		{"NewQueue(65536)", ctxsync.NewQueue[int](65536), true},
		{"NewQueue(65537)", ctxsync.NewQueue[int](65537), false},
		{"NewQueue(0)", ctxsync.NewQueue[int](0), false},
		{"NewQueue(-1)", ctxsync.NewQueue[int](-1), false},
		{"zero Queue", new(ctxsync.Queue[int]), false},
		{"NewLifoQueue(4)", ctxsync.NewLifoQueue[int](4), false},
		{"NewPriorityQueue(4)", ctxsync.NewPriorityQueue(4, func(a, b int) bool { return a < b }), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.ring, ctxsync.UsesRing(tt.q))
			if !tt.ring {
				assert.PanicsWithValue(t, "ctxsync: SetClaimHook on a queue without a ring", func() { ctxsync.SetClaimHook(tt.q, nil) })
			}
		})
	}
}

// The two bounds on either side of the ring's largest work alike: full at
// their bound, FIFO, every item one task.
func TestRingLargestBounds(t *testing.T) {
	for _, bound := range []int{65536, 65537} {
		q := ctxsync.NewQueue[int](bound)
		require.Equal(t, bound <= 65536, ctxsync.UsesRing(q))
		require.Equal(t, bound, q.Cap())
		for i := range bound {
			if err := q.TryPut(i); err != nil {
				require.NoError(t, err, "item %d of %d", i, bound)
			}
		}
		assert.True(t, q.Full())
		assert.Equal(t, bound, q.Len())
		assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(-1))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.Equal(t, context.Canceled, q.Put(ctx, -1))
		for i := range bound {
			v, err := q.TryGet()
			if err != nil || v != i {
				require.Equal(t, getResult{i, nil}, getResult{v, err}, "bound %d", bound)
			}
			q.TaskDone()
		}
		_, err := q.TryGet()
		assert.Equal(t, ctxsync.ErrQueueEmpty, err)
		assert.NoError(t, q.Join(cancelled()))
		assert.PanicsWithValue(t, taskDonePanic, q.TaskDone)
	}
}

// R6 on the ring path: TaskDone with no unfinished task panics with the
// same message as on the mutex path, and changes nothing, in every state
// the ring counts tasks in.
func TestRingTaskDoneMisusePanics(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, q *ctxsync.Queue[int])
		len   int
	}{
		{"new queue", func(*testing.T, *ctxsync.Queue[int]) {}, 0},
		{"every item done", func(t *testing.T, q *ctxsync.Queue[int]) {
			require.NoError(t, q.TryPut(1))
			_, err := q.TryGet()
			require.NoError(t, err)
			q.TaskDone()
		}, 0},
		{"an item queued, done early", func(t *testing.T, q *ctxsync.Queue[int]) {
			require.NoError(t, q.TryPut(1))
			q.TaskDone() // allowed: one task is unfinished
		}, 1},
		{"after ShutdownNow", func(t *testing.T, q *ctxsync.Queue[int]) {
			require.NoError(t, q.TryPut(1))
			require.NoError(t, q.TryPut(2))
			require.Equal(t, []int{1, 2}, q.ShutdownNow())
		}, 0},
		{"after a batch", func(t *testing.T, q *ctxsync.Queue[int]) {
			require.NoError(t, q.TryPut(1))
			require.NoError(t, q.TryPut(2))
			n, err := q.TryGetMany(make([]int, 4))
			require.NoError(t, err)
			require.Equal(t, 2, n)
			q.TaskDone()
			q.TaskDone()
		}, 0},
	} {
		for _, capacity := range []int{0, 2, 1024} {
			t.Run(fmt.Sprintf("%s/cap%d", tt.name, capacity), func(t *testing.T) {
				q := ctxsync.NewQueue[int](capacity)
				require.Equal(t, capacity > 0, ctxsync.UsesRing(q))
				tt.setup(t, q)
				assert.PanicsWithValue(t, taskDonePanic, q.TaskDone)
				assert.Equal(t, tt.len, q.Len(), "changes nothing")
				assert.NoError(t, q.Join(cancelled()), "nothing unfinished")
				assert.PanicsWithValue(t, taskDonePanic, q.TaskDone, "still nothing unfinished")
			})
		}
	}
}

// Items handed straight to parked Gets never enter the ring, yet each is
// one unfinished task, and Join waits for its TaskDone.
func TestRingJoinCountsHandOffs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		got1 := getAsync(context.Background(), q)
		synctest.Wait()
		got2 := getAsync(context.Background(), q)
		synctest.Wait()
		require.NoError(t, q.Put(context.Background(), 1))
		require.NoError(t, q.TryPut(2))
		assert.Equal(t, getResult{1, nil}, <-got1)
		assert.Equal(t, getResult{2, nil}, <-got2)
		assert.Equal(t, 0, q.Len(), "handed over, not stored")

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		joined := make(chan error, 1)
		go func() { joined <- q.Join(ctx) }()
		synctest.Wait()
		require.Empty(t, joined, "two tasks unfinished")
		q.TaskDone()
		synctest.Wait()
		require.Empty(t, joined, "one task unfinished")
		q.TaskDone()
		synctest.Wait()
		require.Len(t, joined, 1)
		require.NoError(t, <-joined)
		requireTasks(t, q, 0)

		// And mixed with items through the ring: one stored, one handed.
		require.NoError(t, q.TryPut(3))
		got3 := getAsync(context.Background(), q) // takes 3 from the ring
		assert.Equal(t, getResult{3, nil}, <-got3)
		got4 := getAsync(context.Background(), q)
		synctest.Wait()
		require.NoError(t, q.TryPut(4))
		assert.Equal(t, getResult{4, nil}, <-got4)
		requireTasks(t, q, 2)
	})
}

// A Put parked for a slot that a paused Get is still freeing, and a second
// Get parked on the then empty ring: when the first Get is done, the parked
// Put's item goes straight to the parked Get. Both items are tasks.
func TestRingJoinCountsParkedPutToParkedGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		got1 := pausedGet(q, g)
		put := putAsync(context.Background(), q, 2)
		synctest.Wait()
		got2 := getAsync(context.Background(), q)
		synctest.Wait()
		require.Empty(t, put, "no free slot")
		require.Empty(t, got2, "nothing written")

		close(g.resume)
		assert.Equal(t, getResult{1, nil}, <-got1)
		require.NoError(t, <-put)
		assert.Equal(t, getResult{2, nil}, <-got2)
		assert.Equal(t, 0, q.Len())
		requireTasks(t, q, 2)
	})
}

// ShutdownNow counts what it removes as done: a Join waiting for those
// items and one fetched item returns once that item has its TaskDone.
func TestRingJoinAcrossShutdownNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 4)
		for i := 1; i <= 3; i++ {
			require.NoError(t, q.TryPut(i))
		}
		v, err := q.TryGet()
		require.NoError(t, err)
		require.Equal(t, 1, v)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		joined := make(chan error, 1)
		go func() { joined <- q.Join(ctx) }()
		synctest.Wait()
		require.Empty(t, joined)

		assert.Equal(t, []int{2, 3}, q.ShutdownNow())
		synctest.Wait()
		require.Empty(t, joined, "item 1 is fetched but not done")
		assert.Nil(t, q.ShutdownNow(), "nothing left")
		q.TaskDone()
		synctest.Wait()
		require.Len(t, joined, 1)
		require.NoError(t, <-joined)
		requireTasks(t, q, 0)

		// Done early for items still queued: the count stops at zero.
		p := newRingQueue(t, 4)
		require.NoError(t, p.TryPut(1))
		require.NoError(t, p.TryPut(2))
		p.TaskDone()
		p.TaskDone()
		assert.Equal(t, []int{1, 2}, p.ShutdownNow())
		requireTasks(t, p, 0)
	})
}

// advance, which a Put waiting for room uses to find the slot ringAhead
// places on, agrees with next at every capacity shape: a power of two, one
// below, one above, and the smallest.
func TestRingAdvance(t *testing.T) {
	for _, c := range []int{1, 2, 3, 4, 5, 7, 8, 9, 64, 100} {
		assert.True(t, ctxsync.RingAdvanceMatchesNext(ctxsync.NewQueue[int](c)), "capacity %d", c)
	}
}

// A Put into a full ring spins for room only while Gets are taking items:
// with none running it parks (synctest.Wait returns only once every
// goroutine of the bubble is durably blocked), and the Get that comes
// later lets it in behind the items already there.
func TestRingFullPutStopsSpinningWithoutGets(t *testing.T) {
	for _, c := range []int{1, 4, 1024} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				q := ctxsync.NewQueue[int](c)
				for i := range c {
					require.NoError(t, q.TryPut(i))
				}
				done := make(chan error, 1)
				go func() { done <- q.Put(ctx, c) }()
				synctest.Wait()
				require.Empty(t, done, "Put into a full queue returned")
				for i := range c + 1 {
					v, err := q.Get(ctx)
					require.NoError(t, err)
					require.Equal(t, i, v)
				}
				require.NoError(t, <-done)
				assert.Equal(t, 0, q.Len())
			})
		})
	}
}
