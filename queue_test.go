package ctxsync_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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

// Deterministic interleavings: inside a testing/synctest bubble a parked
// goroutine stays parked until the test lets it run, so "the context ends
// at the instant of a hand-off" is an exact schedule, not a hope.

func TestInterleaveQueueCancelThenPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		ctx, cancel := context.WithCancel(context.Background())
		got := getAsync(ctx, q)
		synctest.Wait()
		cancel()
		require.NoError(t, q.TryPut(7))
		assert.Equal(t, getResult{0, context.Canceled}, <-got)
		assert.Equal(t, 1, q.Len(), "the item was stored, not handed to a leaving Get")
	})
}

func TestInterleaveQueuePutThenCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		ctx, cancel := context.WithCancel(context.Background())
		got := getAsync(ctx, q)
		synctest.Wait()
		require.NoError(t, q.TryPut(7))
		cancel()
		assert.Equal(t, getResult{7, nil}, <-got, "the hand-off is kept")
		assert.True(t, q.Empty())
	})
}

// Shutdown while Gets wait on an empty queue: all of them wake with
// ErrQueueShutDown.
func TestInterleaveShutdownWithBlockedGets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		var gets []<-chan getResult
		for range 3 {
			gets = append(gets, getAsync(context.Background(), q))
		}
		synctest.Wait()
		q.Shutdown()
		for _, g := range gets {
			assert.Equal(t, getResult{0, ctxsync.ErrQueueShutDown}, <-g)
		}
	})
}

// Shutdown while Puts wait on a full queue: the Puts fail without adding,
// and Gets drain what was there before failing too.
func TestInterleaveShutdownWithBlockedPuts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		require.NoError(t, q.TryPut(1))
		var puts []<-chan error
		for i := range 3 {
			puts = append(puts, putAsync(context.Background(), q, 10+i))
		}
		synctest.Wait()
		q.Shutdown()
		for _, p := range puts {
			assert.Equal(t, ctxsync.ErrQueueShutDown, <-p)
		}
		assert.Equal(t, getResult{1, nil}, <-getAsync(context.Background(), q))
		assert.Equal(t, getResult{0, ctxsync.ErrQueueShutDown}, <-getAsync(context.Background(), q))
	})
}

// PutTicket and GetTicket.

// With room and nobody waiting, a PutTicket adds its item before it is
// returned; with an item there, a GetTicket takes it before it is
// returned, in the order Get would, and the item needs its TaskDone.
func TestQueueTicketsGrantedAtOnce(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], order func([]int) []int) {
		q := newQueue(3)
		for _, item := range []int{2, 1, 3} {
			tk := q.PutTicket(item)
			require.True(t, isReady(tk), "added before PutTicket returns")
			require.NoError(t, tk.Err())
			require.False(t, tk.Stop())
		}
		assert.Equal(t, 3, q.Len())
		var got []int
		for range 3 {
			g := q.GetTicket()
			require.True(t, isReady(g), "taken before GetTicket returns")
			require.NoError(t, g.Err())
			require.False(t, g.Stop())
			got = append(got, g.Item())
		}
		assert.Equal(t, order([]int{2, 1, 3}), got)
		assert.Equal(t, context.Canceled, q.Join(cancelled()), "three fetched items owe their TaskDone")
		for range 3 {
			q.TaskDone()
		}
		assert.NoError(t, q.Join(cancelled()))
	})
}

// A waiting GetTicket is handed the next Put's item straight away: the
// grant is complete when Put returns.
func TestGetTicketHandedItemByPut(t *testing.T) {
	var q ctxsync.Queue[int]
	g := q.GetTicket()
	require.False(t, isReady(g))
	assert.NoError(t, g.Err(), "nil while waiting")
	assert.Zero(t, g.Item(), "no item before Ready")
	require.NoError(t, q.Put(context.Background(), 7))
	require.True(t, isReady(g), "handed over when Put returns")
	assert.NoError(t, g.Err())
	assert.Equal(t, 7, g.Item())
	assert.False(t, g.Stop(), "the hand-off is kept")
	assert.Equal(t, 7, g.Item())
	assert.Zero(t, q.Len(), "straight to the ticket, not into the store")
	_, err := q.TryGet()
	assert.Equal(t, ctxsync.ErrQueueEmpty, err)
	q.TaskDone()
}

