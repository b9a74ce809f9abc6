//go:build stress

package ctxsync_test

// Schedules that act at a preemption point of the ring (preempt.go), which
// exists only in the large mode.

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"

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
