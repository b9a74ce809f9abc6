package ctxsync_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/ctxsync/ctxsync"
)

// keyedOp is a call on one key of a KeyedSemaphore.
type keyedOp struct {
	kind opKind
	key  int
	n    int
}

// Linearizability of KeyedSemaphore: concurrent histories over a few keys,
// with tickets and random cancellations, checked against a model that is
// one BoundedSemaphore per key. A failed call had no effect, so the model
// lets it happen in any state.
func TestLinearizableKeyedSemaphore(t *testing.T) {
	const permits, keys = 2, 2
	model := porcupine.Model{
		Init: func() any { return []int{permits, permits} },
		Step: func(state, input, output any) (bool, any) {
			avail := state.([]int)
			in, out := input.(keyedOp), output.(opOutput)
			a := avail[in.key]
			with := func(v int) []int {
				next := slices.Clone(avail)
				next[in.key] = v
				return next
			}
			switch in.kind {
			case opAcquire:
				if out.err != nil {
					return true, avail
				}
				return a >= in.n, with(a - in.n)
			case opTryAcquire:
				if out.n == 0 {
					return true, avail // refused: short, or others wait
				}
				return a >= in.n, with(a - in.n)
			case opRelease:
				return a+in.n <= permits, with(a + in.n)
			case opAvailable:
				return out.n == a, avail
			}
			return false, avail
		},
		Equal: func(a, b any) bool { return slices.Equal(a.([]int), b.([]int)) },
		DescribeOperation: func(input, output any) string {
			return fmt.Sprintf("%+v -> %+v", input, output)
		},
	}
	for h := range linearizeHistories {
		s := ctxsync.NewKeyedSemaphore[int](permits)
		var rec recorder
		var wg sync.WaitGroup
		for client := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+2300))
				var held [keys]int
				for range 12 {
					k, n := rng.IntN(keys), rng.IntN(permits+1)
					switch rng.IntN(5) {
					case 0:
						ctx, cancel := opContext(rng)
						rec.doKeyed(client, keyedOp{opAcquire, k, n}, func() any {
							err := s.AcquireN(ctx, k, n)
							if err == nil {
								held[k] += n
							}
							return opOutput{err: err}
						})
						cancel()
					case 1:
						// A ticket given up on after a few yields: an
						// acquire that either took its permits or had no
						// effect.
						rec.doKeyed(client, keyedOp{opAcquire, k, n}, func() any {
							tk := s.AcquireTicket(k, n)
							for range rng.IntN(4) {
								select {
								case <-tk.Ready():
								default:
									runtime.Gosched()
								}
							}
							if tk.Stop() {
								return opOutput{err: ctxsync.ErrTicketStopped}
							}
							held[k] += n
							return opOutput{}
						})
					case 2:
						rec.doKeyed(client, keyedOp{opTryAcquire, k, n}, func() any {
							if s.TryAcquireN(k, n) {
								held[k] += n
								return opOutput{n: 1}
							}
							return opOutput{}
						})
					case 3:
						give := min(n, held[k])
						held[k] -= give
						rec.doKeyed(client, keyedOp{opRelease, k, give}, func() any { s.ReleaseN(k, give); return opOutput{} })
					case 4:
						rec.doKeyed(client, keyedOp{opAvailable, k, 0}, func() any { return opOutput{n: s.Available(k)} })
					}
				}
				for k, n := range held {
					if n > 0 {
						rec.doKeyed(client, keyedOp{opRelease, k, n}, func() any { s.ReleaseN(k, n); return opOutput{} })
					}
				}
			})
		}
		wg.Wait()
		requireLinearizable(t, model, rec.ops, fmt.Sprintf("history %d", h))
		if s.Len() != 0 {
			t.Fatalf("history %d: %d keys left in memory", h, s.Len())
		}
	}
}

// doKeyed records a call on a keyed primitive, as doAny does.
func (r *recorder) doKeyed(client int, in keyedOp, call func() any) {
	start := r.clock.Add(1)
	out := call()
	end := r.clock.Add(1)
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: start, Output: out, Return: end})
	r.mu.Unlock()
}
