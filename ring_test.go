package ctxsync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// Direct tests of what the ring path of a bounded FIFO Queue (ring.go,
// queue_ring.go) changes: which queues take it, TaskDone's misuse panic,
// and the unfinished count, which the ring keeps from its tail position
// plus the items handed straight to parked Gets.

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

// Deterministic schedules of the lock-free ring of a bounded FIFO Queue
// around a fast-path claim that is made but not yet published: a Put
// between its claim of a tail position and the stamp that writes its item,
// a Get or GetMany between its claim of head and the stamp that frees the
// slot. The claim hook (SetClaimHook, export_test.go) stops the claimer
// there, on a channel made in the synctest bubble, so the claimer is
// durably blocked while the test raises the slow-path flag under it (a
// parked caller, a Shutdown, a ShutdownNow) and then lets it go on.

const taskDonePanic = "ctxsync: TaskDone called more times than there were items"

// claimGate stops the first fast-path claim of one kind (a Put's, or a
// Get's and GetMany's) after its CAS, until resume is closed.
type claimGate struct {
	paused chan struct{} // closed once the claimer has stopped
	resume chan struct{} // close it to let the claimer go on
}

// pauseClaim sets q's claim hook to stop the first claim of the kind put
// says. Call it before q is shared with any goroutine.
func pauseClaim(q *ctxsync.Queue[int], put bool) *claimGate {
	g := &claimGate{paused: make(chan struct{}), resume: make(chan struct{})}
	var armed atomic.Bool
	armed.Store(true)
	ctxsync.SetClaimHook(q, func(isPut bool) {
		if isPut == put && armed.CompareAndSwap(true, false) {
			close(g.paused)
			<-g.resume
		}
	})
	return g
}

// newRingQueue returns a FIFO queue of capacity n that takes the ring path.
func newRingQueue(t *testing.T, n int) *ctxsync.Queue[int] {
	t.Helper()
	q := ctxsync.NewQueue[int](n)
	require.True(t, ctxsync.UsesRing(q), "NewQueue(%d) takes the ring path", n)
	return q
}

// pausedPut starts Put(item) and returns once it has claimed its position.
func pausedPut(q *ctxsync.Queue[int], g *claimGate, item int) <-chan error {
	done := putAsync(context.Background(), q, item)
	<-g.paused
	return done
}

// pausedGet starts Get and returns once it has claimed the head.
func pausedGet(q *ctxsync.Queue[int], g *claimGate) <-chan getResult {
	done := getAsync(context.Background(), q)
	<-g.paused
	return done
}

// requireTasks checks that n tasks are unfinished: n-1 TaskDones leave
// Join waiting, the n-th lets it return, and one more panics.
func requireTasks(t *testing.T, q *ctxsync.Queue[int], n int) {
	t.Helper()
	for range n {
		require.Equal(t, context.Canceled, q.Join(cancelled()), "a task is still unfinished")
		q.TaskDone()
	}
	require.NoError(t, q.Join(cancelled()), "every task done")
	require.PanicsWithValue(t, taskDonePanic, q.TaskDone)
	require.NoError(t, q.Join(cancelled()), "the panicking TaskDone changed nothing")
}

// (a) A Get that comes while the Put ahead of it is still writing its item
// parks (it does not take a later item, nor return empty-handed), and the
// Put, once its stamp is down, sees the flag and hands the item over.
func TestRingPausedPutGetParksThenReceives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, true)
		put := pausedPut(q, g, 1)
		assert.Equal(t, 1, q.Len(), "the claimed position counts")
		assert.True(t, q.Full())

		got := getAsync(context.Background(), q)
		synctest.Wait()
		require.Empty(t, got, "the Get parks: the item is not written yet")
		require.Empty(t, put)

		close(g.resume)
		require.NoError(t, <-put)
		assert.Equal(t, getResult{1, nil}, <-got, "the Put served the parked Get itself")
		assert.Equal(t, 0, q.Len())

		// The fast path is back, and nothing was left behind.
		require.NoError(t, q.TryPut(2))
		v, err := q.TryGet()
		require.NoError(t, err)
		assert.Equal(t, 2, v)
		_, err = q.TryGet()
		assert.Equal(t, ctxsync.ErrQueueEmpty, err)
		requireTasks(t, q, 2)
	})
}

