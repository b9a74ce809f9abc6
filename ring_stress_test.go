package ctxsync_test

// Randomized stress of the lock-free ring of a bounded FIFO Queue, for the
// race detector: Shutdown and ShutdownNow racing fast-path Puts, TryPuts,
// Gets, TryGets, GetMany, TryGetMany and tickets, and contexts with tiny
// random deadlines ending at the moment of a hand-off. Every item has a
// number of its own, so the checks are exact: an item whose Put returned
// nil is got exactly once or returned by ShutdownNow exactly once; an item
// whose Put failed never appears; each producer's items come out in order;
// Len() never exceeds Cap(); and once every item got has had its TaskDone,
// Join returns.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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
