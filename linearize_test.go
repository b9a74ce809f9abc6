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

func TestLinearizableQueues(t *testing.T) {
	const capacity = 3
	kinds := []struct {
		name string
		make func() *ctxsync.Queue[int]
		next func([]int) int
	}{
		{"FIFO", func() *ctxsync.Queue[int] { return ctxsync.NewQueue[int](capacity) }, func([]int) int { return 0 }},
		{"LIFO", func() *ctxsync.Queue[int] { return ctxsync.NewLifoQueue[int](capacity) }, func(items []int) int { return len(items) - 1 }},
		{"Priority", func() *ctxsync.Queue[int] { return ctxsync.NewPriorityQueue(capacity, cmp.Less[int]) }, func(items []int) int {
			return slices.Index(items, slices.Min(items))
		}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			model := queueModel(capacity, kind.next)
			for h := range linearizeHistories {
				q := kind.make()
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
				result := porcupine.CheckOperationsTimeout(model, rec.ops, 10*time.Second)
				require.NotEqual(t, porcupine.Illegal, result, "history %d (%d operations) is not linearizable", h, len(rec.ops))
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
		result := porcupine.CheckOperationsTimeout(model, rec.ops, 10*time.Second)
		require.NotEqual(t, porcupine.Illegal, result, "history %d is not linearizable", h)
		require.Equal(t, permits, s.Available())
	}
}
