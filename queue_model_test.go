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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// linearizeQueueKind is one queue the linearizability checks run on.
type linearizeQueueKind struct {
	name     string
	capacity int
	make     func(capacity int) *ctxsync.Queue[int]
	next     func([]int) int
	ring     bool // the FIFO queue's lock-free ring path (queue_ring.go)
}

// linearizeQueueKinds are the bounded FIFO queue at the capacities of
// ringCapacities (its ring path: one slot, where every claim meets another
// at the same slot, a capacity that is not a power of two, and a large
// one), the unbounded FIFO queue and the bound above the ring's largest
// (its mutex path), and the LIFO and priority queues at capacity 3.
func linearizeQueueKinds() []linearizeQueueKind {
	var kinds []linearizeQueueKind
	for _, c := range ringCapacities {
		kinds = append(kinds, linearizeQueueKind{fmt.Sprintf("FIFO/cap%d", c), c, ctxsync.NewQueue[int], fifoNext, true})
	}
	return append(kinds,
		linearizeQueueKind{"FIFO/unbounded", 0, ctxsync.NewQueue[int], fifoNext, false},
		linearizeQueueKind{"FIFO/cap65537", 65537, ctxsync.NewQueue[int], fifoNext, false},
		linearizeQueueKind{"LIFO", 3, ctxsync.NewLifoQueue[int], func(items []int) int { return len(items) - 1 }, false},
		linearizeQueueKind{"Priority", 3, func(c int) *ctxsync.Queue[int] { return ctxsync.NewPriorityQueue(c, cmp.Less[int]) }, func(items []int) int {
			return slices.Index(items, slices.Min(items))
		}, false},
	)
}

// newQueue makes the queue of kind k, and checks that it takes the path
// that k means.
func (k linearizeQueueKind) newQueue(t *testing.T) *ctxsync.Queue[int] {
	q := k.make(k.capacity)
	require.Equal(t, k.ring, ctxsync.UsesRing(q), "%s takes the ring path", k.name)
	return q
}

// queueClient is one client of a random queue history: it records its
// calls in rec. Its methods are the calls a history picks from; item is
// the one a Put puts, distinct in the whole history so that priorities
// never tie.
type queueClient struct {
	rec   *recorder
	id    int
	rng   *rand.Rand
	q     *ctxsync.Queue[int]
	batch int // what a TryGetMany asks for, drawn before each call
}

func (c *queueClient) put(item int) {
	ctx, cancel := opContext(c.rng)
	c.rec.do(c.id, opInput{opPut, item}, func() opOutput { return opOutput{err: c.q.Put(ctx, item)} })
	cancel()
}

func (c *queueClient) tryPut(item int) {
	c.rec.do(c.id, opInput{opTryPut, item}, func() opOutput { return opOutput{err: c.q.TryPut(item)} })
}

// putTicket is recorded as a Put: a ticket stopped before its grant had
// no effect, as a call that ended on its context.
func (c *queueClient) putTicket(item int) {
	c.rec.do(c.id, opInput{opPut, item}, func() opOutput {
		if awaitTicket(c.rng, c.q.PutTicket(item)) {
			return opOutput{}
		}
		return opOutput{err: ctxsync.ErrTicketStopped}
	})
}

func (c *queueClient) get(int) {
	ctx, cancel := opContext(c.rng)
	c.rec.do(c.id, opInput{kind: opGet}, func() opOutput { v, err := c.q.Get(ctx); return opOutput{v, err} })
	cancel()
}

func (c *queueClient) tryGet(int) {
	c.rec.do(c.id, opInput{kind: opTryGet}, func() opOutput { v, err := c.q.TryGet(); return opOutput{v, err} })
}

// getTicket is recorded as a Get, as putTicket is as a Put.
func (c *queueClient) getTicket(int) {
	c.rec.do(c.id, opInput{kind: opGet}, func() opOutput {
		g := c.q.GetTicket()
		if awaitTicket(c.rng, g) {
			return opOutput{n: g.Item()}
		}
		return opOutput{err: ctxsync.ErrTicketStopped}
	})
}

func (c *queueClient) len(int) {
	c.rec.do(c.id, opInput{kind: opLen}, func() opOutput { return opOutput{n: c.q.Len()} })
}

