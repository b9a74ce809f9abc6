//go:build stress

package ctxsync_test

// FuzzRingSchedule hunts the interleavings of the ring's real code: the
// fuzz input is both a small program (two producers, two consumers, a
// capacity of 1 to 3, Try calls, batches, cancellations, a Shutdown) and a
// schedule, read one byte per preemption point that any goroutine reaches
// (preempt.go: every claim, stamp, flag raise and lower of the ring), each
// byte saying whether the goroutine there goes on, yields, pauses for a run
// of yields, or ends the context of one of the calls in flight. The
// history is checked with porcupine against the queue's sequential model
// with Shutdown, and every item put is taken or left exactly once.
//
// The goroutines run for real, so one input does not replay one
// interleaving exactly; it steers the run toward one, and the fuzzer keeps
// the inputs that reach new code. Run it with
//
//	go test -race -tags stress -run '^$' -fuzz FuzzRingSchedule -fuzztime 10m .

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// shutQueueState is the model's state: the items in Get order, and
// whether the queue is shut down.
type shutQueueState struct {
	items []int
	shut  bool
}

// shutQueueModel is the sequential specification of a bounded FIFO queue
// with Shutdown. A call that ended on its context had no effect (R3).
func shutQueueModel(capacity int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return shutQueueState{} },
		Step: func(state, input, output any) (bool, any) {
			st := state.(shutQueueState)
			in := input.(opInput)
			if many, ok := output.(manyOutput); ok {
				switch {
				case many.err == ctxsync.ErrQueueShutDown:
					return st.shut && len(st.items) == 0, st
				case many.err == ctxsync.ErrQueueEmpty:
					return !st.shut && len(st.items) == 0, st
				}
				ok, rest := stepGetMany(st.items, in, many, fifoNext)
				return ok, shutQueueState{rest.([]int), st.shut}
			}
			out := output.(opOutput)
			switch in.kind {
			case opShutdown:
				return true, shutQueueState{st.items, true}
			case opPut, opTryPut:
				switch {
				case out.err == ctxsync.ErrQueueShutDown:
					return st.shut, st
				case out.err == ctxsync.ErrQueueFull:
					return !st.shut && len(st.items) >= capacity, st
				case out.err != nil:
					return true, st // ended by its context
				}
				return !st.shut && len(st.items) < capacity, shutQueueState{append(slices.Clip(st.items), in.n), st.shut}
			case opGet, opTryGet:
				switch {
				case out.err == ctxsync.ErrQueueShutDown:
					return st.shut && len(st.items) == 0, st
				case out.err == ctxsync.ErrQueueEmpty:
					return !st.shut && len(st.items) == 0, st
				case out.err != nil:
					return true, st
				}
				if len(st.items) == 0 || st.items[0] != out.n {
					return false, st
				}
				return true, shutQueueState{st.items[1:], st.shut}
			}
			return false, st
		},
		Equal: func(a, b any) bool {
			x, y := a.(shutQueueState), b.(shutQueueState)
			return x.shut == y.shut && slices.Equal(x.items, y.items)
		},
		DescribeOperation: func(input, output any) string {
			return fmt.Sprintf("%v -> %v", input, output)
		},
	}
}

// schedule is the preemption hook of one run: it reads the fuzz input's
// schedule bytes in the order the goroutines reach the points.
type schedule struct {
	bytes []byte
	next  atomic.Int64

	mu      sync.Mutex
	cancels []context.CancelFunc // of the calls in flight, by slot
}

func (s *schedule) at(ctxsync.PreemptPoint) {
	i := s.next.Add(1) - 1
	if i >= int64(len(s.bytes)) {
		return
	}
	switch b := s.bytes[i]; {
	case b < 128: // go on
	case b < 192:
		runtime.Gosched()
	case b < 232:
		for range 1 + int(b-192) {
			runtime.Gosched()
		}
	default: // end the context of one of the calls in flight
		s.mu.Lock()
		if n := len(s.cancels); n > 0 {
			if c := s.cancels[int(b-232)%n]; c != nil {
				c()
			}
		}
		s.mu.Unlock()
	}
}

// context returns the context of one blocking call, which the schedule
// may end, and which a timeout ends in any case so that every run ends.
func (s *schedule) context() (context.Context, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	s.mu.Lock()
	slot := len(s.cancels)
	s.cancels = append(s.cancels, cancel)
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		s.cancels[slot] = nil
		s.mu.Unlock()
		cancel()
	}
}

