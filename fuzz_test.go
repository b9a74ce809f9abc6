package ctxsync_test

// Fuzz targets: a byte string drives a random sequence of operations,
// blocking ones included, against a sequential model of the primitive that
// also models its lines of waiters. Every operation runs inside a
// testing/synctest bubble, so after each step every goroutine has either
// finished or is parked, and the model says exactly which.

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// pending is one blocking call started by a fuzz target: the real outcome
// arrives on got; the model fills in want when it says the call is over.
type pending struct {
	got    chan opOutput
	cancel context.CancelFunc
	n      int // the item put, or the permits asked for
	over   bool
	want   opOutput
}

func (p *pending) finish(want opOutput) { p.over, p.want = true, want }

// checkPending compares every call the model says is over with its real
// outcome, and every other call with a goroutine that is still parked, and
// returns the calls still going on.
func checkPending(t *testing.T, calls []*pending) []*pending {
	synctest.Wait()
	var still []*pending
	for _, p := range calls {
		if p.over {
			select {
			case got := <-p.got:
				require.Equal(t, p.want, got)
			default:
				require.Fail(t, "the model says the call is over, but it still waits", "want %v", p.want)
			}
			p.cancel()
			continue
		}
		require.Empty(t, p.got, "the call is over, but the model says it waits")
		still = append(still, p)
	}
	return still
}