// A later Put whose item is written while the one ahead is still writing
// does not overtake it: the parked Get receives the first item, in order.
func TestRingPausedPutLaterPutDoesNotOvertake(t *testing.T) {
	for _, parkFirst := range []bool{false, true} {
		name := map[bool]string{false: "later Put before the Get", true: "Get parked before the later Put"}[parkFirst]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newRingQueue(t, 2)
				g := pauseClaim(q, true)
				first := pausedPut(q, g, 1)
				var got <-chan getResult
				if parkFirst {
					got = getAsync(context.Background(), q)
					synctest.Wait()
					require.Empty(t, got)
				}
				require.NoError(t, q.Put(context.Background(), 2), "room for the second")
				if !parkFirst {
					got = getAsync(context.Background(), q)
				}
				synctest.Wait()
				require.Empty(t, got, "the Get waits for the first item, not the second")
				assert.Equal(t, 2, q.Len())
				assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(3))

				close(g.resume)
				require.NoError(t, <-first)
				assert.Equal(t, getResult{1, nil}, <-got)
				assert.Equal(t, []int{2}, drain(t, q))
				requireTasks(t, q, 2)
			})
		})
	}
}

// A Get parked for a paused Put whose context ends before the Put goes on
// returns ctx.Err() and takes nothing: the item stays in the queue.
func TestRingPausedPutParkedGetCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, true)
		put := pausedPut(q, g, 1)
		ctx, cancel := context.WithCancel(context.Background())
		got := getAsync(ctx, q)
		synctest.Wait()
		require.Empty(t, got)
		cancel()
		assert.Equal(t, getResult{0, context.Canceled}, <-got)

		close(g.resume)
		require.NoError(t, <-put)
		assert.Equal(t, 1, q.Len(), "the item was not handed to the Get that left")
		assert.Equal(t, []int{1}, drain(t, q))
		requireTasks(t, q, 1)
	})
}

// (b) Shutdown while a Put is between its claim and its stamp: the Put
// claimed before the shutdown, so it returns nil and its item is still
// handed out; Gets fail only once it is gone. Gets parked before the
// Shutdown, parked after it, or coming after the Put resumed all work.
func TestRingPausedPutAcrossShutdown(t *testing.T) {
	for _, when := range []string{"Get parked before Shutdown", "Get parked after Shutdown", "Get after the Put"} {
		t.Run(when, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newRingQueue(t, 1)
				g := pauseClaim(q, true)
				put := pausedPut(q, g, 1)
				var got <-chan getResult
				if when == "Get parked before Shutdown" {
					got = getAsync(context.Background(), q)
					synctest.Wait()
				}
				q.Shutdown()
				assert.Equal(t, ctxsync.ErrQueueShutDown, q.TryPut(2))
				assert.Equal(t, ctxsync.ErrQueueShutDown, q.Put(context.Background(), 3))
				assert.Equal(t, 1, q.Len())
				if when == "Get parked after Shutdown" {
					got = getAsync(context.Background(), q)
				}
				synctest.Wait()
				if got != nil {
					require.Empty(t, got, "the Get waits for the item still being written")
				}
				require.Empty(t, put)

				close(g.resume)
				require.NoError(t, <-put, "a claim made before the shutdown is kept")
				if got == nil {
					got = getAsync(context.Background(), q)
				}
				assert.Equal(t, getResult{1, nil}, <-got)
				_, err := q.Get(context.Background())
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				_, err = q.TryGet()
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				_, err = q.GetMany(context.Background(), make([]int, 2))
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				assert.Equal(t, 0, q.Len())
				requireTasks(t, q, 1)
			})
		})
	}
}

