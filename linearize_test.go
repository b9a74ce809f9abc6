package ctxsync_test

// Linearizability: concurrent histories of Queue and Semaphore operations,
// with random cancellations, checked with porcupine against sequential
// models. A failed call must have had no effect (R3), so the models let it
// happen in any state without changing anything; every other outcome is
// checked strictly.

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// linearizeHistories is how many random histories each model checks: a few
// in normal runs, 1,000 with -tags stress.
const linearizeHistories = 10 * stressScale

type opKind int

const (
	opPut opKind = iota
	opTryPut
	opGet
	opTryGet
	opLen
	opAcquire
	opTryAcquire
	opRelease
	opAvailable
	opGetMany // GetMany or TryGetMany with a dst of n
)

type opInput struct {
	kind opKind
	n    int // the item put, or the permits asked for or released
}

type opOutput struct {
	n   int // the item got, or the length or permits seen
	err error
}

// recorder collects a history; its clock orders calls and returns.
type recorder struct {
	clock atomic.Int64
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) do(client int, in opInput, call func() opOutput) {
	r.doAny(client, in, func() any { return call() })
}

// doAny records a call whose output is of any type the model knows.
func (r *recorder) doAny(client int, in opInput, call func() any) {
	start := r.clock.Add(1)
	out := call()
	end := r.clock.Add(1)
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: start, Output: out, Return: end})
	r.mu.Unlock()
}

// opContext returns a context for one blocking call: at random cancelled
// after a few yields, and always ended by a short timeout so that every
// history finishes. A call that ends on its context had no effect, so the
// timing changes which history is recorded, never whether it is correct.
func opContext(rng *rand.Rand) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	if rng.IntN(3) == 0 {
		go cancelAfterYields(cancel, rng.IntN(8))
	}
	return ctx, cancel
}

// queueModel is the sequential specification of a queue whose Get takes
// the item at index next(items) first.
func queueModel(capacity int, next func(items []int) int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return []int(nil) },
		Step: func(state, input, output any) (bool, any) {
			items := state.([]int)
			if many, ok := output.(manyOutput); ok {
				return stepGetMany(items, input.(opInput), many, next)
			}
			in, out := input.(opInput), output.(opOutput)
			full := capacity > 0 && len(items) >= capacity
			switch {
			case out.err != nil && out.err != ctxsync.ErrQueueFull && out.err != ctxsync.ErrQueueEmpty:
				return true, items // ended by its context: no effect
			case in.kind == opPut || in.kind == opTryPut:
				if out.err == ctxsync.ErrQueueFull {
					return full, items
				}
				return !full, append(slices.Clip(items), in.n)
			case in.kind == opGet || in.kind == opTryGet:
				if out.err == ctxsync.ErrQueueEmpty {
					return len(items) == 0, items
				}
				if len(items) == 0 {
					return false, items
				}
				i := next(items)
				return items[i] == out.n, slices.Delete(slices.Clone(items), i, i+1)
			case in.kind == opLen:
				return out.n == len(items), items
			}
			return false, items
		},
		Equal: func(a, b any) bool { return slices.Equal(a.([]int), b.([]int)) },
		DescribeOperation: func(input, output any) string {
			return fmt.Sprintf("%v -> %v", input, output)
		},
	}
}

// manyOutput is the outcome of a GetMany or TryGetMany: the batch taken.
type manyOutput struct {
	items []int
	err   error
}

// stepGetMany is the model's GetMany(in.n) or TryGetMany: it takes the
// min(in.n, len(items)) items there, in Get order, at one instant.
func stepGetMany(items []int, in opInput, out manyOutput, next func([]int) int) (bool, any) {
	switch {
	case out.err == ctxsync.ErrQueueEmpty:
		return len(items) == 0, items
	case out.err != nil:
		return true, items // ended by its context: no effect
	case len(items) == 0 || len(out.items) > min(in.n, len(items)):
		return false, items
	case len(out.items) < min(in.n, len(items)):
		return false, items
	}
	rest := slices.Clone(items)
	for _, v := range out.items {
		i := next(rest)
		if rest[i] != v {
			return false, items
		}
		rest = slices.Delete(rest, i, i+1)
	}
	return true, rest
}

