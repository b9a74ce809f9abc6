package ctxsync_test

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

// The RWLock's operations, numbered after those of linearize_test.go.
const (
	opRLock opKind = iota + 100
	opTryRLock
	opRUnlock
	opWLock
	opTryWLock
	opWUnlock
	opDowngrade
	opReaders
	opLocked
)

// rwState is what the sequential specification of an RWLock knows: who
// holds it. It does not see the line, so a refused Try call is legal in
// any state (someone may be waiting); every grant is checked strictly.
type rwState struct {
	writer  bool
	readers int
}

var rwModel = porcupine.Model{
	Init: func() any { return rwState{} },
	Step: func(state, input, output any) (bool, any) {
		st := state.(rwState)
		in, out := input.(opInput), output.(opOutput)
		free := !st.writer && st.readers == 0
		switch in.kind {
		case opRLock, opTryRLock:
			if out.err != nil || (in.kind == opTryRLock && out.n == 0) {
				return true, st // ended by its context, or refused: no effect
			}
			return !st.writer, rwState{readers: st.readers + 1}
		case opWLock, opTryWLock:
			if out.err != nil || (in.kind == opTryWLock && out.n == 0) {
				return true, st
			}
			return free, rwState{writer: true}
		case opRUnlock:
			return st.readers > 0, rwState{readers: st.readers - 1}
		case opWUnlock:
			return st.writer, rwState{}
		case opDowngrade:
			return st.writer, rwState{readers: 1}
		case opReaders:
			return out.n == st.readers, st
		case opLocked:
			return (out.n == 1) == st.writer, st
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v -> %v", input, output)
	},
}

// Random concurrent histories of every RWLock call, with cancellations,
// are linearizable: no grant is made that the lock's state forbids, no
// failed call has an effect, and Readers and Locked say what is held.
func TestLinearizableRWLock(t *testing.T) {
	for h := range linearizeHistories {
		var rw ctxsync.RWLock
		var rec recorder
		var wg sync.WaitGroup
		start := make(chan struct{})
		for client := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+200))
				reads, write := 0, false // what this client holds
				<-start                  // all together, so that calls overlap
				for range 12 {
					// Hold what is held a little, so that others must
					// wait for it and their calls overlap.
					for range rng.IntN(4) {
						runtime.Gosched()
					}
					switch k := rng.IntN(8); {
					case write && k < 4:
						// A writer gives up its lock, one way or the other.
						if k < 2 {
							rec.do(client, opInput{kind: opDowngrade}, func() opOutput { rw.Downgrade(); return opOutput{} })
							write, reads = false, reads+1
						} else {
							rec.do(client, opInput{kind: opWUnlock}, func() opOutput { rw.Unlock(); return opOutput{} })
							write = false
						}
					case reads > 0 && k < 3:
						rec.do(client, opInput{kind: opRUnlock}, func() opOutput { rw.RUnlock(); return opOutput{} })
						reads--
					case k == 6:
						rec.do(client, opInput{kind: opReaders}, func() opOutput { return opOutput{n: rw.Readers()} })
					case k == 7:
						rec.do(client, opInput{kind: opLocked}, func() opOutput {
							if rw.Locked() {
								return opOutput{n: 1}
							}
							return opOutput{}
						})
					case write:
						// A writer asks for nothing more: it would wait for
						// itself.
					case reads > 0:
						// A reader only takes more read locks by Try: a
						// blocking RLock behind a waiting writer would wait
						// for itself too.
						rec.do(client, opInput{kind: opTryRLock}, func() opOutput {
							if rw.TryRLock() {
								reads++
								return opOutput{n: 1}
							}
							return opOutput{}
						})
					default:
						ctx, cancel := opContext(rng)
						switch rng.IntN(4) {
						case 0:
							rec.do(client, opInput{kind: opRLock}, func() opOutput {
								err := rw.RLock(ctx)
								if err == nil {
									reads++
								}
								return opOutput{err: err}
							})
						case 1:
							rec.do(client, opInput{kind: opWLock}, func() opOutput {
								err := rw.Lock(ctx)
								write = err == nil
								return opOutput{err: err}
							})
						case 2:
							rec.do(client, opInput{kind: opTryRLock}, func() opOutput {
								if rw.TryRLock() {
									reads++
									return opOutput{n: 1}
								}
								return opOutput{}
							})
						case 3:
							rec.do(client, opInput{kind: opTryWLock}, func() opOutput {
								if rw.TryLock() {
									write = true
									return opOutput{n: 1}
								}
								return opOutput{}
							})
						}
						cancel()
					}
				}
				// Give back whatever is still held, so the history ends
				// with the lock free.
				if write {
					rec.do(client, opInput{kind: opWUnlock}, func() opOutput { rw.Unlock(); return opOutput{} })
				}
				for range reads {
					rec.do(client, opInput{kind: opRUnlock}, func() opOutput { rw.RUnlock(); return opOutput{} })
				}
			})
		}
		close(start)
		wg.Wait()
		result := porcupine.CheckOperationsTimeout(rwModel, rec.ops, 10*time.Second)
		require.NotEqual(t, porcupine.Illegal, result, "history %d (%d operations) is not linearizable", h, len(rec.ops))
		require.False(t, rw.Locked())
		require.Zero(t, rw.Readers())
		require.Zero(t, rw.Waiting())
	}
}