// A waiting PutTicket stands in line with the blocked Puts: TryPut does
// not overtake it, and the Get that makes room takes its item in; the
// grant is complete when Get returns.
func TestPutTicketWaitsForRoom(t *testing.T) {
	q := ctxsync.NewQueue[int](1)
	require.NoError(t, q.TryPut(1))
	p := q.PutTicket(2)
	require.False(t, isReady(p))
	assert.Equal(t, ctxsync.ErrQueueFull, q.TryPut(3))
	item, err := q.Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, item)
	require.True(t, isReady(p), "taken in when Get returns")
	require.NoError(t, p.Err())
	assert.False(t, p.Stop())
	assert.Equal(t, []int{2}, drain(t, q))
	q.TaskDone()
	q.TaskDone()
	assert.NoError(t, q.Join(cancelled()))
}

// Stop of a waiting ticket has no effect at all: a stopped PutTicket's
// item is never added, and a stopped GetTicket takes nothing; what would
// have been theirs goes to the next in line.
func TestQueueTicketsStopWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		g := q.GetTicket()
		next := getAsync(context.Background(), q)
		synctest.Wait()
		require.True(t, g.Stop())
		assertStopped(t, g)
		require.NoError(t, q.TryPut(5))
		assert.Equal(t, getResult{5, nil}, <-next, "the item went to the next Get")
		assert.Zero(t, g.Item())
		q.TaskDone()

		require.NoError(t, q.TryPut(1))
		p := q.PutTicket(2)
		later := putAsync(context.Background(), q, 3)
		synctest.Wait()
		require.True(t, p.Stop())
		assertStopped(t, p)
		item, err := q.TryGet()
		require.NoError(t, err)
		assert.Equal(t, 1, item)
		require.NoError(t, <-later, "the room went to the next Put")
		assert.Equal(t, []int{3}, drain(t, q), "the stopped ticket's item was never added")
		q.TaskDone()
		q.TaskDone()
		assert.NoError(t, q.Join(cancelled()), "the stopped Put counted no task")
	})
}

// ErrQueueShutDown decisions: at once on a shut-down queue (a Get only
// once it is also empty), and for waiting tickets when Shutdown or
// ShutdownNow comes. Stop afterwards returns false and changes nothing.
func TestQueueTicketsShutDown(t *testing.T) {
	t.Run("Shutdown", func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		require.NoError(t, q.TryPut(1))
		p := q.PutTicket(2)
		var empty ctxsync.Queue[int]
		g := empty.GetTicket()
		q.Shutdown()
		empty.Shutdown()
		for _, tk := range []ticketLike{p, g} {
			require.True(t, isReady(tk), "decided by Shutdown")
			assert.Equal(t, ctxsync.ErrQueueShutDown, tk.Err())
			assert.False(t, tk.Stop())
			assert.Equal(t, ctxsync.ErrQueueShutDown, tk.Err())
		}
		assert.Zero(t, g.Item())
		assert.Equal(t, []int{1}, drain(t, q), "the refused Put added nothing")

		late := q.PutTicket(3)
		require.True(t, isReady(late), "decided before it is returned")
		assert.Equal(t, ctxsync.ErrQueueShutDown, late.Err())
		lateGet := q.GetTicket()
		require.True(t, isReady(lateGet))
		assert.Equal(t, ctxsync.ErrQueueShutDown, lateGet.Err())
	})
	t.Run("GetDrainsFirst", func(t *testing.T) {
		var q ctxsync.Queue[int]
		require.NoError(t, q.TryPut(4))
		waiting := ctxsync.NewQueue[int](0)
		wg := waiting.GetTicket()
		require.NoError(t, waiting.TryPut(8)) // wg is handed 8
		q.Shutdown()
		g := q.GetTicket()
		require.True(t, isReady(g), "a shut-down queue still hands out what it holds")
		require.NoError(t, g.Err())
		assert.Equal(t, 4, g.Item())
		waiting.Shutdown()
		assert.NoError(t, wg.Err(), "a decided ticket stays decided")
		assert.Equal(t, 8, wg.Item())
	})
	t.Run("ShutdownNow", func(t *testing.T) {
		q := ctxsync.NewQueue[int](1)
		var empty ctxsync.Queue[int]
		require.NoError(t, q.TryPut(1))
		p := q.PutTicket(2)
		g := empty.GetTicket()
		assert.Equal(t, []int{1}, q.ShutdownNow())
		assert.Nil(t, empty.ShutdownNow())
		assert.Equal(t, ctxsync.ErrQueueShutDown, p.Err())
		assert.Equal(t, ctxsync.ErrQueueShutDown, g.Err())
		assert.True(t, isReady(p))
		assert.True(t, isReady(g))
		assert.NoError(t, q.Join(cancelled()))
	})
}