func FuzzRingSchedule(f *testing.F) {
	// capacity, four programs of four ops, then the schedule.
	f.Add([]byte{0, 0, 1, 0, 2, 0, 1, 2, 3, 0, 2, 1, 3, 0, 0, 1, 1, 128, 200, 250, 0, 130, 240, 5})
	f.Add([]byte{1, 7, 0, 0, 0, 2, 2, 2, 2, 3, 1, 0, 2, 1, 1, 1, 1, 233, 233, 140, 150, 160, 0, 0, 231})
	f.Add([]byte{2, 1, 1, 1, 1, 0, 0, 0, 7, 2, 2, 2, 2, 3, 3, 3, 3, 192, 255, 64, 199, 245, 120, 180})
	f.Add([]byte{0, 2, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 250, 250, 250, 250, 250, 250})
	f.Fuzz(func(t *testing.T, data []byte) {
		const clients, opsPerClient = 4, 4
		if len(data) < 1+clients*opsPerClient {
			return
		}
		capacity := 1 + int(data[0]%3)
		programs := data[1 : 1+clients*opsPerClient]
		sched := &schedule{bytes: data[1+clients*opsPerClient:]}
		setPreemptHook(t, sched.at)

		q := ctxsync.NewQueue[int](capacity)
		require.True(t, ctxsync.UsesRing(q))
		var rec recorder
		var mu sync.Mutex
		var put, got []int
		var wg sync.WaitGroup
		for client := range clients {
			program := programs[client*opsPerClient : (client+1)*opsPerClient]
			wg.Go(func() {
				for i, c := range program {
					if client < 2 {
						item := client*100 + i
						switch {
						case c%8 == 7:
							rec.do(client, opInput{kind: opShutdown}, func() opOutput { q.Shutdown(); return opOutput{} })
						case c%2 == 0:
							ctx, done := sched.context()
							rec.do(client, opInput{opPut, item}, func() opOutput { return opOutput{err: q.Put(ctx, item)} })
							done()
						default:
							rec.do(client, opInput{opTryPut, item}, func() opOutput { return opOutput{err: q.TryPut(item)} })
						}
						continue
					}
					k := 1 + int(c/4)%3
					var taken []int
					switch c % 4 {
					case 0:
						ctx, done := sched.context()
						rec.do(client, opInput{kind: opGet}, func() opOutput {
							v, err := q.Get(ctx)
							if err == nil {
								taken = []int{v}
							}
							return opOutput{v, err}
						})
						done()
					case 1:
						rec.do(client, opInput{kind: opTryGet}, func() opOutput {
							v, err := q.TryGet()
							if err == nil {
								taken = []int{v}
							}
							return opOutput{v, err}
						})
					case 2:
						ctx, done := sched.context()
						rec.doAny(client, opInput{opGetMany, k}, func() any {
							dst := make([]int, k)
							n, err := q.GetMany(ctx, dst)
							taken = dst[:n]
							return manyOutput{dst[:n], err}
						})
						done()
					case 3:
						rec.doAny(client, opInput{opGetMany, k}, func() any {
							dst := make([]int, k)
							n, err := q.TryGetMany(dst)
							taken = dst[:n]
							return manyOutput{dst[:n], err}
						})
					}
					mu.Lock()
					got = append(got, taken...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		ctxsync.SetPreemptHook(nil)
		requireLinearizable(t, shutQueueModel(capacity), rec.ops, "the run")

		// Every item whose Put returned nil was taken or is left, once.
		for _, op := range rec.ops {
			in := op.Input.(opInput)
			if out, ok := op.Output.(opOutput); ok && (in.kind == opPut || in.kind == opTryPut) && out.err == nil {
				put = append(put, in.n)
			}
		}
		left := q.ShutdownNow()
		slices.Sort(put)
		all := slices.Sorted(slices.Values(append(slices.Clone(got), left...)))
		require.Equal(t, put, all, "every item put is taken or left exactly once")
		for range got {
			q.TaskDone()
		}
		// Join observes: with nothing left it returns nil at once,
		// whatever its context (R1).
		require.NoError(t, q.Join(cancelled()), "every task done")
	})
}