// removeWaiter takes p out of line, if it is there.
func removeWaiter(line []*pending, p *pending) []*pending {
	if i := slices.Index(line, p); i >= 0 {
		return slices.Delete(line, i, i+1)
	}
	return line
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

// semaSpec is the sequential model of a Semaphore or BoundedSemaphore.
type semaSpec struct {
	avail, bound int // bound < 0: unbounded
	line         []*pending
}

func (m *semaSpec) serve() {
	for len(m.line) > 0 && m.avail >= m.line[0].n {
		m.avail -= m.line[0].n
		m.line[0].finish(opOutput{})
		m.line = m.line[1:]
	}
}

func FuzzSemaphore(f *testing.F) {
	f.Add([]byte{0, 2, 1, 3, 1, 1, 2, 1, 3, 0, 2, 2})
	f.Add([]byte{1, 3, 1, 4, 1, 1, 3, 0, 0, 2, 2, 3})
	f.Add([]byte{1, 1, 0, 1, 2, 1, 2, 1, 4, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		bounded, size := data[0]%2 == 1, int(data[1]%4)
		data = data[2:]
		m := &semaSpec{avail: size, bound: -1}
		var s anySemaphore = ctxsync.NewSemaphore(size)
		if bounded {
			m.bound = size
			s = ctxsync.NewBoundedSemaphore(size)
		}
		synctest.Test(t, func(t *testing.T) {
			var calls []*pending
			for len(data) >= 2 {
				op, n := data[0]%5, int(data[1]%5)
				data = data[2:]
				switch op {
				case 0: // TryAcquireN
					want := (m.bound < 0 || n <= m.bound) && len(m.line) == 0 && m.avail >= n
					if want {
						m.avail -= n
					}
					require.Equal(t, want, s.TryAcquireN(n))
				case 1: // AcquireN
					p := startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, n)} })
					switch {
					case m.bound >= 0 && n > m.bound:
						p.finish(opOutput{err: ctxsync.ErrExceedsBound})
					case len(m.line) == 0 && m.avail >= n:
						m.avail -= n
						p.finish(opOutput{})
					default:
						m.line = append(m.line, p)
					}
				case 2: // ReleaseN
					if m.bound >= 0 && m.avail+n > m.bound {
						require.Panics(t, func() { s.ReleaseN(n) })
					} else {
						m.avail += n
						m.serve()
						s.ReleaseN(n)
					}
				case 3: // cancel a waiting call
					if p := cancelPending(calls, n); p != nil {
						m.line = removeWaiter(m.line, p)
						p.finish(opOutput{err: context.Canceled})
						m.serve() // it may have held back the others
					}
				case 4: // a done context changes nothing
					err := s.AcquireN(cancelled(), n)
					if m.bound >= 0 && n > m.bound {
						require.Equal(t, ctxsync.ErrExceedsBound, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.avail, s.Available())
				require.Equal(t, len(m.line) > 0 || m.avail == 0, s.Locked())
			}
			// The latest first: a head that leaves may let those behind it be
			// served, so they must have ended already when it does.
			for _, p := range slices.Backward(calls) {
				p.cancel()
				m.line = removeWaiter(m.line, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

// startCall runs call in a goroutine of the bubble as a pending call.
func startCall(calls *[]*pending, n int, call func(ctx context.Context) opOutput) *pending {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pending{got: make(chan opOutput, 1), cancel: cancel, n: n}
	go func() { p.got <- call(ctx) }()
	*calls = append(*calls, p)
	return p
}

// cancelPending cancels the i'th call, and reports the call if it was
// still waiting, so that the model can take it out of line.
func cancelPending(calls []*pending, i int) *pending {
	if len(calls) == 0 {
		return nil
	}
	p := calls[i%len(calls)]
	p.cancel()
	if p.over {
		return nil
	}
	return p
}

func FuzzLock(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 0, 2, 0, 3, 1, 2, 0, 2, 0, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 3, 0, 2, 0, 2, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var l ctxsync.Lock
			held := false
			var line, calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%5, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					want := !held && len(line) == 0
					held = held || want
					require.Equal(t, want, l.TryLock())
				case 1:
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: l.Lock(ctx)} })
					if !held && len(line) == 0 {
						held = true
						p.finish(opOutput{})
					} else {
						line = append(line, p)
					}
				case 2:
					switch {
					case !held:
						require.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", l.Unlock)
					case len(line) > 0:
						line[0].finish(opOutput{}) // handed over: still held
						line = line[1:]
						l.Unlock()
					default:
						held = false
						l.Unlock()
					}
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						line = removeWaiter(line, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					require.Equal(t, context.Canceled, l.Lock(cancelled()))
				}
				calls = checkPending(t, calls)
				require.Equal(t, held, l.Locked())
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

func FuzzEvent(f *testing.F) {
	f.Add([]byte{2, 0, 2, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0, 0})
	f.Add([]byte{4, 0, 2, 0, 3, 0, 0, 0, 5, 0, 1, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var e ctxsync.Event
			set := false
			var line, calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%6, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					set = true
					for _, p := range line {
						p.finish(opOutput{})
					}
					line = nil
					e.Set()
				case 1:
					set = false
					e.Clear()
				case 2:
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: e.Wait(ctx)} })
					if set {
						p.finish(opOutput{})
					} else {
						line = append(line, p)
					}
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						line = removeWaiter(line, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					select {
					case <-e.Done():
						require.True(t, set, "Done closed while not set")
					default:
						require.False(t, set, "Done open while set")
					}
				case 5:
					want := context.Canceled
					if set {
						want = nil
					}
					require.Equal(t, want, e.Wait(cancelled()))
				}
				calls = checkPending(t, calls)
				require.Equal(t, set, e.IsSet())
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

func FuzzBarrier(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 4, 0})
	f.Add([]byte{2, 0, 0, 3, 0, 0, 0, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		parties := int(data[0]%4) + 1
		data = data[1:]
		synctest.Test(t, func(t *testing.T) {
			b := ctxsync.NewBarrier(parties)
			broken := false
			var line, calls []*pending
			sendAway := func() {
				for _, p := range line {
					p.finish(opOutput{n: -1, err: ctxsync.ErrBrokenBarrier})
				}
				line = nil
			}
			for len(data) >= 2 {
				op, arg := data[0]%5, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { i, err := b.Wait(ctx); return opOutput{i, err} })
					switch {
					case broken:
						p.finish(opOutput{n: -1, err: ctxsync.ErrBrokenBarrier})
					case len(line)+1 == parties:
						for i, w := range line {
							w.finish(opOutput{n: i})
						}
						p.finish(opOutput{n: parties - 1})
						line = nil
					default:
						line = append(line, p)
					}
				case 1:
					if p := cancelPending(calls, arg); p != nil {
						line = removeWaiter(line, p)
						p.finish(opOutput{n: -1, err: context.Canceled})
					}
				case 2:
					sendAway()
					broken = false
					b.Reset()
				case 3:
					sendAway()
					broken = true
					b.Abort()
				case 4:
					i, err := b.Wait(cancelled())
					want := opOutput{n: -1, err: context.Canceled}
					if broken {
						want.err = ctxsync.ErrBrokenBarrier
					}
					require.Equal(t, want, opOutput{i, err})
				}
				calls = checkPending(t, calls)
				require.Equal(t, len(line), b.Waiting())
				require.Equal(t, broken, b.Broken())
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{n: -1, err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

// condWaiter is a goroutine of FuzzCondition: it locks, waits once, and
// unlocks.
type condWaiter struct {
	*pending
	id        int
	initial   bool  // still to get the lock before it can Wait
	cancelled bool  // its context has ended
	result    error // what its Wait returns once it has the lock back
}

// condSpec is the sequential model of a Condition and its Lock. At rest
// only the fuzzing goroutine ("main") can hold the lock: a waiter that gets
// it either starts waiting or returns and unlocks.
type condSpec struct {
	mainHolds bool
	lockLine  []*condWaiter // goroutines waiting for the lock, in order
	condLine  []*condWaiter // goroutines waiting for a notification
	returned  []int         // waiter ids in the order their Wait returned
}

// release lets go of the lock and runs the hand-offs it causes.
func (m *condSpec) release() {
	for len(m.lockLine) > 0 {
		w := m.lockLine[0]
		m.lockLine = m.lockLine[1:]
		if w.initial {
			w.initial = false
			if !w.cancelled {
				m.condLine = append(m.condLine, w)
				continue
			}
			w.result = context.Canceled // a done context: Wait returns at once
		}
		w.finish(opOutput{err: w.result})
		m.returned = append(m.returned, w.id)
	}
}

// lockFor puts w in line for the lock, and hands the lock over at once if
// it is free.
func (m *condSpec) lockFor(w *condWaiter) {
	m.lockLine = append(m.lockLine, w)
	if !m.mainHolds {
		m.release()
	}
}

// cancelWaiter ends w's context. A waiter waiting for a notification
// leaves that line and takes the lock back; one in line for the lock stays
// there (a notified waiter keeps its notification; one that has not started
// waiting will find its context done).
func (m *condSpec) cancelWaiter(w *condWaiter) {
	w.cancel()
	if w.over || w.cancelled {
		return
	}
	w.cancelled = true
	if i := slices.Index(m.condLine, w); i >= 0 {
		m.condLine = slices.Delete(m.condLine, i, i+1)
		w.result = context.Canceled
		m.lockFor(w)
	}
}

func FuzzCondition(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 3, 1, 2, 0, 1, 0, 4, 0, 2, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0, 5, 1, 3, 9, 2, 0, 6, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 5, 0, 5, 1, 4, 0, 2, 0, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var c ctxsync.Condition
			m := &condSpec{}
			var logMu sync.Mutex
			var returned []int
			var waiters []*condWaiter
			var calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%7, int(data[1])
				data = data[2:]
				switch op {
				case 0: // a new waiter: Lock, Wait, Unlock
					id := len(waiters)
					p := startCall(&calls, 0, func(ctx context.Context) opOutput {
						_ = c.Lock(context.Background())
						defer c.Unlock()
						err := c.Wait(ctx)
						logMu.Lock()
						returned = append(returned, id)
						logMu.Unlock()
						return opOutput{err: err}
					})
					w := &condWaiter{pending: p, id: id, initial: true}
					waiters = append(waiters, w)
					m.lockFor(w)
				case 1: // main takes the lock
					want := !m.mainHolds
					m.mainHolds = m.mainHolds || want
					require.Equal(t, want, c.TryLock())
				case 2: // main lets go of it
					if !m.mainHolds {
						require.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", c.Unlock)
						break
					}
					m.mainHolds = false
					c.Unlock()
					m.release()
				case 3, 4: // Notify(arg % 3), NotifyAll
					if !m.mainHolds {
						require.Panics(t, func() { c.Notify(1) })
						break
					}
					n := arg % 3
					if op == 4 {
						n = len(m.condLine)
						c.NotifyAll()
					} else {
						c.Notify(n)
					}
					for ; n > 0 && len(m.condLine) > 0; n-- {
						w := m.condLine[0]
						m.condLine = m.condLine[1:]
						w.result = nil
						m.lockLine = append(m.lockLine, w)
					}
				case 5: // a waiter's context ends
					if len(waiters) > 0 {
						m.cancelWaiter(waiters[arg%len(waiters)])
					}
				case 6: // Wait with a done context keeps the lock
					if m.mainHolds {
						require.Equal(t, context.Canceled, c.Wait(cancelled()))
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.mainHolds, c.Locked())
				logMu.Lock()
				require.Equal(t, m.returned, returned, "the order in which waiters returned")
				logMu.Unlock()
			}
			// Let everyone go: end every waiter's context, then the lock.
			for _, w := range waiters {
				m.cancelWaiter(w)
			}
			if m.mainHolds {
				m.mainHolds = false
				c.Unlock()
				m.release()
			}
			checkPending(t, calls)
			require.False(t, c.Locked())
		})
	})
}