// (c) ShutdownNow while a Put is between its claim and its stamp: it takes
// every item, the unwritten one too, so it waits for that Put and returns
// its item; no Get gets it meanwhile, and a Get parked before is sent away.
func TestRingPausedPutAcrossShutdownNow(t *testing.T) {
	for _, parked := range []bool{false, true} {
		t.Run(map[bool]string{false: "no Get parked", true: "Get parked"}[parked], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newRingQueue(t, 2)
				if !parked {
					require.NoError(t, q.TryPut(0)) // written ahead of the paused one
				}
				g := pauseClaim(q, true) // still unshared: no goroutine runs yet
				put := pausedPut(q, g, 1)
				var got <-chan getResult
				if parked {
					got = getAsync(context.Background(), q)
					synctest.Wait()
					require.Empty(t, got)
				}
				drained := make(chan []int, 1)
				go func() { drained <- q.ShutdownNow() }()
				synctest.Wait()
				require.Empty(t, drained, "ShutdownNow waits for the item being written")
				assert.Equal(t, 0, q.Len(), "everything is ShutdownNow's")
				_, err := q.TryGet()
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				_, err = q.Get(context.Background())
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				_, err = q.TryGetMany(make([]int, 2))
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				assert.Equal(t, ctxsync.ErrQueueShutDown, q.TryPut(2))
				synctest.Wait()
				require.Empty(t, drained, "a spurious wake-up does not end the wait")

				close(g.resume)
				require.NoError(t, <-put)
				want := []int{0, 1}
				if parked {
					want = []int{1}
					assert.Equal(t, getResult{0, ctxsync.ErrQueueShutDown}, <-got, "the parked Get does not get it")
				}
				assert.Equal(t, want, <-drained)
				assert.Equal(t, 0, q.Len())
				_, err = q.TryGet()
				assert.Equal(t, ctxsync.ErrQueueShutDown, err)
				require.NoError(t, q.Join(cancelled()), "the drained items count as done")
				require.PanicsWithValue(t, taskDonePanic, q.TaskDone)
			})
		})
	}
}

// (d) A TryGet that finds the only item still being written waits for its
// writer, as it would for a lock held by a call in progress (it never
// waits for items): the item is there, since Len counts it and a later
// Put's item would already sit behind it. Once the Put's stamp is down, one
// of a TryGet and a TryGetMany takes it and the other finds the queue
// empty.
func TestRingPausedPutTryGetWaitsForWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, true)
		put := pausedPut(q, g, 1)
		type answer struct {
			items []int
			err   error
		}
		answers := make(chan answer, 2)
		go func() {
			v, err := q.TryGet()
			if err != nil {
				answers <- answer{nil, err}
				return
			}
			answers <- answer{[]int{v}, nil}
		}()
		go func() {
			dst := make([]int, 2)
			n, err := q.TryGetMany(dst)
			if err != nil {
				answers <- answer{nil, err}
				return
			}
			answers <- answer{dst[:n], nil}
		}()
		synctest.Wait()
		require.Empty(t, answers, "both wait for the writer, neither answers empty")
		assert.Equal(t, 1, q.Len())

		close(g.resume)
		require.NoError(t, <-put)
		a, b := <-answers, <-answers
		if a.err != nil {
			a, b = b, a
		}
		assert.Equal(t, answer{[]int{1}, nil}, a, "one takes the item")
		assert.Equal(t, answer{nil, ctxsync.ErrQueueEmpty}, b, "the other finds the queue empty")
		assert.Equal(t, 0, q.Len())
		requireTasks(t, q, 1)
	})
}

// A GetTicket made while the only item is being written waits, and is
// granted that item by the Put once its stamp is down.
func TestRingPausedPutGetTicket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, true)
		put := pausedPut(q, g, 1)
		tk := q.GetTicket()
		require.False(t, isReady(tk), "nothing written yet")
		close(g.resume)
		require.NoError(t, <-put)
		synctest.Wait()
		require.True(t, isReady(tk))
		require.NoError(t, tk.Err())
		assert.Equal(t, 1, tk.Item())
		assert.False(t, tk.Stop())
		assert.Equal(t, 0, q.Len())
		requireTasks(t, q, 1)
	})
}

// (e) A Put that comes to a full queue while the Get that took the item is
// still freeing its slot parks, and the Get, once it has freed the slot,
// lets the Put in.
func TestRingPausedGetPutParksThenGetsIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		got := pausedGet(q, g)
		assert.Equal(t, 0, q.Len(), "the item is claimed out")

		put := putAsync(context.Background(), q, 2)
		synctest.Wait()
		require.Empty(t, put, "the Put parks: the slot is not free yet")
		require.Empty(t, got)

		close(g.resume)
		assert.Equal(t, getResult{1, nil}, <-got)
		require.NoError(t, <-put, "the Get let the parked Put in")
		assert.Equal(t, 1, q.Len())
		assert.Equal(t, []int{2}, drain(t, q))
		requireTasks(t, q, 2)
	})
}