// Tickets and blocked calls stand in one line per kind: Gets and
// GetTickets receive items in the order they joined, Puts and PutTickets
// complete in the order they joined.
func TestQueueTicketsMixedWithCallsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var q ctxsync.Queue[int]
		var gets [6]<-chan getResult
		var tickets [6]*ctxsync.GetTicket[int]
		for i := range 6 {
			if i%2 == 0 {
				gets[i] = getAsync(context.Background(), &q)
				synctest.Wait() // parked before the next joins
				continue
			}
			tickets[i] = q.GetTicket()
		}
		for i := range 6 {
			require.NoError(t, q.Put(context.Background(), 100+i))
		}
		synctest.Wait()
		for i := range 6 {
			if tk := tickets[i]; tk != nil {
				require.True(t, isReady(tk))
				assert.Equal(t, 100+i, tk.Item(), "ticket %d", i)
			} else {
				assert.Equal(t, getResult{100 + i, nil}, <-gets[i], "Get %d", i)
			}
			q.TaskDone()
		}

		b := ctxsync.NewQueue[int](1)
		require.NoError(t, b.TryPut(-1))
		var puts [6]<-chan error
		var pts [6]*ctxsync.Ticket
		for i := range 6 {
			if i%2 == 1 {
				puts[i] = putAsync(context.Background(), b, i)
				synctest.Wait()
				continue
			}
			pts[i] = b.PutTicket(i)
		}
		var got []int
		for range 7 {
			item, err := b.Get(context.Background())
			require.NoError(t, err)
			got = append(got, item)
			b.TaskDone()
		}
		assert.Equal(t, []int{-1, 0, 1, 2, 3, 4, 5}, got)
		for i := range 6 {
			if pts[i] != nil {
				assert.NoError(t, pts[i].Err())
			} else {
				assert.NoError(t, <-puts[i])
			}
		}
	})
}

// Stop racing a grant, staged in both orders, for both kinds of ticket,
// with a blocked call behind the ticket: the grant first, and Stop returns
// false with the caller holding it; Stop first, and what the ticket would
// have had goes to the call behind it.
func TestQueueTicketsStopRacingGrant(t *testing.T) {
	t.Run("GetGrantFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var q ctxsync.Queue[int]
			g := q.GetTicket()
			next := getAsync(context.Background(), &q)
			synctest.Wait()
			require.NoError(t, q.TryPut(1)) // the grant
			if g.Stop() || g.Err() != nil {
				t.Fatal("the item was handed over before Stop")
			}
			assert.Equal(t, 1, g.Item(), "the caller holds the item")
			q.TaskDone()
			require.NoError(t, q.TryPut(2))
			assert.Equal(t, getResult{2, nil}, <-next)
			q.TaskDone()
		})
	})
	t.Run("GetStopFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var q ctxsync.Queue[int]
			g := q.GetTicket()
			next := getAsync(context.Background(), &q)
			synctest.Wait()
			require.True(t, g.Stop())
			require.NoError(t, q.TryPut(1))
			assert.Equal(t, getResult{1, nil}, <-next, "the item went to the Get behind")
			assertStopped(t, g)
			q.TaskDone()
		})
	})
	t.Run("PutGrantFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := ctxsync.NewQueue[int](1)
			require.NoError(t, q.TryPut(1))
			p := q.PutTicket(2)
			next := putAsync(context.Background(), q, 3)
			synctest.Wait()
			_, err := q.TryGet() // the grant: 2 is taken in
			require.NoError(t, err)
			require.False(t, p.Stop())
			require.NoError(t, p.Err(), "the Put is done")
			_, err = q.TryGet()
			require.NoError(t, err)
			require.NoError(t, <-next)
			assert.Equal(t, []int{3}, drain(t, q))
		})
	})
	t.Run("PutStopFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := ctxsync.NewQueue[int](1)
			require.NoError(t, q.TryPut(1))
			p := q.PutTicket(2)
			next := putAsync(context.Background(), q, 3)
			synctest.Wait()
			require.True(t, p.Stop())
			_, err := q.TryGet()
			require.NoError(t, err)
			require.NoError(t, <-next, "the room went to the Put behind")
			assert.Equal(t, []int{3}, drain(t, q), "the stopped item was never added")
			assertStopped(t, p)
		})
	})
}