// linearizeQueueKind is one queue the linearizability checks run on.
type linearizeQueueKind struct {
	name     string
	capacity int
	make     func(capacity int) *ctxsync.Queue[int]
	next     func([]int) int
	ring     bool // the FIFO queue's lock-free ring path (queue_ring.go)
}

func fifoNext([]int) int { return 0 }

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

// requireLinearizable checks a history, and logs it if it is not
// linearizable.
func requireLinearizable(t *testing.T, model porcupine.Model, ops []porcupine.Operation, what string) {
	t.Helper()
	result := porcupine.CheckOperationsTimeout(model, ops, 10*time.Second)
	if result == porcupine.Illegal {
		sorted := slices.SortedFunc(slices.Values(ops), func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range sorted {
			t.Logf("client %d [%3d, %3d] %+v -> %+v", op.ClientId, op.Call, op.Return, op.Input, op.Output)
		}
	}
	require.NotEqual(t, porcupine.Illegal, result, "%s (%d operations) is not linearizable", what, len(ops))
}

func TestLinearizableQueues(t *testing.T) {
	for _, kind := range linearizeQueueKinds() {
		t.Run(kind.name, func(t *testing.T) {
			capacity := kind.capacity
			model := queueModel(capacity, kind.next)
			for h := range linearizeHistories {
				q := kind.newQueue(t)
				var rec recorder
				var wg sync.WaitGroup
				for client := range 4 {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(h), uint64(client)))
						for i := range 12 {
							item := client*1000 + i // distinct, so priorities never tie
							switch rng.IntN(5) {
							case 0:
								ctx, cancel := opContext(rng)
								rec.do(client, opInput{opPut, item}, func() opOutput { return opOutput{err: q.Put(ctx, item)} })
								cancel()
							case 1:
								rec.do(client, opInput{opTryPut, item}, func() opOutput { return opOutput{err: q.TryPut(item)} })
							case 2:
								ctx, cancel := opContext(rng)
								rec.do(client, opInput{kind: opGet}, func() opOutput { v, err := q.Get(ctx); return opOutput{v, err} })
								cancel()
							case 3:
								rec.do(client, opInput{kind: opTryGet}, func() opOutput { v, err := q.TryGet(); return opOutput{v, err} })
							case 4:
								rec.do(client, opInput{kind: opLen}, func() opOutput { return opOutput{n: q.Len()} })
							}
						}
					})
				}
				wg.Wait()
				requireLinearizable(t, model, rec.ops, fmt.Sprintf("history %d", h))
			}
		})
	}
}

// Histories with GetMany and TryGetMany among Puts and Gets: a batch is
// what was there at one instant, up to len(dst), in Get order.
//
// A GetMany that parks is handed one item, and then takes what has come
// since as a TryGetMany would (GetMany, getManyRing): two instants, so
// its batch of more than one is not always what was there at one instant
// (see TestLinearizableQueueGetManyBlockingBatches in
// linearize_getmany_bugs_test.go, -tags ringbugs). Here the blocking
// GetMany asks for one item; TryGetMany, which never parks, asks for up to
// four.
func TestLinearizableQueueGetMany(t *testing.T) {
	linearizeGetMany(t, 1)
}