// A PutTicket made while the slot is being freed waits, and is granted when
// the Get has freed it.
func TestRingPausedGetPutTicket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		got := pausedGet(q, g)
		tk := q.PutTicket(2)
		require.False(t, isReady(tk))
		close(g.resume)
		assert.Equal(t, getResult{1, nil}, <-got)
		synctest.Wait()
		require.True(t, isReady(tk))
		require.NoError(t, tk.Err())
		assert.Equal(t, []int{2}, drain(t, q))
		requireTasks(t, q, 2)
	})
}

// (f) A TryPut that finds its slot still being freed by a Get that has
// taken its item waits for that Get, as for a lock (the queue is not full:
// Len says 0), then adds its item. On a queue that is truly full it
// answers ErrQueueFull at once.
func TestRingPausedGetTryPutWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		got := pausedGet(q, g)
		tried := make(chan error, 1)
		go func() { tried <- q.TryPut(2) }()
		synctest.Wait()
		require.Empty(t, tried, "TryPut waits for the slot to be freed, not answering full")
		assert.Equal(t, 0, q.Len())

		close(g.resume)
		assert.Equal(t, getResult{1, nil}, <-got)
		require.NoError(t, <-tried)
		assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(3), "truly full: at once")
		assert.Equal(t, []int{2}, drain(t, q))
		requireTasks(t, q, 2)
	})
}

// A TryPut behind a Put that parked only because a Get is still freeing
// the slot it needs: the queue is not full (the paused Get's item is
// claimed out, the other was taken), so the parked Put's item goes in
// first and then the TryPut's, once the Get has freed its slot. Answering
// ErrQueueFull because a Put is parked would be wrong here: the queue
// never held more than one item (found by the linearizability check in the
// large mode, capacities 2 and 3).
func TestRingPausedGetTryPutBehindParkedPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 2)
		g := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		require.NoError(t, q.TryPut(2))
		got := pausedGet(q, g) // has taken 1; its slot is the next Put's
		v, err := q.TryGet()
		require.NoError(t, err)
		require.Equal(t, 2, v)
		assert.Equal(t, 0, q.Len())

		put := putAsync(context.Background(), q, 3)
		synctest.Wait()
		require.Empty(t, put, "the Put parks: its slot is not free yet")
		tried := make(chan error, 1)
		go func() { tried <- q.TryPut(4) }()
		synctest.Wait()
		require.Empty(t, tried, "TryPut waits for the slot, not answering full")

		close(g.resume)
		assert.Equal(t, getResult{1, nil}, <-got)
		require.NoError(t, <-put)
		require.NoError(t, <-tried, "the queue had room for both")
		assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(5), "truly full now")
		assert.Equal(t, []int{3, 4}, drain(t, q), "the parked Put first")
		requireTasks(t, q, 4)
	})
}

// A Get paused on a full queue across Shutdown: the Put parked for its slot
// is refused, and the Get still returns the item it claimed.
func TestRingPausedGetAcrossShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		got := pausedGet(q, g)
		put := putAsync(context.Background(), q, 2)
		synctest.Wait()
		require.Empty(t, put)
		q.Shutdown()
		assert.Equal(t, ctxsync.ErrQueueShutDown, <-put)
		assert.Nil(t, q.ShutdownNow(), "nothing left for ShutdownNow: the Get claimed it")

		close(g.resume)
		assert.Equal(t, getResult{1, nil}, <-got)
		_, err := q.TryGet()
		assert.Equal(t, ctxsync.ErrQueueShutDown, err)
		requireTasks(t, q, 1)
	})
}