// Take from whichever of two queues has an item first, in one select with
// ctx.Done() and a timer.
func TestGetTicketsInOneSelect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var a, b ctxsync.Queue[string]
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// giveUp withdraws a ticket, and puts back an item that was
		// handed to it meanwhile.
		giveUp := func(q *ctxsync.Queue[string], g *ctxsync.GetTicket[string]) {
			if !g.Stop() && g.Err() == nil {
				require.NoError(t, q.TryPut(g.Item()))
				q.TaskDone()
			}
		}
		take := func(timeout time.Duration) string {
			ga, gb := a.GetTicket(), b.GetTicket()
			timer := time.NewTimer(timeout)
			defer timer.Stop()
			select {
			case <-ga.Ready():
				giveUp(&b, gb)
				return "a:" + ga.Item()
			case <-gb.Ready():
				giveUp(&a, ga)
				return "b:" + gb.Item()
			case <-ctx.Done():
				giveUp(&a, ga)
				giveUp(&b, gb)
				return "ctx"
			case <-timer.C:
				giveUp(&a, ga)
				giveUp(&b, gb)
				return "timer"
			}
		}
		assert.Equal(t, "timer", take(time.Second))
		go func() {
			time.Sleep(time.Millisecond) // fake time inside the bubble
			assert.NoError(t, b.Put(context.Background(), "x"))
		}()
		assert.Equal(t, "b:x", take(time.Minute))
		b.TaskDone()
		require.NoError(t, a.TryPut("y"))
		assert.Equal(t, "a:y", take(time.Minute), "granted at once")
		a.TaskDone()
		go cancel()
		assert.Equal(t, "ctx", take(time.Minute))
		assert.Zero(t, a.Len())
		assert.Zero(t, b.Len())
		assert.NoError(t, a.Join(cancelled()))
		assert.NoError(t, b.Join(cancelled()))
	})
}

// R8, R9: a ticket costs at most its record and its channel.
func TestQueueTicketAllocs(t *testing.T) {
	q := ctxsync.NewQueue[int](1)
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if !q.PutTicket(1).Stop() {
			_, _ = q.TryGet()
			q.TaskDone()
		}
	}), 2.0, "PutTicket granted at once")
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if !q.GetTicket().Stop() {
			t.Error("a GetTicket on an empty queue must stop")
		}
	}), 2.0, "GetTicket waiting")
	require.NoError(t, q.TryPut(0))
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if !q.PutTicket(1).Stop() {
			t.Error("a PutTicket on a full queue must stop")
		}
	}), 2.0, "PutTicket waiting")
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		g := q.GetTicket()
		require.NoError(t, q.TryPut(g.Item()))
	}), 2.0, "GetTicket granted at once")
}

// Under stress, producers and consumers using tickets whose Stops race the
// hand-offs, mixed with blocking and Try calls, deliver each item exactly
// once, and every Put that succeeded counted one task.
//
// The FIFO queue runs at the capacities of its ring path (ringCapacities)
// and unbounded.
func TestQueueTicketStressStopRacingGrant(t *testing.T) {
	for _, capacity := range append(slices.Clone(ringCapacities), 0) {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			q := ctxsync.NewQueue[[2]int](capacity)
			require.Equal(t, capacity > 0, ctxsync.UsesRing(q))
			queueTicketStressStopRacingGrant(t, q)
		})
	}
}

