package ctxsync_test

// Deterministic schedules of the lock-free ring of a bounded FIFO Queue
// (queue_ring.go) around a fast-path claim that is made but not yet
// published: a Put between its claim of a tail position and the stamp that
// writes its item, a Get or GetMany between its claim of head and the stamp
// that frees the slot. The claim hook (SetClaimHook, export_ring_test.go)
// stops the claimer there, on a channel made in the synctest bubble, so the
// claimer is durably blocked while the test raises the slow-path flag under
// it (a parked caller, a Shutdown, a ShutdownNow) and then lets it go on.

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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