// linearizeGetMany checks histories whose blocking GetMany calls ask for
// 1..blockingMax items.
func linearizeGetMany(t *testing.T, blockingMax int) {
	for _, kind := range linearizeQueueKinds() {
		t.Run(kind.name, func(t *testing.T) {
			model := queueModel(kind.capacity, kind.next)
			for h := range linearizeHistories {
				q := kind.newQueue(t)
				var rec recorder
				var wg sync.WaitGroup
				for client := range 4 {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+400))
						for i := range 12 {
							item := client*1000 + i
							k := 1 + rng.IntN(4)
							switch rng.IntN(6) {
							case 0, 1:
								ctx, cancel := opContext(rng)
								rec.do(client, opInput{opPut, item}, func() opOutput { return opOutput{err: q.Put(ctx, item)} })
								cancel()
							case 2:
								rec.do(client, opInput{opTryPut, item}, func() opOutput { return opOutput{err: q.TryPut(item)} })
							case 3:
								k := 1 + rng.IntN(blockingMax)
								ctx, cancel := opContext(rng)
								rec.doAny(client, opInput{opGetMany, k}, func() any {
									dst := make([]int, k)
									n, err := q.GetMany(ctx, dst)
									return manyOutput{dst[:n], err}
								})
								cancel()
							case 4:
								rec.doAny(client, opInput{opGetMany, k}, func() any {
									dst := make([]int, k)
									n, err := q.TryGetMany(dst)
									return manyOutput{dst[:n], err}
								})
							case 5:
								ctx, cancel := opContext(rng)
								rec.do(client, opInput{kind: opGet}, func() opOutput { v, err := q.Get(ctx); return opOutput{v, err} })
								cancel()
							}
						}
					})
				}
				wg.Wait()
				requireLinearizable(t, model, rec.ops, fmt.Sprintf("history %d", h))
			}
		})
	}
}

func TestLinearizableSemaphore(t *testing.T) {
	const permits = 3
	model := porcupine.Model{
		Init: func() any { return permits },
		Step: func(state, input, output any) (bool, any) {
			avail := state.(int)
			in, out := input.(opInput), output.(opOutput)
			switch in.kind {
			case opAcquire:
				if out.err != nil {
					return true, avail // no effect
				}
				return avail >= in.n, avail - in.n
			case opTryAcquire:
				if out.n == 0 {
					// Refused: legal when short of permits, and also while
					// others wait, which this model does not see.
					return true, avail
				}
				return avail >= in.n, avail - in.n
			case opRelease:
				return true, avail + in.n
			case opAvailable:
				return out.n == avail, avail
			}
			return false, avail
		},
	}
	for h := range linearizeHistories {
		s := ctxsync.NewSemaphore(permits)
		var rec recorder
		var wg sync.WaitGroup
		for client := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+100))
				held := 0
				for range 12 {
					n := rng.IntN(3)
					switch rng.IntN(4) {
					case 0:
						ctx, cancel := opContext(rng)
						rec.do(client, opInput{opAcquire, n}, func() opOutput {
							err := s.AcquireN(ctx, n)
							if err == nil {
								held += n
							}
							return opOutput{err: err}
						})
						cancel()
					case 1:
						rec.do(client, opInput{opTryAcquire, n}, func() opOutput {
							if s.TryAcquireN(n) {
								held += n
								return opOutput{n: 1}
							}
							return opOutput{}
						})
					case 2:
						give := min(n, held)
						held -= give
						rec.do(client, opInput{opRelease, give}, func() opOutput { s.ReleaseN(give); return opOutput{} })
					case 3:
						rec.do(client, opInput{kind: opAvailable}, func() opOutput { return opOutput{n: s.Available()} })
					}
				}
				if held > 0 {
					rec.do(client, opInput{opRelease, held}, func() opOutput { s.ReleaseN(held); return opOutput{} })
				}
			})
		}
		wg.Wait()
		requireLinearizable(t, model, rec.ops, fmt.Sprintf("history %d", h))
		require.Equal(t, permits, s.Available())
	}
}

// Blocking GetMany calls asking for up to 4 items: a GetMany that parks is
// handed one item, and returns that one alone, so its batch is made at one
// instant (before the fix it also took what had come since, and porcupine
// found such histories within a few).
func TestLinearizableQueueGetManyBlockingBatches(t *testing.T) {
	linearizeGetMany(t, 4)
}