func queueTicketStressStopRacingGrant(t *testing.T, q *ctxsync.Queue[[2]int]) {
	const producers, consumers, perProducer = 3, 3, 300 * stressScale
	var mu sync.Mutex
	seen := make(map[[2]int]int)
	var stopped, lateGrants atomic.Int64
	var cw sync.WaitGroup
	for c := range consumers {
		cw.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 13))
			for {
				var item [2]int
				var err error
				switch rng.IntN(3) {
				case 0:
					item, err = q.Get(context.Background())
				default:
					g := q.GetTicket()
					waited := !isReady(g)
					for range rng.IntN(3) {
						runtime.Gosched() // let Stop land anywhere
					}
					if rng.IntN(3) == 0 {
						<-g.Ready()
						item, err = g.Item(), g.Err()
					} else if !g.Stop() {
						assert.True(t, isReady(g))
						item, err = g.Item(), g.Err()
						if waited && err == nil {
							lateGrants.Add(1)
						}
					} else {
						stopped.Add(1)
						assertStopped(t, g)
						continue
					}
				}
				switch err {
				case nil:
					mu.Lock()
					seen[item]++
					mu.Unlock()
					q.TaskDone()
				case ctxsync.ErrQueueShutDown:
					return
				default:
					t.Errorf("unexpected error %v", err)
					return
				}
			}
		})
	}
	var pw sync.WaitGroup
	for p := range producers {
		pw.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 14))
			for s := 0; s < perProducer; {
				item := [2]int{p, s}
				var err error
				switch rng.IntN(4) {
				case 0:
					err = q.Put(context.Background(), item)
				case 1:
					err = q.TryPut(item)
				default:
					tk := q.PutTicket(item)
					waited := !isReady(tk)
					for range rng.IntN(3) {
						runtime.Gosched()
					}
					if rng.IntN(3) == 0 {
						<-tk.Ready()
						err = tk.Err()
					} else if !tk.Stop() {
						assert.True(t, isReady(tk))
						err = tk.Err()
						if waited {
							lateGrants.Add(1)
						}
					} else {
						stopped.Add(1)
						assertStopped(t, tk)
						err = ctxsync.ErrTicketStopped
					}
				}
				if err == nil {
					s++ // else the same item again: nothing was added
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
	t.Logf("%d Stops that withdrew, %d that came after a hand-off", stopped.Load(), lateGrants.Load())
}

// GetMany and TryGetMany.

type getManyResult struct {
	items []int
	err   error
}

func getManyAsync(ctx context.Context, q *ctxsync.Queue[int], size int) <-chan getManyResult {
	done := make(chan getManyResult, 1)
	go func() {
		dst := make([]int, size)
		n, err := q.GetMany(ctx, dst)
		done <- getManyResult{dst[:n], err}
	}()
	return done
}

// Up to len(dst) items, as many as are there, in the order Get would
// return them; the rest of dst is left as it was.
func TestGetManyTakesWhatIsThereInGetOrder(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], order func([]int) []int) {
		ctx := context.Background()
		in := []int{5, 3, 8, 1, 9, 2, 7}
		for _, try := range []bool{false, true} {
			q := newQueue(0)
			for _, v := range in {
				require.NoError(t, q.Put(ctx, v))
			}
			var got []int
			for _, size := range []int{3, 1, 10} {
				dst := []int{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1}[:size]
				var n int
				var err error
				if try {
					n, err = q.TryGetMany(dst)
				} else {
					n, err = q.GetMany(ctx, dst)
				}
				require.NoError(t, err)
				assert.Equal(t, min(size, len(in)-len(got)), n)
				for _, v := range dst[n:] {
					assert.Equal(t, -1, v, "beyond n, dst is untouched")
				}
				got = append(got, dst[:n]...)
			}
			assert.Equal(t, order(in), got)
			assert.True(t, q.Empty())
		}
	})
}

func TestGetManyZeroValueQueue(t *testing.T) {
	var q ctxsync.Queue[string]
	_, err := q.TryGetMany(make([]string, 2))
	assert.Equal(t, ctxsync.ErrQueueEmpty, err)
	require.NoError(t, q.Put(context.Background(), "a"))
	dst := make([]string, 2)
	n, err := q.GetMany(context.Background(), dst)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, dst[:n])
}

// GetMany waits as Get does until at least one item is there.
func TestGetManyWaitsForAnItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		res := getManyAsync(context.Background(), q, 4)
		synctest.Wait()
		assert.Empty(t, res)
		require.NoError(t, q.Put(context.Background(), 1))
		r := <-res
		require.NoError(t, r.err)
		assert.Equal(t, []int{1}, r.items)
	})
}

// A blocked GetMany handed an item returns that item alone: the queue was
// empty when it was handed over, and the items that came later are for the
// next call, so the batch is made at one instant (a batch of two instants
// is not linearizable: a Get between them could take an item from its
// middle). The GetMany is held before it waits until every Put is done, so
// the items after its hand-off are there when it looks.
func TestGetManyWokenTakesOnlyItsHandOff(t *testing.T) {
	for _, capacity := range []int{0, 4} { // the mutex path and the ring
		synctest.Test(t, func(t *testing.T) {
			release := holdParked(t)
			ctx := context.Background()
			q := ctxsync.NewQueue[int](capacity)
			res := getManyAsync(ctx, q, 3)
			synctest.Wait()
			for i := 1; i <= 4; i++ {
				require.NoError(t, q.Put(ctx, i))
			}
			release()
			r := <-res
			require.NoError(t, r.err)
			assert.Equal(t, []int{1}, r.items)
			assert.Equal(t, 3, q.Len())
		})
	}
}

