//go:build ringbugs

package ctxsync_test

// Known failures, kept out of the normal suite: go test -race -tags ringbugs .
// (with -tags ringbugs the ring queues' linearizability histories are also
// checked whole: see requireLinearizableQueue).

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

const strictRingTry = true

// A GetMany that parks is handed one item by a Put, and once it runs again
// it takes what has come since (getmany.go for the mutex path,
// getManyRing in queue_ring.go for the ring): its batch is made at two
// instants, so another Get can take an item between the two parts, and a
// LIFO or priority batch comes out in an order Get never had. The
// contract ("takes up to len(dst) items ... as many as are there") reads
// as one instant; porcupine finds such histories within a few.
func TestLinearizableQueueGetManyBlockingBatches(t *testing.T) {
	linearizeGetMany(t, 4)
}

// A Put paused between its claim and its stamp on a ring queue of one
// slot: Len says 1 and TryPut says full, as if the Put were done, but
// TryGet and TryGetMany say empty, as if it had not started. No order of
// the four calls and the Put explains all the answers.
func TestRingTryAnswersNotLinearizable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newRingQueue(t, 1)
		g := pauseClaim(q, true)
		put := pausedPut(q, g, 1)
		var rec recorder
		rec.do(0, opInput{kind: opLen}, func() opOutput { return opOutput{n: q.Len()} })
		rec.do(0, opInput{opTryPut, 2}, func() opOutput { return opOutput{err: q.TryPut(2)} })
		rec.do(0, opInput{kind: opTryGet}, func() opOutput { v, err := q.TryGet(); return opOutput{v, err} })
		close(g.resume)
		require.NoError(t, <-put)
		// The Put, from before the first call to after the last.
		ops := append([]porcupine.Operation{{ClientId: 1, Input: opInput{opPut, 1}, Call: 0, Output: opOutput{}, Return: rec.clock.Add(1)}}, rec.ops...)
		requireLinearizable(t, queueModel(1, fifoNext), ops, "paused Put with Len, TryPut, TryGet")
		_ = context.Background
		_ = ctxsync.ErrQueueEmpty
	})
}
