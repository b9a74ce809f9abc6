package ctxsync_test

import (
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
