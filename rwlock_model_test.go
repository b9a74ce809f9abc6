package ctxsync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// The kinds of call in rwSpec's line, kept in pending.n.
const (
	rwCallRead = iota
	rwCallWrite
)

// rwSpec is the sequential model of an RWLock and its one line of readers
// and writers. The locks granted are held by the fuzzing goroutine, which
// gives them back: read locks are only counted, so any goroutine may.
type rwSpec struct {
	writer  bool
	readers int
	line    []*pending
}

// settle grants from the head of the line what the lock allows: readers
// up to the first writer, or that writer once nobody holds the lock.
func (m *rwSpec) settle() {
	for len(m.line) > 0 && !m.writer {
		p := m.line[0]
		if p.n == rwCallWrite {
			if m.readers > 0 {
				return
			}
			m.writer = true
		} else {
			m.readers++
		}
		m.line = m.line[1:]
		p.finish(opOutput{})
	}
}

// request is an RLock or a Lock arriving: granted at once if nobody waits
// and the lock lets it in, else at the end of the line.
func (m *rwSpec) request(p *pending) {
	m.line = append(m.line, p)
	if len(m.line) == 1 {
		m.settle()
	}
}

func FuzzRWLock(f *testing.F) {
	// Readers batched behind a writer, a writer behind them, Unlock.
	f.Add([]byte{3, 0, 2, 0, 2, 0, 3, 0, 2, 0, 5, 0, 4, 0, 4, 0, 5, 0, 4, 0})
	// A head writer cancelled with readers behind it.
	f.Add([]byte{2, 0, 3, 0, 2, 0, 2, 0, 7, 1, 4, 0, 4, 0, 4, 0})
	// Downgrade with readers and a writer waiting.
	f.Add([]byte{1, 0, 2, 0, 3, 0, 2, 0, 6, 0, 0, 0, 1, 0, 4, 0, 4, 0, 5, 0, 4, 0})
	// Misuse and done contexts.
	f.Add([]byte{4, 0, 5, 0, 6, 0, 8, 0, 9, 0, 0, 0, 5, 0, 6, 0, 4, 0, 4, 0})
	f.Fuzz(runRWLockModel)
}

// runRWLockModel runs the operations data encodes on an RWLock and on
// rwSpec side by side, in a synctest bubble, and fails at the first
// difference.
func runRWLockModel(t *testing.T, data []byte) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		m := &rwSpec{}
		var calls []*pending
		for len(data) >= 2 {
			op, arg := data[0]%10, int(data[1])
			data = data[2:]
			switch op {
			case 0: // TryRLock: no writer, nobody in line
				want := !m.writer && len(m.line) == 0
				if want {
					m.readers++
				}
				require.Equal(t, want, rw.TryRLock(), "TryRLock")
			case 1: // TryLock: nobody holds it, nobody in line
				want := !m.writer && m.readers == 0 && len(m.line) == 0
				m.writer = m.writer || want
				require.Equal(t, want, rw.TryLock(), "TryLock")
			case 2:
				m.request(startCall(&calls, rwCallRead, func(ctx context.Context) opOutput { return opOutput{err: rw.RLock(ctx)} }))
			case 3:
				m.request(startCall(&calls, rwCallWrite, func(ctx context.Context) opOutput { return opOutput{err: rw.Lock(ctx)} }))
			case 4:
				if m.readers == 0 {
					require.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", rw.RUnlock)
					break
				}
				m.readers--
				m.settle()
				rw.RUnlock()
			case 5:
				if !m.writer {
					require.PanicsWithValue(t, "ctxsync: Unlock of RWLock without the write lock", rw.Unlock)
					break
				}
				m.writer = false
				m.settle()
				rw.Unlock()
			case 6:
				if !m.writer {
					require.PanicsWithValue(t, "ctxsync: Downgrade of RWLock without the write lock", rw.Downgrade)
					break
				}
				m.writer = false
				m.readers++
				m.settle()
				rw.Downgrade()
			case 7: // cancel a call; if it was waiting, it leaves the line
				if p := cancelPending(calls, arg); p != nil {
					m.line = removeWaiter(m.line, p)
					p.finish(opOutput{err: context.Canceled})
					m.settle()
				}
			case 8: // R1: a done context changes nothing
				require.Equal(t, context.Canceled, rw.RLock(cancelled()))
			case 9:
				require.Equal(t, context.Canceled, rw.Lock(cancelled()))
			}
			calls = checkPending(t, calls)
			require.Equal(t, m.writer, rw.Locked(), "Locked")
			require.Equal(t, m.readers, rw.Readers(), "Readers")
			require.Equal(t, len(m.line), rw.Waiting(), "Waiting")
		}
		// Let every call still waiting go, from the back of the line,
		// so that no one leaving lets anyone else in.
		for i := len(m.line) - 1; i >= 0; i-- {
			p := m.line[i]
			p.cancel()
			p.finish(opOutput{err: context.Canceled})
			m.line = m.line[:i]
			calls = checkPending(t, calls)
		}
		require.Empty(t, calls)
	})
}

// The RWLock's operations, numbered after the shared ones of model_test.go.
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
		requireLinearizable(t, rwModel, rec.ops, fmt.Sprintf("history %d", h))
		require.False(t, rw.Locked())
		require.Zero(t, rw.Readers())
		require.Zero(t, rw.Waiting())
	}
}
