package ctxsync_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

var queueKinds = []struct {
	name  string
	make  func(maxsize int) *ctxsync.Queue[int]
	order func(in []int) []int // the order Get returns items put as in
}{
	{"FIFO", ctxsync.NewQueue[int], func(in []int) []int { return in }},
	// A bounded FIFO queue takes the lock-free ring; a test asking for an
	// unbounded queue gets the largest ring, which its few items never
	// fill, so every shared test also runs on the ring path.
	{"FIFO-ring", func(maxsize int) *ctxsync.Queue[int] {
		if maxsize <= 0 {
			maxsize = 1 << 16
		}
		return ctxsync.NewQueue[int](maxsize)
	}, func(in []int) []int { return in }},
	{"LIFO", ctxsync.NewLifoQueue[int], func(in []int) []int {
		out := append([]int(nil), in...)
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return out
	}},
	{"Priority", func(maxsize int) *ctxsync.Queue[int] {
		return ctxsync.NewPriorityQueue(maxsize, cmp.Less[int])
	}, func(in []int) []int {
		out := append([]int(nil), in...)
		for i := 1; i < len(out); i++ {
			for j := i; j > 0 && out[j] < out[j-1]; j-- {
				out[j], out[j-1] = out[j-1], out[j]
			}
		}
		return out
	}},
}

func forEachQueue(t *testing.T, test func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], order func([]int) []int)) {
	for _, kind := range queueKinds {
		t.Run(kind.name, func(t *testing.T) { test(t, kind.make, kind.order) })
	}
}

type getResult struct {
	item int
	err  error
}

func getAsync(ctx context.Context, q *ctxsync.Queue[int]) <-chan getResult {
	done := make(chan getResult, 1)
	go func() {
		item, err := q.Get(ctx)
		done <- getResult{item, err}
	}()
	return done
}

func putAsync(ctx context.Context, q *ctxsync.Queue[int], item int) <-chan error {
	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, item) }()
	return done
}

func drain(t *testing.T, q *ctxsync.Queue[int]) []int {
	var out []int
	for !q.Empty() {
		item, err := q.TryGet()
		require.NoError(t, err)
		out = append(out, item)
	}
	return out
}

func TestQueueZeroValueIsUnboundedFIFO(t *testing.T) {
	var q ctxsync.Queue[string]
	assert.Equal(t, 0, q.Cap())
	for _, s := range []string{"a", "b", "c"} {
		require.NoError(t, q.TryPut(s))
	}
	assert.False(t, q.Full())
	assert.Equal(t, 3, q.Len())
	for _, want := range []string{"a", "b", "c"} {
		got, err := q.Get(context.Background())
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	assert.True(t, q.Empty())
}

func TestQueueOrders(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], order func([]int) []int) {
		in := []int{5, 3, 8, 1, 9, 2, 7, 3, 100, 0, 4, 6, 11, 12, 13, 14, 15} // more than the first ring size
		q := newQueue(0)
		for _, v := range in {
			require.NoError(t, q.Put(context.Background(), v))
		}
		assert.Equal(t, order(in), drain(t, q))
	})
}

// Priority items that compare equal leave in the order they came.
func TestPriorityQueueIsStable(t *testing.T) {
	type job struct {
		prio int
		name string
	}
	q := ctxsync.NewPriorityQueue(0, func(a, b job) bool { return a.prio < b.prio })
	for i, p := range []int{2, 1, 2, 1, 0, 2, 1} {
		require.NoError(t, q.TryPut(job{p, string(rune('a' + i))}))
	}
	var names string
	for !q.Empty() {
		j, err := q.TryGet()
		require.NoError(t, err)
		names += j.name
	}
	assert.Equal(t, "ebdgacf", names)
}

func TestNewPriorityQueueNilLessPanics(t *testing.T) {
	assert.PanicsWithValue(t, "ctxsync: NewPriorityQueue with nil less function", func() {
		ctxsync.NewPriorityQueue[int](0, nil)
	})
}

func TestQueueBoundsAndNowaitErrors(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		q := newQueue(2)
		assert.Equal(t, 2, q.Cap())
		_, err := q.TryGet()
		assert.Equal(t, ctxsync.ErrQueueEmpty, err)
		require.NoError(t, q.TryPut(1))
		assert.False(t, q.Full())
		require.NoError(t, q.TryPut(2))
		assert.True(t, q.Full())
		assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(3))
		assert.Equal(t, 2, q.Len())
		if ctxsync.UsesRing(newQueue(0)) {
			return // FIFO-ring: "unbounded" is its largest ring
		}
		for _, maxsize := range []int{0, -1} {
			assert.Equal(t, 0, newQueue(maxsize).Cap())
			assert.False(t, newQueue(maxsize).Full())
		}
	})
}