// getMany returns the call of a blocking GetMany asking for 1 to most
// items.
func getMany(most int) func(c *queueClient, _ int) {
	return func(c *queueClient, _ int) {
		k := 1 + c.rng.IntN(most)
		ctx, cancel := opContext(c.rng)
		c.rec.doAny(c.id, opInput{opGetMany, k}, func() any {
			dst := make([]int, k)
			n, err := c.q.GetMany(ctx, dst)
			return manyOutput{dst[:n], err}
		})
		cancel()
	}
}

func (c *queueClient) tryGetMany(int) {
	k := c.batch
	c.rec.doAny(c.id, opInput{opGetMany, k}, func() any {
		dst := make([]int, k)
		n, err := c.q.TryGetMany(dst)
		return manyOutput{dst[:n], err}
	})
}

// queueHistories is a linearizability check of every kind of queue
// (linearizeQueueKinds): 4 clients make 12 calls each, picked at random,
// and the history must be linearizable against the queue's model.
type queueHistories struct {
	seed    uint64 // of the clients' random sources, one per test
	batches bool   // draw a client's batch before each call
	// calls are picked from at random; one listed twice comes twice as often.
	calls []func(c *queueClient, item int)
}

func (hs queueHistories) check(t *testing.T) {
	for _, kind := range linearizeQueueKinds() {
		t.Run(kind.name, func(t *testing.T) {
			model := queueModel(kind.capacity, kind.next)
			for h := range linearizeHistories {
				q := kind.newQueue(t)
				var rec recorder
				var wg sync.WaitGroup
				for client := range 4 {
					wg.Go(func() {
						c := &queueClient{rec: &rec, id: client, rng: rand.New(rand.NewPCG(uint64(h), uint64(client)+hs.seed)), q: q}
						for i := range 12 {
							if hs.batches {
								c.batch = 1 + c.rng.IntN(4)
							}
							hs.calls[c.rng.IntN(len(hs.calls))](c, client*1000+i)
						}
					})
				}
				wg.Wait()
				requireLinearizable(t, model, rec.ops, fmt.Sprintf("history %d", h))
			}
		})
	}
}

func TestLinearizableQueues(t *testing.T) {
	queueHistories{
		seed:  0,
		calls: []func(*queueClient, int){(*queueClient).put, (*queueClient).tryPut, (*queueClient).get, (*queueClient).tryGet, (*queueClient).len},
	}.check(t)
}

// Histories with GetMany and TryGetMany among Puts and Gets: a batch is
// what was there at one instant, up to len(dst), in Get order.
//
// Here the blocking GetMany asks for one item, and TryGetMany, which never
// parks, for up to four; TestLinearizableQueueGetManyBlockingBatches lets
// the blocking GetMany ask for more.
func TestLinearizableQueueGetMany(t *testing.T) {
	linearizeGetMany(t, 1)
}

// linearizeGetMany checks histories whose blocking GetMany calls ask for
// 1..blockingMax items.
func linearizeGetMany(t *testing.T, blockingMax int) {
	queueHistories{
		seed:    400,
		batches: true,
		calls: []func(*queueClient, int){
			(*queueClient).put, (*queueClient).put, (*queueClient).tryPut,
			getMany(blockingMax), (*queueClient).tryGetMany, (*queueClient).get,
		},
	}.check(t)
}

// Blocking GetMany calls asking for up to 4 items: a GetMany that parks is
// handed one item, and returns that one alone, so its batch is made at one
// instant (before the fix it also took what had come since, and porcupine
// found such histories within a few).
func TestLinearizableQueueGetManyBlockingBatches(t *testing.T) {
	linearizeGetMany(t, 4)
}

// queueSpec is the sequential model of a Queue with its lines.
type queueSpec struct {
	capacity         int
	order            int // 0 FIFO, 1 LIFO, 2 priority
	items            []int
	putters, getters []*pending
	shut             bool
	tasks            int
}

func (m *queueSpec) full() bool {
	return len(m.putters) > 0 || (m.capacity > 0 && len(m.items) >= m.capacity)
}

func (m *queueSpec) add(item int) {
	m.tasks++
	if len(m.getters) > 0 {
		g := m.getters[0]
		m.getters = m.getters[1:]
		g.finish(opOutput{n: item})
		return
	}
	m.items = append(m.items, item)
}

