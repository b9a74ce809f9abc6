package ctxsync_test

// Fuzz targets for KeyedLock and KeyedSemaphore against sequential models:
// each key is modelled as its own Lock or BoundedSemaphore with its line,
// and a key counts in Len exactly while it is held or waited for. As in
// fuzz_test.go, every step runs in a testing/synctest bubble, so after each
// step every goroutine has either finished or is parked.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// fuzzKeys is how many keys the keyed fuzz targets spread their calls over.
const fuzzKeys = 3

// startTicketCall runs a ticket as a pending call: it waits for Ready, and
// when its context ends it stops the ticket as a caller would.
func startTicketCall(calls *[]*pending, n int, tk *ctxsync.Ticket) *pending {
	return startCall(calls, n, func(ctx context.Context) opOutput {
		select {
		case <-tk.Ready():
			return opOutput{err: tk.Err()}
		case <-ctx.Done():
			if tk.Stop() {
				return opOutput{err: ctx.Err()}
			}
			return opOutput{err: tk.Err()}
		}
	})
}

func FuzzKeyedSemaphore(f *testing.F) {
	f.Add([]byte{2, 1, 0, 2, 1, 0, 1, 1, 1, 1, 2, 2, 0, 1, 3, 0, 2, 1, 1, 5, 1, 0})
	f.Add([]byte{1, 0, 1, 1, 1, 1, 1, 5, 1, 1, 3, 1, 2, 1, 1, 2, 0, 1})
	f.Add([]byte{3, 6, 2, 2, 6, 0, 2, 1, 3, 3, 0, 2, 0, 3, 0, 4, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		bound := int(data[0] % 4)
		data = data[1:]
		s := ctxsync.NewKeyedSemaphore[int](bound)
		var keys [fuzzKeys]semaSpec
		for k := range keys {
			keys[k] = semaSpec{avail: bound, bound: bound}
		}
		synctest.Test(t, func(t *testing.T) {
			var calls []*pending
			for len(data) >= 2 {
				op, k, n := data[0]%7, int(data[1]/8)%fuzzKeys, int(data[1]%5)
				data = data[2:]
				m := &keys[k]
				switch op {
				case 0: // TryAcquireN
					require.Equal(t, m.tryAcquire(n), s.TryAcquireN(k, n))
				case 1, 5: // AcquireN, or a ticket for n permits
					if op == 1 {
						m.join(startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, k, n)} }))
					} else {
						m.join(startTicketCall(&calls, n, s.AcquireTicket(k, n)))
					}
				case 2: // ReleaseN
					if m.avail+n > bound {
						require.PanicsWithValue(t, "ctxsync: KeyedSemaphore released more permits than the key holds", func() { s.ReleaseN(k, n) })
					} else {
						m.avail += n
						m.serve()
						s.ReleaseN(k, n)
					}
				case 3: // cancel a waiting call or ticket
					if p := cancelPending(calls, int(data0(data))); p != nil {
						for i := range keys {
							keys[i].line = removeWaiter(keys[i].line, p)
						}
						p.finish(opOutput{err: context.Canceled})
						for i := range keys {
							keys[i].serve()
						}
					}
				case 4: // a done context changes nothing
					err := s.AcquireN(cancelled(), k, n)
					if n > bound {
						require.Equal(t, ctxsync.ErrExceedsBound, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				case 6: // observers
					require.Equal(t, len(m.line), s.Waiting(k))
				}
				calls = checkPending(t, calls)
				live := 0
				for i := range keys {
					require.Equal(t, keys[i].avail, s.Available(i), "key %d", i)
					if keys[i].avail < bound || len(keys[i].line) > 0 {
						live++
					}
				}
				require.Equal(t, live, s.Len(), "a key takes memory exactly while held or waited for")
			}
			// One at a time: a ticket has no context, so one left waiting
			// is served when the request ahead of it leaves.
			for len(calls) > 0 {
				if p := cancelPending(calls, 0); p != nil {
					for i := range keys {
						keys[i].line = removeWaiter(keys[i].line, p)
					}
					p.finish(opOutput{err: context.Canceled})
					for i := range keys {
						keys[i].serve()
					}
				}
				calls = checkPending(t, calls)
			}
		})
	})
}

// data0 is the next byte of a fuzz input, or 0 once it is used up.
func data0(data []byte) byte {
	if len(data) == 0 {
		return 0
	}
	return data[0]
}

func FuzzKeyedLock(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 8, 5, 0, 2, 0, 3, 1, 2, 0, 2, 8, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 5, 0, 3, 0, 2, 0, 4, 16, 2, 0, 6, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var m ctxsync.KeyedLock[int]
			var held [fuzzKeys]bool
			var lines [fuzzKeys][]*pending
			var calls []*pending
			for len(data) >= 2 {
				op, k := data[0]%7, int(data[1]/8)%fuzzKeys
				data = data[2:]
				switch op {
				case 0:
					want := !held[k] && len(lines[k]) == 0
					held[k] = held[k] || want
					require.Equal(t, want, m.TryLock(k))
				case 1, 5:
					var p *pending
					if op == 1 {
						p = startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: m.Lock(ctx, k)} })
					} else {
						p = startTicketCall(&calls, 0, m.LockTicket(k))
					}
					if !held[k] && len(lines[k]) == 0 {
						held[k] = true
						p.finish(opOutput{})
					} else {
						lines[k] = append(lines[k], p)
					}
				case 2:
					switch {
					case !held[k]:
						require.PanicsWithValue(t, "ctxsync: KeyedLock.Unlock of unlocked key", func() { m.Unlock(k) })
					case len(lines[k]) > 0:
						lines[k][0].finish(opOutput{})
						lines[k] = lines[k][1:]
						m.Unlock(k)
					default:
						held[k] = false
						m.Unlock(k)
					}
				case 3:
					if p := cancelPending(calls, int(data0(data))); p != nil {
						for i := range lines {
							lines[i] = removeWaiter(lines[i], p)
						}
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					require.Equal(t, context.Canceled, m.Lock(cancelled(), k))
				case 6:
					require.Equal(t, len(lines[k]), m.Waiting(k))
				}
				calls = checkPending(t, calls)
				live := 0
				for i := range held {
					require.Equal(t, held[i], m.Locked(i), "key %d", i)
					if held[i] {
						live++
					}
				}
				require.Equal(t, live, m.Len(), "a key takes memory exactly while held or waited for")
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

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