// R1: a done context fails even when the call could succeed at once.
func TestQueueDoneContext(t *testing.T) {
	q := ctxsync.NewQueue[int](1)
	assert.Equal(t, context.Canceled, q.Put(cancelled(), 1))
	assert.True(t, q.Empty())
	require.NoError(t, q.TryPut(1))
	_, err := q.Get(cancelled())
	assert.Equal(t, context.Canceled, err)
	assert.Equal(t, 1, q.Len())
}

// Blocked Puts complete in the order they started, and a TryPut never slips
// in ahead of them.
func TestQueueBlockedPutsInOrder(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(1)
			require.NoError(t, q.Put(context.Background(), 0))
			var puts []<-chan error
			for i := 1; i <= 3; i++ {
				puts = append(puts, putAsync(context.Background(), q, i))
				synctest.Wait()
			}
			assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(99))
			for i := range 4 {
				item, err := q.Get(context.Background())
				require.NoError(t, err)
				assert.Equal(t, i, item)
				if i < 3 {
					require.NoError(t, <-puts[i], "the room went straight to the longest waiter")
					assert.Equal(t, 1, q.Len())
					assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(99), "TryPut must not slip in")
				}
			}
			assert.True(t, q.Empty())
		})
	})
}

// Blocked Gets receive items in the order they started.
func TestQueueBlockedGetsInOrder(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(0)
			var gets []<-chan getResult
			for range 3 {
				gets = append(gets, getAsync(context.Background(), q))
				synctest.Wait()
			}
			for i := range 3 {
				require.NoError(t, q.TryPut(10+i))
				assert.Equal(t, getResult{10 + i, nil}, <-gets[i])
				_, err := q.TryGet()
				assert.Equal(t, ctxsync.ErrQueueEmpty, err, "the item was handed over, not stored")
			}
		})
	})
}

func TestQueueCancelledPutAndGetChangeNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		require.NoError(t, q.Put(context.Background(), 1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.Equal(t, context.DeadlineExceeded, q.Put(ctx, 2))
		next := putAsync(context.Background(), q, 3)
		synctest.Wait()

		item, err := q.Get(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, item)
		require.NoError(t, <-next)
		assert.Equal(t, []int{3}, drain(t, q), "the cancelled item was never added")

		ctx2, cancel2 := context.WithCancel(context.Background())
		got := getAsync(ctx2, q)
		synctest.Wait()
		cancel2()
		assert.Equal(t, getResult{0, context.Canceled}, <-got)
		require.NoError(t, q.TryPut(4))
		assert.Equal(t, []int{4}, drain(t, q), "the cancelled Get took nothing")
	})
}

// A hand-off is kept even if the receiver's context ends at that moment.
func TestQueueHandOffKeptOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		ctx, cancel := context.WithCancel(context.Background())
		got := getAsync(ctx, q)
		synctest.Wait()
		require.NoError(t, q.TryPut(7))
		cancel()
		assert.Equal(t, getResult{7, nil}, <-got)

		require.NoError(t, q.TryPut(1))
		ctx2, cancel2 := context.WithCancel(context.Background())
		put := putAsync(ctx2, q, 2)
		synctest.Wait()
		_, err := q.TryGet()
		require.NoError(t, err)
		cancel2()
		assert.NoError(t, <-put)
		assert.Equal(t, []int{2}, drain(t, q))
	})
}

func TestQueueJoinAndTaskDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		assert.NoError(t, q.Join(cancelled()), "nothing unfinished: nil whatever the context")
		require.NoError(t, q.TryPut(1))
		require.NoError(t, q.TryPut(2))
		assert.Equal(t, context.Canceled, q.Join(cancelled()))

		joined := make(chan error, 1)
		go func() { joined <- q.Join(context.Background()) }()
		for range 2 {
			_, err := q.TryGet()
			require.NoError(t, err)
		}
		synctest.Wait()
		assert.Empty(t, joined, "items fetched but not done")
		q.TaskDone()
		synctest.Wait()
		assert.Empty(t, joined)
		q.TaskDone()
		assert.NoError(t, <-joined)

		assert.PanicsWithValue(t, "ctxsync: TaskDone called more times than there were items", q.TaskDone)
		assert.NoError(t, q.Join(context.Background()))
	})
}