// fuzzCapacities are the capacities a queue fuzz target picks from with
// its first byte: unbounded, the small bounds where the FIFO queue's ring
// (queue_ring.go) has every claim meet another at one slot, a bound that
// is not a power of two, and a large one. The indexes keep the seed corpus
// of the old capacity data[0]%4 meaning what it did: the ASCII digits '0',
// '1', '2' are 48, 49, 50, and 48%6 = 0 as 48%4 was.
var fuzzCapacities = []int{0, 1, 2, 3, 4, 1024}

// newQueueSpec is the model of the queue the first two bytes of a fuzz
// input choose: its capacity from fuzzCapacities, and its order.
func newQueueSpec(capacity, order byte) *queueSpec {
	return &queueSpec{capacity: fuzzCapacities[int(capacity)%len(fuzzCapacities)], order: int(order % 3)}
}

// newQueue makes the Queue that m models, and checks that a bounded FIFO
// queue takes the ring path and the others the mutex path.
func (m *queueSpec) newQueue(t *testing.T) *ctxsync.Queue[int] {
	var q *ctxsync.Queue[int]
	switch m.order {
	case 0:
		q = ctxsync.NewQueue[int](m.capacity)
	case 1:
		q = ctxsync.NewLifoQueue[int](m.capacity)
	default:
		q = ctxsync.NewPriorityQueue(m.capacity, cmp.Less[int])
	}
	require.Equal(t, m.order == 0 && m.capacity > 0, ctxsync.UsesRing(q))
	require.Equal(t, m.capacity, q.Cap())
	return q
}

// joinPut decides a blocking Put (p.n is its item), a call or a ticket: it
// fails on a shut-down queue, waits in line while the queue is full or
// other Puts wait, and otherwise adds its item.
func (m *queueSpec) joinPut(p *pending) {
	switch {
	case m.shut:
		p.finish(opOutput{err: ctxsync.ErrQueueShutDown})
	case m.full():
		m.putters = append(m.putters, p)
	default:
		m.add(p.n)
		p.finish(opOutput{})
	}
}

// joinGet decides a blocking Get, a call or a ticket: it takes an item
// that is there, fails on a shut-down empty queue, and otherwise waits in
// line.
func (m *queueSpec) joinGet(p *pending) {
	switch {
	case len(m.items) > 0:
		p.finish(opOutput{n: m.take()})
	case m.shut:
		p.finish(opOutput{err: ctxsync.ErrQueueShutDown})
	default:
		m.getters = append(m.getters, p)
	}
}

// tryPut is what TryPut(item) must return, and adds the item if it may.
func (m *queueSpec) tryPut(item int) error {
	switch {
	case m.shut:
		return ctxsync.ErrQueueShutDown
	case m.full():
		return ctxsync.ErrQueueFull
	}
	m.add(item)
	return nil
}

// tryGet is what TryGet must return, and takes the item if there is one.
func (m *queueSpec) tryGet() opOutput {
	switch {
	case len(m.items) > 0:
		return opOutput{n: m.take()}
	case m.shut:
		return opOutput{err: ctxsync.ErrQueueShutDown}
	}
	return opOutput{err: ctxsync.ErrQueueEmpty}
}

func (m *queueSpec) pop() int {
	i := 0
	switch m.order {
	case 1:
		i = len(m.items) - 1
	case 2:
		i = slices.Index(m.items, slices.Min(m.items)) // the first of equals: stable
	}
	v := m.items[i]
	m.items = slices.Delete(m.items, i, i+1)
	return v
}

func (m *queueSpec) take() int {
	v := m.pop()
	if len(m.putters) > 0 {
		p := m.putters[0]
		m.putters = m.putters[1:]
		m.tasks++
		m.items = append(m.items, p.n)
		p.finish(opOutput{})
	}
	return v
}

func (m *queueSpec) shutdown() {
	m.shut = true
	for _, p := range m.putters {
		p.finish(opOutput{err: ctxsync.ErrQueueShutDown})
	}
	m.putters = nil
	if len(m.items) == 0 {
		for _, g := range m.getters {
			g.finish(opOutput{err: ctxsync.ErrQueueShutDown})
		}
		m.getters = nil
	}
}