// A GetMany paused after its claim of a batch: the slots of the batch are
// not free yet, so a TryPut that needs one waits for them (the queue is not
// full) and a Put parks; an item behind the batch is another Get's;
// ShutdownNow takes only what is behind the batch; the GetMany, once it
// goes on, returns its whole batch and lets the parked Put in, ahead of the
// waiting TryPut (a TryPut never overtakes a parked Put).
func TestRingPausedGetMany(t *testing.T) {
	for _, shutdownNow := range []bool{false, true} {
		t.Run(map[bool]string{false: "parked Put", true: "ShutdownNow"}[shutdownNow], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newRingQueue(t, 4)
				g := pauseClaim(q, false)
				for i := 1; i <= 3; i++ {
					require.NoError(t, q.TryPut(i))
				}
				many := getManyAsync(context.Background(), q, 3) // a whole batch: a short one is taken under q.mu
				<-g.paused
				assert.Equal(t, 0, q.Len(), "the batch is claimed out")
				require.NoError(t, q.TryPut(4), "the fourth slot is free")
				tried := make(chan error, 1)
				go func() { tried <- q.TryPut(5) }()
				synctest.Wait()
				require.Empty(t, tried, "TryPut waits for the batch's slots to be freed")
				assert.Equal(t, 1, q.Len())

				if shutdownNow {
					assert.Equal(t, []int{4}, q.ShutdownNow(), "the batch is the GetMany's, not ShutdownNow's")
					close(g.resume)
					assert.Equal(t, getManyResult{[]int{1, 2, 3}, nil}, <-many)
					assert.Equal(t, ctxsync.ErrQueueShutDown, <-tried, "the waiting TryPut finds the queue shut down")
					assert.Equal(t, 0, q.Len())
					_, err := q.TryGet()
					assert.Equal(t, ctxsync.ErrQueueShutDown, err)
					requireTasks(t, q, 3) // item 4 was counted done by ShutdownNow
					return
				}

				put := putAsync(context.Background(), q, 6)
				synctest.Wait()
				require.Empty(t, put, "the Put parks")
				v, err := q.TryGet()
				require.NoError(t, err)
				assert.Equal(t, 4, v, "the item behind the batch")
				synctest.Wait()
				require.Empty(t, put, "still no free slot")

				close(g.resume)
				assert.Equal(t, getManyResult{[]int{1, 2, 3}, nil}, <-many)
				require.NoError(t, <-put, "the GetMany let the parked Put in")
				require.NoError(t, <-tried, "then the TryPut")
				assert.Equal(t, []int{6, 5}, drain(t, q))
				requireTasks(t, q, 6)
			})
		})
	}
}

// A Try call that waits for a claim to finish (a Get still freeing the
// slot a TryPut needs, a Put still writing the item a TryGet or TryGetMany
// needs) keeps the ring's flag up, even when another call goes through
// the slow path meanwhile and finds nobody parked in the Gets' or Puts'
// lines: lowered, the claimer would not look in when it is done, and the
// Try call would wait until some unrelated call came by (a lost wake-up;
// synctest reports it as a deadlock).
func TestRingStalledTryCallsKeepTheFlagUp(t *testing.T) {
	t.Run("TryPut", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newRingQueue(t, 1)
			g := pauseClaim(q, false)
			require.NoError(t, q.TryPut(1))
			got := pausedGet(q, g) // has taken 1; its slot is still not free
			tried := make(chan error, 1)
			go func() { tried <- q.TryPut(2) }()
			synctest.Wait()
			require.Empty(t, tried, "TryPut waits for the slot being freed")
			_, err := q.TryGet() // through the slow path: nobody parked in line
			require.Equal(t, ctxsync.ErrQueueEmpty, err)

			close(g.resume)
			assert.Equal(t, getResult{1, nil}, <-got)
			require.NoError(t, <-tried)
			assert.Equal(t, []int{2}, drain(t, q))
		})
	})
	for _, batch := range []bool{false, true} {
		name := map[bool]string{false: "TryGet", true: "TryGetMany"}[batch]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newRingQueue(t, 2)
				g := pauseClaim(q, true)
				put := pausedPut(q, g, 1) // has claimed its place; 1 not yet written
				tried := make(chan []int, 1)
				go func() {
					if batch {
						dst := make([]int, 2)
						n, err := q.TryGetMany(dst)
						assert.NoError(t, err)
						tried <- dst[:n]
						return
					}
					v, err := q.TryGet()
					assert.NoError(t, err)
					tried <- []int{v}
				}()
				synctest.Wait()
				require.Empty(t, tried, "%s waits for the item being written", name)
				require.NoError(t, q.TryPut(2)) // through the slow path: nobody parked in line

				close(g.resume)
				require.NoError(t, <-put)
				// 2 came while the call waited: a batch may take it too.
				taken := <-tried
				assert.Equal(t, []int{1, 2}, append(taken, drain(t, q)...), "1 first, nothing lost")
			})
		})
	}
}

