package ctxsync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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