// GetMany stands in the same FIFO line as Get.
func TestGetManyInLineWithGets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := ctxsync.NewQueue[int](0)
		first := getAsync(ctx, q)
		synctest.Wait()
		batch := getManyAsync(ctx, q, 8)
		synctest.Wait()
		last := getAsync(ctx, q)
		synctest.Wait()

		require.NoError(t, q.Put(ctx, 1))
		synctest.Wait()
		assert.Equal(t, getResult{1, nil}, <-first)
		assert.Empty(t, batch, "behind the first Get")
		assert.Empty(t, last)

		require.NoError(t, q.Put(ctx, 2))
		synctest.Wait()
		r := <-batch
		require.NoError(t, r.err)
		assert.Equal(t, []int{2}, r.items, "one item was there")
		assert.Empty(t, last, "behind the GetMany")

		require.NoError(t, q.Put(ctx, 3))
		assert.Equal(t, getResult{3, nil}, <-last)
	})
}

// A Get that comes while a GetMany waits queues behind it, and so does a
// TryGet-style newcomer: TryGetMany finds nothing while the line waits.
func TestGetManyNotOvertaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := ctxsync.NewQueue[int](0)
		batch := getManyAsync(ctx, q, 2)
		synctest.Wait()
		_, err := q.TryGetMany(make([]int, 2))
		assert.Equal(t, ctxsync.ErrQueueEmpty, err)
		require.NoError(t, q.Put(ctx, 7))
		_, err = q.TryGetMany(make([]int, 2))
		assert.Equal(t, ctxsync.ErrQueueEmpty, err, "the item was handed to the waiting GetMany")
		r := <-batch
		require.NoError(t, r.err)
		assert.Equal(t, []int{7}, r.items)
	})
}

// Each item taken is one fetched task, with one TaskDone each.
func TestGetManyEachItemOneTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := ctxsync.NewQueue[int](0)
		for i := range 5 {
			require.NoError(t, q.Put(ctx, i))
		}
		dst := make([]int, 8)
		n, err := q.GetMany(ctx, dst)
		require.NoError(t, err)
		require.Equal(t, 5, n)
		joined := make(chan error, 1)
		go func() { joined <- q.Join(ctx) }()
		for range 4 {
			q.TaskDone()
		}
		synctest.Wait()
		assert.Empty(t, joined, "one task is still unfinished")
		q.TaskDone()
		require.NoError(t, <-joined)
		assert.PanicsWithValue(t, "ctxsync: TaskDone called more times than there were items", q.TaskDone)
	})
}

// On a full bounded queue, the batch is what was there; blocked Puts then
// fill the room in order, each adding its task.
func TestGetManyLetsBlockedPutsIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := ctxsync.NewQueue[int](2)
		require.NoError(t, q.Put(ctx, 1))
		require.NoError(t, q.Put(ctx, 2))
		puts := make([]<-chan error, 3)
		for i := range puts {
			puts[i] = putAsync(ctx, q, 3+i)
			synctest.Wait()
		}
		dst := make([]int, 4)
		n, err := q.TryGetMany(dst)
		require.NoError(t, err)
		assert.Equal(t, []int{1, 2}, dst[:n], "as many as were there")
		require.NoError(t, <-puts[0])
		require.NoError(t, <-puts[1])
		synctest.Wait()
		assert.Empty(t, puts[2], "no room for the third")
		assert.Equal(t, 2, q.Len())
		n, err = q.GetMany(ctx, dst)
		require.NoError(t, err)
		assert.Equal(t, []int{3, 4}, dst[:n])
		require.NoError(t, <-puts[2])
		assert.Equal(t, []int{5}, drain(t, q))
		for range 5 {
			q.TaskDone()
		}
		assert.NoError(t, q.Join(cancelled()), "every item was one task")
	})
}

// R1, R10: misuse first, then a shut-down empty queue, then the context.
func TestGetManyOutcomes(t *testing.T) {
	ctx := context.Background()
	q := ctxsync.NewQueue[int](0)
	dst := make([]int, 2)

	_, err := q.GetMany(cancelled(), dst)
	assert.Equal(t, context.Canceled, err, "R2: exactly ctx.Err()")
	require.NoError(t, q.Put(ctx, 1))
	_, err = q.GetMany(cancelled(), dst)
	assert.Equal(t, context.Canceled, err, "R1: fails even with an item there")
	assert.Equal(t, 1, q.Len(), "and took nothing")

	q.Shutdown()
	_, err = q.GetMany(cancelled(), dst)
	assert.Equal(t, context.Canceled, err, "a shut-down queue with items follows R1")
	n, err := q.GetMany(ctx, dst)
	require.NoError(t, err, "a shut-down queue hands out what is left")
	assert.Equal(t, []int{1}, dst[:n])
	_, err = q.GetMany(cancelled(), dst)
	assert.Equal(t, ctxsync.ErrQueueShutDown, err, "R10: shut down and empty wins over the context")
	_, err = q.TryGetMany(dst)
	assert.Equal(t, ctxsync.ErrQueueShutDown, err)

	p := ctxsync.NewQueue[int](0)
	_, err = p.TryGetMany(dst)
	assert.Equal(t, ctxsync.ErrQueueEmpty, err)
}