func TestQueueShutdownGraceful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](2)
		require.NoError(t, q.TryPut(1))
		require.NoError(t, q.TryPut(2))
		blockedPut := putAsync(context.Background(), q, 3)
		synctest.Wait()

		q.Shutdown()
		assert.Equal(t, ctxsync.ErrQueueShutDown, <-blockedPut)
		assert.Equal(t, ctxsync.ErrQueueShutDown, q.Put(context.Background(), 4))
		assert.Equal(t, ctxsync.ErrQueueShutDown, q.Put(cancelled(), 4), "R10: shutdown wins over the context")
		assert.Equal(t, ctxsync.ErrQueueShutDown, q.TryPut(4))
		assert.Equal(t, 2, q.Len(), "the blocked Put's item was not added")

		_, err := q.Get(cancelled())
		assert.Equal(t, context.Canceled, err, "items left: a done context still fails (R1)")
		assert.Equal(t, []int{1, 2}, drain(t, q))
		_, err = q.Get(context.Background())
		assert.Equal(t, ctxsync.ErrQueueShutDown, err)
		_, err = q.Get(cancelled())
		assert.Equal(t, ctxsync.ErrQueueShutDown, err, "R10")
		_, err = q.TryGet()
		assert.Equal(t, ctxsync.ErrQueueShutDown, err)
		q.Shutdown() // twice does no harm

		// Join is unaffected: two items were fetched, none done.
		assert.Equal(t, context.Canceled, q.Join(cancelled()))
		q.TaskDone()
		q.TaskDone()
		assert.NoError(t, q.Join(context.Background()))
	})
}

func TestQueueShutdownWakesBlockedGets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		got := getAsync(context.Background(), q)
		synctest.Wait()
		q.Shutdown()
		assert.Equal(t, getResult{0, ctxsync.ErrQueueShutDown}, <-got)
	})
}

func TestQueueShutdownNow(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], order func([]int) []int) {
		synctest.Test(t, func(t *testing.T) {
			in := []int{4, 1, 3, 2}
			q := newQueue(len(in))
			require.NoError(t, q.TryPut(50))
			first, err := q.TryGet() // fetched, not yet done
			require.NoError(t, err)
			assert.Equal(t, 50, first)
			for _, v := range in {
				require.NoError(t, q.TryPut(v))
			}
			blockedPut := putAsync(context.Background(), q, 9)
			synctest.Wait()
			joined := make(chan error, 1)
			go func() { joined <- q.Join(context.Background()) }()
			synctest.Wait()

			left := q.ShutdownNow()
			assert.Equal(t, order(in), left, "in the order Get would have returned them")
			assert.Equal(t, ctxsync.ErrQueueShutDown, <-blockedPut)
			assert.True(t, q.Empty())
			synctest.Wait()
			assert.Empty(t, joined, "the fetched item is still unfinished")
			q.TaskDone()
			assert.NoError(t, <-joined)
			assert.Nil(t, q.ShutdownNow(), "nothing left")
			assert.Panics(t, q.TaskDone, "the count never goes below zero")
		})
	})
}

func TestQueueShutdownNowAfterShutdownDrains(t *testing.T) {
	q := ctxsync.NewQueue[int](0)
	require.NoError(t, q.TryPut(1))
	require.NoError(t, q.TryPut(2))
	q.Shutdown()
	assert.Equal(t, []int{1, 2}, q.ShutdownNow())
	assert.NoError(t, q.Join(context.Background()))
}

// R8: in steady state, calls that do not block allocate nothing.
func TestQueueNonBlockingCallsDoNotAllocate(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		q := newQueue(64)
		ctx := context.Background()
		for i := range 32 { // warm the store up
			require.NoError(t, q.TryPut(i))
		}
		for range drain(t, q) {
			q.TaskDone()
		}
		allocs := testing.AllocsPerRun(100, func() {
			for i := range 16 {
				_ = q.Put(ctx, i)
				_ = q.TryPut(i)
			}
			for range 16 {
				_, _ = q.Get(ctx)
				_, _ = q.TryGet()
				q.TaskDone()
				q.TaskDone()
			}
			_ = q.Join(ctx)
			_ = q.Len()
			_ = q.Full()
		})
		assert.Zero(t, allocs)
	})
}

// P producers and C consumers under random cancellations and Try calls:
// every item is delivered exactly once, each consumer sees each producer's
// items in order (FIFO), and Join returns once all are done.
//
// The FIFO queue runs at the capacities of its ring path (ringCapacities)
// and at 8, and unbounded (the mutex path).
func TestQueueStressProducersConsumers(t *testing.T) {
	for _, capacity := range append(slices.Clone(ringCapacities), 8, 0) {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			q := ctxsync.NewQueue[[2]int](capacity)
			require.Equal(t, capacity > 0, ctxsync.UsesRing(q))
			queueStressProducersConsumers(t, q)
		})
	}
}