// Randomized stress of the lock-free ring of a bounded FIFO Queue, for the
// race detector: Shutdown and ShutdownNow racing fast-path Puts, TryPuts,
// Gets, TryGets, GetMany, TryGetMany and tickets, and contexts with tiny
// random deadlines ending at the moment of a hand-off. Every item has a
// number of its own, so the checks are exact: an item whose Put returned
// nil is got exactly once or returned by ShutdownNow exactly once; an item
// whose Put failed never appears; each producer's items come out in order;
// Len() never exceeds Cap(); and once every item got has had its TaskDone,
// Join returns.

// ringCapacities are the bounds the ring is tested at: the smallest ones,
// where every claim meets another at the same slot, a capacity that is not
// a power of two (the ring's laps then skip positions), and a large one.
var ringCapacities = []int{1, 2, 3, 4, 1024}

// ringStressRounds is the rounds per capacity at the normal size; the
// large mode (-tags stress) multiplies it by stressScale.
const ringStressRounds = 12

// ringStressOpts chooses what a round races.
type ringStressOpts struct {
	// shutdownMidway makes a goroutine shut the queue down while the
	// traffic is going on, by Shutdown, ShutdownNow or both; otherwise
	// the queue is shut down with ShutdownNow once the producers are done.
	shutdownMidway bool
	// deadlines makes most blocking calls run under a context with a tiny
	// random deadline, so that many end at the moment of a hand-off.
	deadlines bool
}

// ringStressContext returns the context of one blocking call.
func ringStressContext(rng *rand.Rand, opts ringStressOpts) (context.Context, context.CancelFunc) {
	k := rng.IntN(4)
	if opts.deadlines {
		k = rng.IntN(3)
	}
	switch k {
	case 0:
		return context.WithTimeout(context.Background(), time.Duration(rng.IntN(60))*time.Microsecond)
	case 1:
		ctx, cancel := context.WithCancel(context.Background())
		go cancelAfterYields(cancel, rng.IntN(6))
		return ctx, cancel
	case 2:
		return context.WithTimeout(context.Background(), time.Duration(rng.IntN(500))*time.Microsecond)
	}
	return context.WithCancel(context.Background())
}

func TestRingStressShutdownRacingFastPaths(t *testing.T) {
	for _, capacity := range ringCapacities {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			for round := range ringStressRounds * stressScale {
				ringStressRound(t, capacity, uint64(round), ringStressOpts{shutdownMidway: true})
				if t.Failed() {
					t.Fatalf("round %d", round)
				}
			}
		})
	}
}

func TestRingStressCancelAtHandOff(t *testing.T) {
	for _, capacity := range ringCapacities {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			for round := range ringStressRounds * stressScale {
				ringStressRound(t, capacity, uint64(round)+1<<32, ringStressOpts{deadlines: true})
				if t.Failed() {
					t.Fatalf("round %d", round)
				}
			}
		})
	}
}