func TestGetManyMisusePanics(t *testing.T) {
	// The mutex path (unbounded) and the ring path (bounded FIFO).
	for _, capacity := range []int{0, 1, 4} {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			q := ctxsync.NewQueue[int](capacity)
			require.Equal(t, capacity > 0, ctxsync.UsesRing(q))
			getManyMisusePanics(t, q)
		})
	}
}

func getManyMisusePanics(t *testing.T, q *ctxsync.Queue[int]) {
	require.NoError(t, q.Put(context.Background(), 1))
	tests := []struct {
		name string
		call func()
		msg  string
	}{
		{"GetMany nil dst", func() { _, _ = q.GetMany(context.Background(), nil) }, "ctxsync: GetMany with an empty dst"},
		{"GetMany empty dst", func() { _, _ = q.GetMany(context.Background(), []int{}) }, "ctxsync: GetMany with an empty dst"},
		{"GetMany empty dst, done ctx", func() { _, _ = q.GetMany(cancelled(), nil) }, "ctxsync: GetMany with an empty dst"},
		{"TryGetMany nil dst", func() { _, _ = q.TryGetMany(nil) }, "ctxsync: TryGetMany with an empty dst"},
		{"TryGetMany empty dst", func() { _, _ = q.TryGetMany(make([]int, 0, 4)) }, "ctxsync: TryGetMany with an empty dst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.msg, tt.call)
			assert.Equal(t, 1, q.Len(), "changes nothing")
		})
	}
	q.Shutdown()
	assert.PanicsWithValue(t, "ctxsync: GetMany with an empty dst", func() { _, _ = q.GetMany(context.Background(), nil) }, "misuse before the shut-down error")
	_, _ = q.TryGet()
	assert.PanicsWithValue(t, "ctxsync: TryGetMany with an empty dst", func() { _, _ = q.TryGetMany(nil) }, "on an empty shut-down queue too")
	q.TaskDone()
	assert.PanicsWithValue(t, "ctxsync: TaskDone called more times than there were items", q.TaskDone)
	assert.NoError(t, q.Join(cancelled()), "the panicking TaskDone changed nothing")
}

// R3: a GetMany ended by its context took nothing; one woken by Shutdown
// fails with ErrQueueShutDown.
func TestGetManyCancelledAndShutDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := ctxsync.NewQueue[int](0)
		ctx, cancel := context.WithCancel(context.Background())
		res := getManyAsync(ctx, q, 3)
		synctest.Wait()
		cancel()
		r := <-res
		assert.Equal(t, context.Canceled, r.err)
		assert.Empty(t, r.items)
		require.NoError(t, q.Put(context.Background(), 1))
		assert.Equal(t, 1, q.Len(), "the item went to the store, not to the leaver")
		_, _ = q.TryGet()

		res = getManyAsync(context.Background(), q, 3)
		synctest.Wait()
		q.Shutdown()
		r = <-res
		assert.Equal(t, ctxsync.ErrQueueShutDown, r.err)
		assert.Empty(t, r.items)
	})
}

// A hand-off is kept: a GetMany handed an item returns it even if its
// context ends at the same moment. The GetMany is held before it waits
// until both have happened, so it finds both its wake-up and its context
// done, and its select picks either (hence the rounds).
func TestGetManyHandOffKeptOnCancel(t *testing.T) {
	for _, capacity := range []int{0, 4} { // the mutex path and the ring
		for range 16 {
			synctest.Test(t, func(t *testing.T) {
				release := holdParked(t)
				q := ctxsync.NewQueue[int](capacity)
				ctx, cancel := context.WithCancel(context.Background())
				res := getManyAsync(ctx, q, 3)
				synctest.Wait()
				require.NoError(t, q.Put(context.Background(), 42))
				cancel()
				release()
				r := <-res
				require.NoError(t, r.err)
				assert.Equal(t, []int{42}, r.items)
				assert.True(t, q.Empty())
			})
		}
	}
}

