package ctxsync_test

// Linearizability with tickets: the histories of linearize_test.go, with
// tickets among the calls. A ticket waited for in a select and stopped when
// the caller gives up is one operation, from its making to the Stop or the
// receive from Ready: it either had its whole effect (granted, or a Stop
// that returned false with a nil Err) or none (a Stop that returned true).

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// awaitTicket waits for tk in a select with a short timer, or gives up
// after a few yields, and reports whether the caller holds the grant: Ready
// came, or Stop came too late and Err is nil.
func awaitTicket(rng *rand.Rand, tk ticketLike) bool {
	if rng.IntN(3) == 0 {
		for range rng.IntN(8) {
			runtime.Gosched() // give up soon, wherever the grant is
		}
	} else {
		timer := time.NewTimer(2 * time.Millisecond)
		defer timer.Stop()
		select {
		case <-tk.Ready():
			return tk.Err() == nil
		case <-timer.C:
		}
	}
	return !tk.Stop() && tk.Err() == nil
}

func TestLinearizableQueueTickets(t *testing.T) {
	for _, kind := range linearizeQueueKinds() {
		t.Run(kind.name, func(t *testing.T) {
			model := queueModel(kind.capacity, kind.next)
			for h := range linearizeHistories {
				q := kind.newQueue(t)
				var rec recorder
				var wg sync.WaitGroup
				for client := range 4 {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+200))
						for i := range 12 {
							item := client*1000 + i // distinct, so priorities never tie
							switch rng.IntN(5) {
							case 0:
								ctx, cancel := opContext(rng)
								rec.do(client, opInput{opPut, item}, func() opOutput { return opOutput{err: q.Put(ctx, item)} })
								cancel()
							case 1:
								rec.do(client, opInput{opPut, item}, func() opOutput {
									if awaitTicket(rng, q.PutTicket(item)) {
										return opOutput{}
									}
									return opOutput{err: ctxsync.ErrTicketStopped}
								})
							case 2:
								ctx, cancel := opContext(rng)
								rec.do(client, opInput{kind: opGet}, func() opOutput { v, err := q.Get(ctx); return opOutput{v, err} })
								cancel()
							case 3:
								rec.do(client, opInput{kind: opGet}, func() opOutput {
									g := q.GetTicket()
									if awaitTicket(rng, g) {
										return opOutput{n: g.Item()}
									}
									return opOutput{err: ctxsync.ErrTicketStopped}
								})
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

func TestLinearizableSemaphoreTickets(t *testing.T) {
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
			case opRelease:
				return true, avail + in.n
			case opAvailable:
				return out.n == avail, avail
			}
			return false, avail
		},
	}
	for h := range linearizeHistories {
		s := ctxsync.NewBoundedSemaphore(permits)
		var rec recorder
		var wg sync.WaitGroup
		for client := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+300))
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
						rec.do(client, opInput{opAcquire, n}, func() opOutput {
							if awaitTicket(rng, s.AcquireTicket(n)) {
								held += n
								return opOutput{}
							}
							return opOutput{err: ctxsync.ErrTicketStopped}
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
		require.Equal(t, permits, s.Available(), "every permit is back")
	}
}