func queueStressProducersConsumers(t *testing.T, q *ctxsync.Queue[[2]int]) {
	const producers, consumers, perProducer = 4, 4, 500 * stressScale
	var mu sync.Mutex
	seen := make(map[[2]int]int)

	var cw sync.WaitGroup
	for c := range consumers {
		cw.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			last := [producers]int{-1, -1, -1, -1}
			for {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancelAfterYields(cancel, rng.IntN(8))
				}
				var item [2]int
				var err error
				if rng.IntN(4) == 0 {
					item, err = q.TryGet()
				} else {
					item, err = q.Get(ctx)
				}
				cancel()
				switch err {
				case nil:
					p, s := item[0], item[1]
					assert.Greater(t, s, last[p], "producer %d's items out of order", p)
					last[p] = s
					mu.Lock()
					seen[item]++
					mu.Unlock()
					q.TaskDone()
				case ctxsync.ErrQueueShutDown:
					return
				case ctxsync.ErrQueueEmpty, context.Canceled:
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
		})
	}
	var pw sync.WaitGroup
	for p := range producers {
		pw.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 8))
			for s := 0; s < perProducer; {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancelAfterYields(cancel, rng.IntN(8))
				}
				var err error
				if rng.IntN(4) == 0 {
					err = q.TryPut([2]int{p, s})
				} else {
					err = q.Put(ctx, [2]int{p, s})
				}
				cancel()
				if err == nil {
					s++ // else the same item again: a failed Put added nothing
				}
			}
		})
	}
	pw.Wait()
	require.NoError(t, q.Join(context.Background()))
	q.Shutdown()
	cw.Wait()
	assert.Len(t, seen, producers*perProducer)
	for item, n := range seen {
		if n != 1 {
			t.Errorf("item %v delivered %d times", item, n)
		}
	}
}

// ShutdownNow counts the items it removes as done, but the unfinished
// count stops at zero: TaskDone may already have come for items that were
// still queued.
func TestQueueShutdownNowClampsUnfinished(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], order func([]int) []int) {
		q := newQueue(0)
		for _, v := range []int{1, 2, 3} {
			require.NoError(t, q.TryPut(v))
		}
		first, err := q.TryGet()
		require.NoError(t, err)
		for range 3 {
			q.TaskDone() // one for first, two early for items still queued
		}
		left := q.ShutdownNow()
		assert.Len(t, left, 2)
		assert.NotContains(t, left, first)
		assert.NoError(t, q.Join(cancelled()), "nothing unfinished: Join returns at once")
		assert.PanicsWithValue(t, "ctxsync: TaskDone called more times than there were items", q.TaskDone)
	})
}

// A Join blocked on items still queued returns once ShutdownNow removes
// them, since that brings the unfinished count to zero.
func TestQueueShutdownNowWakesJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		require.NoError(t, q.TryPut(1))
		require.NoError(t, q.TryPut(2))
		// Cancelled on the way out, so a Join that was never woken does
		// not outlive the test.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		joined := make(chan error, 1)
		go func() { joined <- q.Join(ctx) }()
		synctest.Wait()
		require.Empty(t, joined)

		assert.Equal(t, []int{1, 2}, q.ShutdownNow())
		synctest.Wait()
		select {
		case err := <-joined:
			assert.NoError(t, err)
		default:
			t.Error("Join still blocked after ShutdownNow removed the last unfinished items")
		}
	})
}

// R10 on every kind of queue, bounded and not: after a Shutdown, a Put with
// a done context reports the shutdown, also when the queue has room, and
// so do GetMany and Get once it is empty.
func TestQueueShutdownWinsOverDoneContext(t *testing.T) {
	for _, maxsize := range []int{0, 3} {
		forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
			q := newQueue(maxsize)
			require.NoError(t, q.Put(context.Background(), 1))
			q.Shutdown()
			assert.Equal(t, ctxsync.ErrQueueShutDown, q.Put(cancelled(), 2), "Put, maxsize %d", maxsize)
			_, err := q.Get(cancelled())
			assert.Equal(t, context.Canceled, err, "an item is left: R1")
			assert.Equal(t, []int{1}, drain(t, q))
			_, err = q.Get(cancelled())
			assert.Equal(t, ctxsync.ErrQueueShutDown, err, "Get on an empty shut-down queue")
			_, err = q.GetMany(cancelled(), make([]int, 2))
			assert.Equal(t, ctxsync.ErrQueueShutDown, err, "GetMany on an empty shut-down queue")
		})
	}
}