// R8: GetMany with items there and TryGetMany allocate nothing.
func TestGetManyDoesNotAllocate(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		q := newQueue(8)
		ctx := context.Background()
		dst := make([]int, 4)
		for i := range 8 {
			require.NoError(t, q.Put(ctx, i))
		}
		allocs := testing.AllocsPerRun(100, func() {
			n, _ := q.GetMany(ctx, dst)
			for _, v := range dst[:n] {
				_ = q.TryPut(v)
			}
			n, _ = q.TryGetMany(dst)
			for _, v := range dst[:n] {
				_ = q.TryPut(v)
			}
			_, _ = q.TryGetMany(dst[:1])
			_ = q.TryPut(0)
		})
		assert.Zero(t, allocs)
		empty := newQueue(0)
		assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = empty.TryGetMany(dst) }))
	})
}

// Stress: producers race with consumers that mix Get, GetMany and
// TryGetMany under random cancellations. Every item is taken exactly once,
// and each has its one TaskDone.
//
// Every kind of queue runs at capacity 16, and the FIFO queue also at the
// capacities of its ring path (ringCapacities) and unbounded.
func TestGetManyStressEveryItemOnce(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		getManyStressEveryItemOnce(t, newQueue(16))
	})
	for _, capacity := range append(slices.Clone(ringCapacities), 0) {
		t.Run(fmt.Sprintf("FIFO/cap%d", capacity), func(t *testing.T) {
			q := ctxsync.NewQueue[int](capacity)
			require.Equal(t, capacity > 0, ctxsync.UsesRing(q))
			getManyStressEveryItemOnce(t, q)
		})
	}
}

func getManyStressEveryItemOnce(t *testing.T, q *ctxsync.Queue[int]) {
	{
		const producers, consumers, perProducer = 3, 4, 400 * stressScale
		seen := make([]atomic.Int32, producers*perProducer)
		var taken atomic.Int64
		var pw, cw sync.WaitGroup
		for p := range producers {
			pw.Go(func() {
				for i := range perProducer {
					require.NoError(t, q.Put(context.Background(), p*perProducer+i))
				}
			})
		}
		record := func(items []int) {
			for _, v := range items {
				if seen[v].Add(1) != 1 {
					t.Errorf("item %d taken twice", v)
				}
				q.TaskDone()
			}
			taken.Add(int64(len(items)))
		}
		for c := range consumers {
			cw.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(c), 7))
				dst := make([]int, 1+rng.IntN(8))
				for {
					ctx, cancel := context.WithCancel(context.Background())
					if rng.IntN(3) == 0 {
						go cancel()
					}
					switch rng.IntN(3) {
					case 0:
						v, err := q.Get(ctx)
						if err == ctxsync.ErrQueueShutDown {
							cancel()
							return
						}
						if err == nil {
							record([]int{v})
						}
					case 1:
						n, err := q.GetMany(ctx, dst[:1+rng.IntN(len(dst))])
						if err == ctxsync.ErrQueueShutDown {
							cancel()
							return
						}
						if err == nil {
							assert.Positive(t, n)
							record(dst[:n])
						} else {
							assert.Zero(t, n)
						}
					default:
						n, err := q.TryGetMany(dst)
						if err == ctxsync.ErrQueueShutDown {
							cancel()
							return
						}
						if err == nil {
							record(dst[:n])
						}
					}
					cancel()
				}
			})
		}
		pw.Wait()
		require.NoError(t, q.Join(context.Background()), "every item had its TaskDone")
		q.Shutdown()
		cw.Wait()
		assert.Equal(t, int64(producers*perProducer), taken.Load())
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Errorf("item %d taken %d times", i, seen[i].Load())
			}
		}
	}
}

// A Get that is handed an item finds its task counted before it returns,
// so a TaskDone right after it never finds the count at zero, and Join
// sees the whole count.
func TestOrderingQueueTaskCountedBeforeGetReturns(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		for round := range orderingRounds * stressScale {
			q := newQueue(1)
			ctx := context.Background()
			get := func() {
				if _, err := q.Get(ctx); err != nil {
					t.Errorf("round %d: Get: %v", round, err)
					return
				}
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("round %d: TaskDone right after Get: %v", round, r)
					}
				}()
				q.TaskDone()
			}
			put := func() {
				for i := range 2 {
					if err := q.Put(ctx, i); err != nil {
						t.Errorf("round %d: Put: %v", round, err)
					}
				}
			}
			together(get, get, put)
			assert.NoError(t, q.Join(cancelled()), "every task done")
			if t.Failed() {
				return
			}
		}
	})
}