func FuzzQueue(f *testing.F) {
	f.Add([]byte{2, 0, 2, 1, 2, 2, 2, 3, 3, 0, 1, 0, 4, 0, 5, 0})
	f.Add([]byte{0, 2, 3, 0, 3, 0, 0, 5, 0, 5, 4, 1, 0, 9, 7, 0, 6, 0})
	f.Add([]byte{1, 1, 2, 4, 2, 5, 2, 6, 7, 0, 1, 0, 7, 0, 7, 0, 9, 0})
	// The FIFO ring at capacity 4 filled, with Puts parked for room, a
	// TryGet and a Get letting them in, and ShutdownNow; at 3, with Gets
	// parked and handed items, then full, Shutdown and draining; at 1024,
	// never full.
	f.Add([]byte{4, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 2, 6, 2, 7, 1, 0, 3, 0, 7, 0, 7, 0, 8, 0, 6, 0, 1, 0, 3, 0, 7, 0, 8, 0})
	f.Add([]byte{3, 0, 3, 0, 3, 0, 0, 1, 2, 2, 0, 3, 0, 4, 0, 5, 0, 6, 2, 7, 4, 0, 2, 8, 5, 0, 1, 0, 1, 0, 1, 0, 1, 0, 3, 0, 7, 0, 8, 0})
	f.Add([]byte{5, 0, 0, 1, 2, 2, 3, 0, 1, 0, 1, 0, 3, 0, 2, 3, 7, 0, 7, 0, 7, 0, 8, 0, 0, 4, 6, 0, 9, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		m := newQueueSpec(data[0], data[1])
		data = data[2:]
		synctest.Test(t, func(t *testing.T) {
			q := m.newQueue(t)
			var calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%10, int(data[1]%8)
				data = data[2:]
				switch op {
				case 0: // TryPut
					require.Equal(t, m.tryPut(arg), q.TryPut(arg))
				case 1: // TryGet
					want := m.tryGet()
					v, err := q.TryGet()
					require.Equal(t, want, opOutput{v, err})
				case 2: // Put
					m.joinPut(startCall(&calls, arg, func(ctx context.Context) opOutput { return opOutput{err: q.Put(ctx, arg)} }))
				case 3: // Get
					m.joinGet(startCall(&calls, 0, func(ctx context.Context) opOutput { v, err := q.Get(ctx); return opOutput{v, err} }))
				case 4: // cancel a waiting call
					if p := cancelPending(calls, arg); p != nil {
						m.putters = removeWaiter(m.putters, p)
						m.getters = removeWaiter(m.getters, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 5:
					m.shutdown()
					q.Shutdown()
				case 6: // ShutdownNow
					var want []int
					for len(m.items) > 0 {
						want = append(want, m.pop())
					}
					m.tasks = max(m.tasks-len(want), 0)
					m.shutdown()
					require.Equal(t, want, q.ShutdownNow())
				case 7:
					if m.tasks == 0 {
						require.Panics(t, q.TaskDone)
					} else {
						m.tasks--
						q.TaskDone()
					}
				case 8: // Join with a done context only observes
					want := context.Canceled
					if m.tasks == 0 {
						want = nil
					}
					require.Equal(t, want, q.Join(cancelled()))
				case 9: // a done context changes nothing
					_, err := q.Get(cancelled())
					if m.shut && len(m.items) == 0 {
						require.Equal(t, ctxsync.ErrQueueShutDown, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				assert.Equal(t, len(m.items), q.Len())
				assert.Equal(t, m.capacity > 0 && len(m.items) >= m.capacity, q.Full())
			}
			// Let every call still waiting go.
			for _, p := range calls {
				p.cancel()
				m.putters = removeWaiter(m.putters, p)
				m.getters = removeWaiter(m.getters, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

// GetMany in the queue's fuzz model: queueSpec, extended.

// encodeBatch packs the items of a batch (each 0..7) into one int: a single
// item as itself, so that a GetMany handed one item by the model's add
// reads as that item, and longer batches as base-9 digits v+1, which are
// all above 7.
func encodeBatch(items []int) int {
	if len(items) == 1 {
		return items[0]
	}
	enc, mul := 0, 1
	for _, v := range items {
		enc += (v + 1) * mul
		mul *= 9
	}
	return enc
}

// takeMany is GetMany in the model: up to k of the items there, in Get
// order, then as many blocked Puts let in.
func (m *queueSpec) takeMany(k int) []int {
	var got []int
	for len(got) < k && len(m.items) > 0 {
		got = append(got, m.pop())
	}
	for range len(got) {
		if len(m.putters) == 0 {
			break
		}
		p := m.putters[0]
		m.putters = m.putters[1:]
		m.tasks++
		m.items = append(m.items, p.n)
		p.finish(opOutput{})
	}
	return got
}

func FuzzQueueGetMany(f *testing.F) {
	f.Add([]byte{2, 0, 0, 1, 0, 2, 0, 3, 2, 3, 2, 4, 3, 2, 1, 0, 1, 3})
	f.Add([]byte{1, 1, 3, 2, 2, 1, 0, 5, 0, 6, 3, 0, 4, 1, 6, 0, 3, 2})
	f.Add([]byte{0, 2, 2, 1, 1, 0, 0, 4, 0, 1, 0, 7, 3, 3, 5, 0, 3, 1})
	// The FIFO ring at capacities 4, 3 and 1024: batches from a full
	// ring that let parked Puts in, GetMany parked and handed an item.
	f.Add([]byte{4, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 2, 3, 3, 1, 6, 0, 6, 0, 6, 0, 2, 3, 6, 0, 6, 0, 6, 0, 7, 0})
	f.Add([]byte{3, 0, 2, 2, 1, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 3, 3, 4, 0, 5, 0, 2, 3, 6, 0, 6, 0, 6, 0, 7, 0})
	f.Add([]byte{5, 0, 0, 1, 0, 2, 0, 3, 3, 1, 2, 2, 2, 3, 0, 4, 6, 0, 6, 0, 6, 0, 6, 0, 5, 0, 7, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		m := newQueueSpec(data[0], data[1])
		data = data[2:]
		synctest.Test(t, func(t *testing.T) {
			q := m.newQueue(t)
			getMany := func(ctx context.Context, k int) opOutput {
				dst := make([]int, k)
				n, err := q.GetMany(ctx, dst)
				return opOutput{encodeBatch(dst[:n]), err}
			}
			var calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%8, int(data[1]%8)
				data = data[2:]
				switch op {
				case 0: // Put
					m.joinPut(startCall(&calls, arg, func(ctx context.Context) opOutput { return opOutput{err: q.Put(ctx, arg)} }))
				case 1: // Get, in the same line
					m.joinGet(startCall(&calls, 0, func(ctx context.Context) opOutput { v, err := q.Get(ctx); return opOutput{v, err} }))
				case 2: // GetMany of 1..4
					k := 1 + arg%4
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { return getMany(ctx, k) })
					switch {
					case len(m.items) > 0:
						p.finish(opOutput{n: encodeBatch(m.takeMany(k))})
					case m.shut:
						p.finish(opOutput{err: ctxsync.ErrQueueShutDown})
					default:
						m.getters = append(m.getters, p) // handed one item by add
					}
				case 3: // TryGetMany of 1..4
					k := 1 + arg%4
					var want opOutput
					switch {
					case len(m.items) > 0:
						want.n = encodeBatch(m.takeMany(k))
					case m.shut:
						want.err = ctxsync.ErrQueueShutDown
					default:
						want.err = ctxsync.ErrQueueEmpty
					}
					dst := make([]int, k)
					n, err := q.TryGetMany(dst)
					require.Equal(t, want, opOutput{encodeBatch(dst[:n]), err})
				case 4: // cancel a waiting call
					if p := cancelPending(calls, arg); p != nil {
						m.putters = removeWaiter(m.putters, p)
						m.getters = removeWaiter(m.getters, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 5:
					m.shutdown()
					q.Shutdown()
				case 6:
					if m.tasks == 0 {
						require.Panics(t, q.TaskDone)
					} else {
						m.tasks--
						q.TaskDone()
					}
				case 7: // a done context changes nothing
					_, err := q.GetMany(cancelled(), make([]int, 2))
					if m.shut && len(m.items) == 0 {
						require.Equal(t, ctxsync.ErrQueueShutDown, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, len(m.items), q.Len())
				want := context.Canceled
				if m.tasks == 0 {
					want = nil
				}
				require.Equal(t, want, q.Join(cancelled()), "one task per item")
			}
			for _, p := range calls {
				p.cancel()
				m.putters = removeWaiter(m.putters, p)
				m.getters = removeWaiter(m.getters, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

func FuzzQueueTickets(f *testing.F) {
	f.Add([]byte{1, 0, 9, 0, 9, 0, 2, 1, 10, 0, 0, 2, 1, 0, 8, 3, 5, 0})
	f.Add([]byte{1, 1, 0, 1, 8, 2, 8, 3, 10, 1, 1, 0, 3, 0, 9, 0, 6, 0})
	f.Add([]byte{2, 2, 9, 0, 0, 5, 9, 0, 8, 1, 8, 2, 8, 3, 1, 0, 7, 0, 7, 0, 5, 0})
	// The FIFO ring at capacities 4, 3 and 1024: tickets parked for room
	// and for items, stopped, granted by TryGet and TryPut, and shut down.
	f.Add([]byte{4, 0, 0, 1, 0, 2, 0, 3, 0, 4, 8, 5, 8, 6, 10, 1, 1, 0, 3, 0, 7, 0, 7, 0, 6, 0, 11, 0})
	f.Add([]byte{3, 0, 9, 0, 9, 0, 3, 0, 0, 1, 8, 2, 0, 3, 0, 4, 0, 5, 8, 6, 10, 0, 5, 0, 1, 0, 1, 0, 1, 0, 7, 0, 11, 0})
	f.Add([]byte{5, 0, 8, 1, 9, 0, 9, 0, 0, 2, 10, 0, 8, 3, 1, 0, 7, 0, 7, 0, 11, 0, 6, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		m := newQueueSpec(data[0], data[1])
		data = data[2:]
		synctest.Test(t, func(t *testing.T) {
			q := m.newQueue(t)
			var calls []*pending
			var tickets []*ticketCall
			leave := func(p *pending) {
				m.putters = removeWaiter(m.putters, p)
				m.getters = removeWaiter(m.getters, p)
			}
			for len(data) >= 2 {
				op, arg := data[0]%12, int(data[1]%8)
				data = data[2:]
				switch op {
				case 0: // TryPut
					require.Equal(t, m.tryPut(arg), q.TryPut(arg))
				case 1: // TryGet
					want := m.tryGet()
					v, err := q.TryGet()
					require.Equal(t, want, opOutput{v, err})
				case 2:
					m.joinPut(startCall(&calls, arg, func(ctx context.Context) opOutput { return opOutput{err: q.Put(ctx, arg)} }))
				case 3:
					m.joinGet(startCall(&calls, 0, func(ctx context.Context) opOutput { v, err := q.Get(ctx); return opOutput{v, err} }))
				case 4:
					if p := cancelPending(calls, arg); p != nil {
						leave(p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 5:
					m.shutdown()
					q.Shutdown()
				case 6:
					var want []int
					for len(m.items) > 0 {
						want = append(want, m.pop())
					}
					m.tasks = max(m.tasks-len(want), 0)
					m.shutdown()
					require.Equal(t, want, q.ShutdownNow())
				case 7:
					if m.tasks == 0 {
						require.Panics(t, q.TaskDone)
					} else {
						m.tasks--
						q.TaskDone()
					}
				case 8:
					m.joinPut(newTicketCall(&tickets, q.PutTicket(arg), arg, nil).pending)
				case 9:
					g := q.GetTicket()
					m.joinGet(newTicketCall(&tickets, g, 0, g.Item).pending)
				case 10:
					if tc := pickTicket(tickets, arg); tc != nil {
						stopTicket(t, tc, leave)
					}
				case 11:
					want := context.Canceled
					if m.tasks == 0 {
						want = nil
					}
					require.Equal(t, want, q.Join(cancelled()))
				}
				calls = checkPending(t, calls)
				checkTickets(t, tickets)
				require.Equal(t, len(m.items), q.Len())
			}
			for _, tc := range tickets {
				stopTicket(t, tc, leave)
			}
			for _, p := range calls {
				p.cancel()
				leave(p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
			checkTickets(t, tickets)
		})
	})
}

// Tickets among the calls: a PutTicket or GetTicket granted is a Put or
// Get that returned nil, one stopped first a call that ended on its
// context.
func TestLinearizableQueueTickets(t *testing.T) {
	queueHistories{
		seed:  200,
		calls: []func(*queueClient, int){(*queueClient).put, (*queueClient).putTicket, (*queueClient).get, (*queueClient).getTicket, (*queueClient).len},
	}.check(t)
}