func ringStressRound(t *testing.T, capacity int, seed uint64, opts ringStressOpts) {
	const producers, consumers, perProducer = 3, 3, 40
	const total = producers * perProducer
	q := ctxsync.NewQueue[int](capacity)
	require.True(t, ctxsync.UsesRing(q))
	require.Equal(t, capacity, q.Cap())

	putOK := make([]bool, total) // each written by the producer of the item only
	got := make([]atomic.Int32, total)
	drained := make([]atomic.Int32, total)
	var attempts atomic.Int64

	// The sampler: Len() is never above Cap(), nor below 0.
	var stop atomic.Bool
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for !stop.Load() {
			if n := q.Len(); n < 0 || n > capacity {
				t.Errorf("Len() = %d with Cap() = %d", n, capacity)
				return
			}
			if q.Full() && q.Len() > capacity {
				t.Errorf("Full with Len() = %d", q.Len())
			}
			runtime.Gosched()
		}
	})

	drain := func(items []int) {
		last := [producers]int{-1, -1, -1}
		for _, v := range items {
			if v < 0 || v >= total {
				t.Errorf("ShutdownNow returned %d, never put", v)
				continue
			}
			drained[v].Add(1)
			p := v / perProducer
			if v <= last[p] {
				t.Errorf("ShutdownNow returned producer %d's items out of order: %v", p, items)
			}
			last[p] = v
		}
	}

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			for i := range perProducer {
				item := p*perProducer + i
				attempts.Add(1)
				var err error
				switch rng.IntN(3) {
				case 0:
					ctx, cancel := ringStressContext(rng, opts)
					err = q.Put(ctx, item)
					cancel()
				case 1:
					err = q.TryPut(item)
				default:
					if !awaitTicket(rng, q.PutTicket(item)) {
						err = ctxsync.ErrTicketStopped
					}
				}
				// Each item is tried once: one whose Put failed must
				// never come out.
				putOK[item] = err == nil
				if err == ctxsync.ErrQueueShutDown {
					return
				}
			}
		})
	}

	for c := range consumers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)+100))
			last := [producers]int{-1, -1, -1}
			dst := make([]int, 1+rng.IntN(2*capacity+1))
			take := func(items []int) {
				for _, v := range items {
					if v < 0 || v >= total {
						t.Errorf("got %d, never put", v)
						continue
					}
					got[v].Add(1)
					p := v / perProducer
					if v <= last[p] {
						t.Errorf("producer %d's item %d got after %d", p, v, last[p])
					}
					last[p] = v
					q.TaskDone()
				}
			}
			for {
				var err error
				switch rng.IntN(5) {
				case 0:
					ctx, cancel := ringStressContext(rng, opts)
					var v int
					v, err = q.Get(ctx)
					cancel()
					if err == nil {
						take([]int{v})
					}
				case 1:
					var v int
					v, err = q.TryGet()
					if err == nil {
						take([]int{v})
					}
				case 2:
					ctx, cancel := ringStressContext(rng, opts)
					var n int
					n, err = q.GetMany(ctx, dst[:1+rng.IntN(len(dst))])
					cancel()
					if err == nil {
						assert.Positive(t, n)
						take(dst[:n])
					} else {
						assert.Zero(t, n, "a failed GetMany took nothing")
					}
				case 3:
					var n int
					n, err = q.TryGetMany(dst)
					if err == nil {
						take(dst[:n])
					} else {
						assert.Zero(t, n)
					}
				default:
					g := q.GetTicket()
					if awaitTicket(rng, g) {
						take([]int{g.Item()})
					} else {
						err = g.Err()
					}
				}
				switch err {
				case ctxsync.ErrQueueShutDown:
					return
				case ctxsync.ErrQueueEmpty:
					runtime.Gosched()
				}
			}
		})
	}

	rng := rand.New(rand.NewPCG(seed, 999))
	if opts.shutdownMidway {
		at := int64(rng.IntN(total + 1))
		kind := rng.IntN(4)
		wg.Go(func() {
			for attempts.Load() < at {
				runtime.Gosched()
			}
			switch kind {
			case 0:
				q.Shutdown()
			case 1:
				drain(q.ShutdownNow())
			case 2:
				q.Shutdown()
				drain(q.ShutdownNow())
			default:
				drain(q.ShutdownNow())
				q.Shutdown()
			}
		})
	} else {
		wg.Go(func() {
			for attempts.Load() < total {
				runtime.Gosched()
			}
			// The producers' last calls may still be going on: racing
			// them is the point.
			drain(q.ShutdownNow())
		})
	}
	wg.Wait()
	stop.Store(true)
	sampler.Wait()

	var lost, doubled, ghosts []int
	for v := range total {
		n := got[v].Load() + drained[v].Load()
		switch {
		case putOK[v] && n == 0:
			lost = append(lost, v)
		case n > 1:
			doubled = append(doubled, v)
		case !putOK[v] && n != 0:
			ghosts = append(ghosts, v)
		}
	}
	assert.Empty(t, lost, "items put but never got nor returned by ShutdownNow")
	assert.Empty(t, doubled, "items that came out twice")
	assert.Empty(t, ghosts, "items whose Put failed but came out")
	assert.Equal(t, 0, q.Len())
	assert.Equal(t, ctxsync.ErrQueueShutDown, q.TryPut(-1))
	_, err := q.TryGet()
	assert.Equal(t, ctxsync.ErrQueueShutDown, err)
	// The remaining drain, if the round shut down gracefully and the
	// consumers left first, cannot happen: they leave only once the queue
	// is shut down and empty. So every task is done or was drained.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, q.Join(ctx), "every item got had its TaskDone, every other was drained")
	require.PanicsWithValue(t, taskDonePanic, q.TaskDone)
}
