//go:build stress

package ctxsync_test

// The ring's tests that need the large mode's preemption points
// (preempt.go, -tags stress): a schedule that acts at one point
// (TestRingServeGetCancelledAtTheHandOff) and a fuzz target whose input is
// also the schedule (FuzzRingSchedule). The large mode's random hook, which
// every randomized test meets at every point, is set here too.

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// setPreemptHook sets f as the large mode's preemption hook for the rest
// of the test, and puts back the one before when it ends.
func setPreemptHook(t *testing.T, f func(ctxsync.PreemptPoint)) {
	previous := ctxsync.SetPreemptHook(f)
	t.Cleanup(func() { ctxsync.SetPreemptHook(previous) })
}

// Issue 21: a parked Get whose context ends while the queue serves it, in
// the step that hands a parked Put's item straight to a parked Get, made
// that step read the Gets' line a second time, find it empty, and take
// nothing: Queue.Get panicked on a nil waiter in the Get that served.
//
// The schedule, at capacity 1: Get A claims the one item and is paused
// before it frees the slot; Put B finds no free slot and parks; Get C finds
// the queue empty and parks. When A frees the slot it serves the parked
// calls: the ring is empty, so B's item goes to C, and at that instant C's
// context ends. C must then either keep the item or leave it in the queue:
// nothing lost, nothing doubled, no panic.
func TestRingServeGetCancelledAtTheHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		gate := pauseClaim(q, false)
		require.NoError(t, q.TryPut(1))
		a := pausedGet(q, gate)
		b := putAsync(context.Background(), q, 2)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := getAsync(ctx, q)
		synctest.Wait()

		var served atomic.Int32
		setPreemptHook(t, func(p ctxsync.PreemptPoint) {
			if p == ctxsync.PreemptRingServe {
				served.Add(1)
				cancel()
			}
		})
		close(gate.resume)
		synctest.Wait()
		require.Equal(t, int32(1), served.Load(), "the hand-off from a parked Put to a parked Get was reached")

		ra := <-a
		require.NoError(t, ra.err)
		assert.Equal(t, 1, ra.item)
		require.NoError(t, <-b)
		rc := <-c
		if rc.err == nil {
			assert.Equal(t, 2, rc.item, "C kept the item it was handed")
			assert.Equal(t, 0, q.Len())
		} else {
			assert.ErrorIs(t, rc.err, context.Canceled)
			got, err := q.TryGet()
			require.NoError(t, err, "the item C did not keep is still there")
			assert.Equal(t, 2, got)
		}
	})
}

// In the large mode every preemption point yields now and then, and now
// and then pauses for a run of yields, so that the randomized tests meet
// the interleavings a quiet machine never shows. A pause is made of yields,
// not of a sleep, so that a goroutine paused inside a testing/synctest
// bubble is never taken for durably blocked.
func init() {
	ctxsync.SetPreemptHook(randomPreempt)
}

func randomPreempt(ctxsync.PreemptPoint) {
	switch r := rand.Uint32N(64); {
	case r < 4:
		runtime.Gosched()
	case r == 4:
		for range 1 + rand.IntN(32) {
			runtime.Gosched()
		}
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
		requireLinearizable(t, queueModel(capacity, fifoNext), rec.ops, "the run")

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
