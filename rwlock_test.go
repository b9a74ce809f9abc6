package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// rlockAsync and wlockAsync start an RLock or a Lock in a goroutine and
// return where its result arrives.
func rlockAsync(ctx context.Context, rw *ctxsync.RWLock) <-chan error {
	got := make(chan error, 1)
	go func() { got <- rw.RLock(ctx) }()
	return got
}

func wlockAsync(ctx context.Context, rw *ctxsync.RWLock) <-chan error {
	got := make(chan error, 1)
	go func() { got <- rw.Lock(ctx) }()
	return got
}

// requireWaiting fails unless no result has arrived on any of got.
func requireWaiting(t *testing.T, got ...<-chan error) {
	t.Helper()
	for i, c := range got {
		select {
		case err := <-c:
			require.Failf(t, "a call that must wait returned", "call %d returned %v", i, err)
		default:
		}
	}
}

// requireState checks the three observers at once.
func requireState(t *testing.T, rw *ctxsync.RWLock, writer bool, readers, waiting int) {
	t.Helper()
	require.Equal(t, writer, rw.Locked(), "Locked")
	require.Equal(t, readers, rw.Readers(), "Readers")
	require.Equal(t, waiting, rw.Waiting(), "Waiting")
}

// R7: the zero value is an unlocked RWLock.
func TestRWLockZeroValue(t *testing.T) {
	var rw ctxsync.RWLock
	ctx := context.Background()
	requireState(t, &rw, false, 0, 0)
	require.NoError(t, rw.RLock(ctx))
	require.True(t, rw.TryRLock())
	requireState(t, &rw, false, 2, 0)
	assert.False(t, rw.TryLock(), "readers hold it")
	rw.RUnlock()
	rw.RUnlock()
	require.NoError(t, rw.Lock(ctx))
	requireState(t, &rw, true, 0, 0)
	assert.False(t, rw.TryRLock(), "a writer holds it")
	assert.False(t, rw.TryLock(), "a writer holds it")
	rw.Unlock()
	require.True(t, rw.TryLock())
	rw.Downgrade()
	requireState(t, &rw, false, 1, 0)
	rw.RUnlock()
	requireState(t, &rw, false, 0, 0)
}

// R1: a done context fails even when the lock is free, and changes nothing.
func TestRWLockDoneContextFailsWhenFree(t *testing.T) {
	var rw ctxsync.RWLock
	assert.Equal(t, context.Canceled, rw.RLock(cancelled()))
	assert.Equal(t, context.Canceled, rw.Lock(cancelled()))
	requireState(t, &rw, false, 0, 0)
	require.True(t, rw.TryRLock())
	assert.Equal(t, context.Canceled, rw.RLock(cancelled()), "even when readers could join")
	requireState(t, &rw, false, 1, 0)
	rw.RUnlock()
}

// R2: the error is exactly ctx.Err(), for both kinds of ending and both
// kinds of call, and R3: the failed calls leave the lock as it was.
func TestRWLockReturnsExactContextError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.NoError(t, rw.Lock(context.Background()))

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := rw.RLock(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, ctx.Err(), err)
		err = rw.Lock(ctx)
		assert.Equal(t, context.DeadlineExceeded, err)

		ctx2, cancel2 := context.WithCancelCause(context.Background())
		go cancel2(assert.AnError)
		assert.Equal(t, context.Canceled, rw.RLock(ctx2), "ctx.Err(), not the cause")

		requireState(t, &rw, true, 0, 0)
		rw.Unlock()
		requireState(t, &rw, false, 0, 0)
	})
}

// R6: misuse panics at once, with a message naming the method, and changes
// nothing.
func TestRWLockMisusePanics(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(rw *ctxsync.RWLock)
		misuse  func(rw *ctxsync.RWLock)
		msg     string
		writer  bool
		readers int
	}{
		{"RUnlock of unlocked", func(*ctxsync.RWLock) {}, (*ctxsync.RWLock).RUnlock,
			"ctxsync: RUnlock of RWLock without a read lock", false, 0},
		{"RUnlock under a writer", func(rw *ctxsync.RWLock) { rw.TryLock() }, (*ctxsync.RWLock).RUnlock,
			"ctxsync: RUnlock of RWLock without a read lock", true, 0},
		{"Unlock of unlocked", func(*ctxsync.RWLock) {}, (*ctxsync.RWLock).Unlock,
			"ctxsync: Unlock of RWLock without the write lock", false, 0},
		{"Unlock under readers", func(rw *ctxsync.RWLock) { rw.TryRLock() }, (*ctxsync.RWLock).Unlock,
			"ctxsync: Unlock of RWLock without the write lock", false, 1},
		{"Downgrade of unlocked", func(*ctxsync.RWLock) {}, (*ctxsync.RWLock).Downgrade,
			"ctxsync: Downgrade of RWLock without the write lock", false, 0},
		{"Downgrade under readers", func(rw *ctxsync.RWLock) { rw.TryRLock(); rw.TryRLock() }, (*ctxsync.RWLock).Downgrade,
			"ctxsync: Downgrade of RWLock without the write lock", false, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rw ctxsync.RWLock
			c.prepare(&rw)
			assert.PanicsWithValue(t, c.msg, func() { c.misuse(&rw) })
			requireState(t, &rw, c.writer, c.readers, 0)
			assert.Equal(t, !c.writer, rw.TryRLock(), "the lock works on")
		})
	}
	// With someone waiting, the slow paths panic the same way.
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryRLock())
		w := wlockAsync(context.Background(), &rw)
		synctest.Wait()
		assert.PanicsWithValue(t, "ctxsync: Unlock of RWLock without the write lock", rw.Unlock)
		assert.PanicsWithValue(t, "ctxsync: Downgrade of RWLock without the write lock", rw.Downgrade)
		requireState(t, &rw, false, 1, 1)
		rw.RUnlock()
		require.NoError(t, <-w)
		r := rlockAsync(context.Background(), &rw)
		synctest.Wait()
		assert.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", rw.RUnlock)
		requireState(t, &rw, true, 0, 1)
		requireWaiting(t, r)
		rw.Unlock()
		require.NoError(t, <-r)
		rw.RUnlock()
		assert.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", rw.RUnlock)
		requireState(t, &rw, false, 0, 0)
	})
}

// Readers at the head of the line, up to the first writer, are granted
// together; a writer waits for everyone to leave; a reader that arrives
// while a writer waits queues behind it.
func TestRWLockReadersBatchUpToWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		ctx := context.Background()
		require.NoError(t, rw.Lock(ctx))
		r1 := rlockAsync(ctx, &rw)
		synctest.Wait()
		r2 := rlockAsync(ctx, &rw)
		synctest.Wait()
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r3 := rlockAsync(ctx, &rw)
		synctest.Wait()
		requireState(t, &rw, true, 0, 4)

		rw.Unlock()
		requireState(t, &rw, false, 2, 2) // granted within Unlock
		require.NoError(t, <-r1)
		require.NoError(t, <-r2)
		synctest.Wait()
		requireWaiting(t, w, r3)

		rw.RUnlock()
		requireState(t, &rw, false, 1, 2)
		rw.RUnlock()
		requireState(t, &rw, true, 0, 1) // handed straight to the writer
		require.NoError(t, <-w)
		synctest.Wait()
		requireWaiting(t, r3)

		rw.Unlock()
		require.NoError(t, <-r3)
		requireState(t, &rw, false, 1, 0)
		rw.RUnlock()
	})
}

// A reader arriving while readers hold the lock and a writer waits queues
// behind the writer: writers never starve.
func TestRWLockReaderQueuesBehindWaitingWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		ctx := context.Background()
		require.NoError(t, rw.RLock(ctx))
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r := rlockAsync(ctx, &rw)
		synctest.Wait()
		requireWaiting(t, w, r)
		requireState(t, &rw, false, 1, 2)
		rw.RUnlock()
		require.NoError(t, <-w)
		synctest.Wait()
		requireWaiting(t, r)
		rw.Unlock()
		require.NoError(t, <-r)
		rw.RUnlock()
	})
}

// When a waiting writer at the head leaves on its context, the readers
// queued behind it are granted in the same step: by the time its Lock has
// returned, they hold the lock.
func TestRWLockCancelledHeadWriterLetsReadersIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		bg := context.Background()
		require.NoError(t, rw.RLock(bg))
		ctx, cancel := context.WithCancel(bg)
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r1 := rlockAsync(bg, &rw)
		synctest.Wait()
		r2 := rlockAsync(bg, &rw)
		synctest.Wait()
		w2 := wlockAsync(bg, &rw)
		synctest.Wait()
		r3 := rlockAsync(bg, &rw)
		synctest.Wait()
		requireState(t, &rw, false, 1, 5)

		cancel()
		require.Equal(t, context.Canceled, <-w)
		// No synctest.Wait: the writer's own step granted them.
		requireState(t, &rw, false, 3, 2)
		require.NoError(t, <-r1)
		require.NoError(t, <-r2)
		synctest.Wait()
		requireWaiting(t, w2, r3) // the next writer still holds back r3

		for range 3 {
			rw.RUnlock()
		}
		require.NoError(t, <-w2)
		rw.Unlock()
		require.NoError(t, <-r3)
		rw.RUnlock()
		requireState(t, &rw, false, 0, 0)
	})
}

// ... unless a writer holds the lock: then the readers go on waiting for
// it.
func TestRWLockCancelledHeadWriterUnderWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		bg := context.Background()
		require.NoError(t, rw.Lock(bg))
		ctx, cancel := context.WithCancel(bg)
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r := rlockAsync(bg, &rw)
		synctest.Wait()
		cancel()
		require.Equal(t, context.Canceled, <-w)
		synctest.Wait()
		requireWaiting(t, r)
		requireState(t, &rw, true, 0, 1)
		rw.Unlock()
		require.NoError(t, <-r)
		rw.RUnlock()
	})
}

// The last waiter leaving on its context gives the fast paths back: the
// lock behaves as if it had never come.
func TestRWLockLastWaiterLeaving(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryRLock())
		ctx, cancel := context.WithCancel(context.Background())
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		assert.False(t, rw.TryRLock(), "a writer waits")
		cancel()
		require.Equal(t, context.Canceled, <-w)
		requireState(t, &rw, false, 1, 0)
		assert.True(t, rw.TryRLock(), "nobody waits any more")
		rw.RUnlock()
		rw.RUnlock()
		assert.True(t, rw.TryLock())
		rw.Unlock()
	})
}

// Downgrade turns the write lock into a read lock and lets in the readers
// now at the head of the line; the writer behind them still waits, and
// the readers behind that writer too.
func TestRWLockDowngradeGrantsReadersAtHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		ctx := context.Background()
		require.NoError(t, rw.Lock(ctx))
		r1 := rlockAsync(ctx, &rw)
		synctest.Wait()
		r2 := rlockAsync(ctx, &rw)
		synctest.Wait()
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r3 := rlockAsync(ctx, &rw)
		synctest.Wait()

		rw.Downgrade()
		requireState(t, &rw, false, 3, 2) // the caller and r1, r2
		require.NoError(t, <-r1)
		require.NoError(t, <-r2)
		synctest.Wait()
		requireWaiting(t, w, r3)
		assert.False(t, rw.TryLock())
		assert.False(t, rw.TryRLock(), "a writer waits")

		for range 3 {
			rw.RUnlock()
		}
		require.NoError(t, <-w)
		rw.Downgrade()
		require.NoError(t, <-r3)
		requireState(t, &rw, false, 2, 0)
		rw.RUnlock()
		rw.RUnlock()
	})
}

// Downgrade with a writer at the head: no writer gets in, since the caller
// holds a read lock from the same instant.
func TestRWLockDowngradeWithWriterAtHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		ctx := context.Background()
		require.NoError(t, rw.Lock(ctx))
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		rw.Downgrade()
		synctest.Wait()
		requireWaiting(t, w)
		requireState(t, &rw, false, 1, 1)
		rw.RUnlock()
		require.NoError(t, <-w)
		rw.Unlock()
	})
}

// R4: Try calls never barge, whoever waits and whoever holds.
func TestRWLockTryNeverBarges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		ctx := context.Background()

		// Readers hold it, a writer waits: no new reader, no writer.
		require.True(t, rw.TryRLock())
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		assert.False(t, rw.TryRLock())
		assert.False(t, rw.TryLock())
		rw.RUnlock()
		require.NoError(t, <-w)

		// A writer holds it, a reader waits; once handed over, the
		// readers hold it and a writer waits behind... a TryRLock cannot
		// slip in at the hand-off either.
		r := rlockAsync(ctx, &rw)
		synctest.Wait()
		w2 := wlockAsync(ctx, &rw)
		synctest.Wait()
		assert.False(t, rw.TryRLock())
		rw.Unlock()
		require.NoError(t, <-r)
		assert.False(t, rw.TryRLock(), "w2 waits")
		assert.False(t, rw.TryLock(), "w2 waits")
		rw.RUnlock()
		require.NoError(t, <-w2)
		assert.False(t, rw.TryLock())
		rw.Unlock()
		assert.True(t, rw.TryLock())
		rw.Unlock()
		requireState(t, &rw, false, 0, 0)
	})
}

// R4: a random mix of readers and writers is served in the order they
// came, readers in batches up to the next writer.
func TestRWLockFIFOMix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 24
		rng := rand.New(rand.NewPCG(14, 14))
		var rw ctxsync.RWLock
		ctx := context.Background()
		require.NoError(t, rw.Lock(ctx))
		writer := make([]bool, n)
		got := make([]<-chan error, n)
		for i := range n {
			writer[i] = rng.IntN(3) == 0
			if writer[i] {
				got[i] = wlockAsync(ctx, &rw)
			} else {
				got[i] = rlockAsync(ctx, &rw)
			}
			synctest.Wait() // i is parked before i+1 starts
		}
		rw.Unlock()
		for i := 0; i < n; {
			require.Equal(t, n-i, rw.Waiting()+batchLen(writer[i:]))
			if writer[i] {
				require.NoError(t, <-got[i])
				synctest.Wait()
				requireWaiting(t, got[i+1:]...)
				require.True(t, rw.Locked())
				rw.Unlock()
				i++
				continue
			}
			j := i + batchLen(writer[i:])
			for k := i; k < j; k++ {
				require.NoError(t, <-got[k])
			}
			synctest.Wait()
			requireWaiting(t, got[j:]...)
			require.Equal(t, j-i, rw.Readers())
			for range j - i {
				rw.RUnlock()
			}
			i = j
		}
		requireState(t, &rw, false, 0, 0)
	})
}

// batchLen is how many calls at the head of a line are granted together:
// one writer, or the readers up to the first writer.
func batchLen(writer []bool) int {
	if writer[0] {
		return 1
	}
	n := 0
	for n < len(writer) && !writer[n] {
		n++
	}
	return n
}

// R3: a grant that meets the end of the context is kept, never doubled;
// one not yet made is passed on.
func TestRWLockGrantThenCancelIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.NoError(t, rw.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		r := rlockAsync(ctx, &rw)
		synctest.Wait()
		rw.Unlock()
		cancel()
		require.NoError(t, <-r)
		requireState(t, &rw, false, 1, 0)
		rw.RUnlock()

		// Cancelled first, then the Unlock comes before it leaves: the
		// lock goes to the writer behind it, not to the leaving reader.
		require.NoError(t, rw.Lock(context.Background()))
		ctx2, cancel2 := context.WithCancel(context.Background())
		r2 := rlockAsync(ctx2, &rw)
		synctest.Wait()
		w := wlockAsync(context.Background(), &rw)
		synctest.Wait()
		cancel2()
		rw.Unlock()
		require.NoError(t, <-w)
		require.Equal(t, context.Canceled, <-r2)
		requireState(t, &rw, true, 0, 0)
		rw.Unlock()
	})
}

// R5 and R9: a blocked call is durably blocked in a bubble, and nothing
// runs behind the caller's back: synctest.Wait returns with the waiters
// parked, and the bubble ends with every goroutine gone.
func TestRWLockDurablyBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.NoError(t, rw.Lock(context.Background()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		r := rlockAsync(ctx, &rw)
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		requireWaiting(t, r, w)
		time.Sleep(time.Hour) // the fake clock: the deadline passes
		require.Equal(t, context.DeadlineExceeded, <-r)
		require.Equal(t, context.DeadlineExceeded, <-w)
		requireState(t, &rw, true, 0, 0)
		rw.Unlock()
	})
}

// R3 under stress: random cancellations racing with grants never let a
// writer in beside anyone else, never lose the lock, and keep the count of
// readers right.
func TestRWLockStressRandomCancellation(t *testing.T) {
	const goroutines, rounds = 12, 300 * stressScale
	var rw ctxsync.RWLock
	var readers, writers, entered atomic.Int64
	check := func() {
		w, r := writers.Load(), readers.Load()
		if w > 1 || (w == 1 && r > 0) {
			t.Errorf("a writer with others: %d writers, %d readers", w, r)
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 14))
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancelAfterYields(cancel, rng.IntN(4))
				}
				write, try := rng.IntN(3) == 0, rng.IntN(5) == 0
				var ok bool
				switch {
				case try && write:
					ok = rw.TryLock()
				case try:
					ok = rw.TryRLock()
				case write:
					ok = rw.Lock(ctx) == nil
				default:
					ok = rw.RLock(ctx) == nil
				}
				if ok {
					entered.Add(1)
					if write {
						writers.Add(1)
						check()
						if !rw.Locked() || rw.Readers() != 0 {
							t.Errorf("a writer holds it, yet Locked is %v and Readers %d", rw.Locked(), rw.Readers())
						}
						if rng.IntN(2) == 0 {
							// Downgrade: count the read lock before the
							// write lock goes, as Downgrade does.
							readers.Add(1)
							writers.Add(-1)
							rw.Downgrade()
							check()
							readers.Add(-1)
							rw.RUnlock()
						} else {
							writers.Add(-1)
							rw.Unlock()
						}
					} else {
						readers.Add(1)
						check()
						if rw.Locked() || rw.Readers() < 1 {
							t.Errorf("a reader holds it, yet Locked is %v and Readers %d", rw.Locked(), rw.Readers())
						}
						readers.Add(-1)
						rw.RUnlock()
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	requireState(t, &rw, false, 0, 0)
	assert.True(t, rw.TryLock(), "the lock is free once everyone is done")
	rw.Unlock()
	assert.Positive(t, entered.Load())
}

// R8: calls that do not block allocate nothing.
func TestRWLockNonBlockingCallsDoNotAllocate(t *testing.T) {
	var rw ctxsync.RWLock
	ctx, done := context.Background(), cancelled()
	allocs := testing.AllocsPerRun(100, func() {
		_ = rw.RLock(ctx)
		_ = rw.TryRLock()
		_ = rw.Readers()
		_ = rw.TryLock() // fails: readers hold it
		rw.RUnlock()
		rw.RUnlock()
		_ = rw.Lock(ctx)
		_ = rw.Locked()
		_ = rw.TryRLock() // fails: a writer holds it
		_ = rw.RLock(done)
		rw.Downgrade()
		rw.RUnlock()
		_ = rw.TryLock()
		rw.Unlock()
		_ = rw.Waiting()
	})
	assert.Zero(t, allocs)
}

// R8 on the slow paths that do not block: with someone in line, grants,
// hand-offs and refusals allocate nothing either.
func TestRWLockSlowNonBlockingCallsDoNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryRLock())
		ctx, cancel := context.WithCancel(context.Background())
		w := wlockAsync(ctx, &rw) // stays in line until cancelled
		synctest.Wait()
		done := cancelled()
		allocs := testing.AllocsPerRun(100, func() {
			_ = rw.TryRLock()
			_ = rw.TryLock()
			_ = rw.RLock(done)
			_ = rw.Waiting()
			_ = rw.Readers()
		})
		assert.Zero(t, allocs)
		cancel()
		require.Equal(t, context.Canceled, <-w)
		rw.RUnlock()
	})
}

// The head writer's context ends, and the last reader unlocks before or
// after it has left: either way the lock is not handed to the leaving
// writer but to the readers behind it, and the writer returns its error.
func TestRWLockInterleaveCancelThenRUnlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		bg := context.Background()
		require.True(t, rw.TryRLock())
		ctx, cancel := context.WithCancel(bg)
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r := rlockAsync(bg, &rw)
		synctest.Wait()
		cancel()
		rw.RUnlock() // the writer may or may not have left yet
		requireState(t, &rw, false, 1, 0)
		require.NoError(t, <-r)
		require.Equal(t, context.Canceled, <-w)
		rw.RUnlock()
		requireState(t, &rw, false, 0, 0)
	})
}

// The same with Downgrade: the leaving writer at the head, whether or not
// it has left yet, does not hold back the readers behind it.
func TestRWLockInterleaveCancelThenDowngrade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		bg := context.Background()
		require.True(t, rw.TryLock())
		ctx, cancel := context.WithCancel(bg)
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		r := rlockAsync(bg, &rw)
		synctest.Wait()
		w2 := wlockAsync(bg, &rw)
		synctest.Wait()
		cancel()
		rw.Downgrade()
		requireState(t, &rw, false, 2, 1)
		require.NoError(t, <-r)
		require.Equal(t, context.Canceled, <-w)
		synctest.Wait()
		requireWaiting(t, w2)
		rw.RUnlock()
		rw.RUnlock()
		require.NoError(t, <-w2)
		rw.Unlock()
	})
}

// R8: a call that blocks allocates at most its wake-up channel; its waiter
// record is recycled.
func TestRWLockBlockingCallAllocatesOnlyItsChannel(t *testing.T) {
	var rw ctxsync.RWLock
	ctx := context.Background()
	unlock := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range unlock {
			// Let go once the reader is in line, so that it blocks.
			for rw.Waiting() == 0 {
				runtime.Gosched()
			}
			rw.Unlock()
		}
	}()
	require.NoError(t, rw.Lock(ctx))
	allocs := testing.AllocsPerRun(100, func() {
		unlock <- struct{}{}
		_ = rw.RLock(ctx) // blocks until the helper unlocks
		rw.RUnlock()
		_ = rw.Lock(ctx) // uncontended again, for the next round
	})
	close(unlock)
	<-done
	rw.Unlock()
	t.Logf("%.2f allocations per blocking RLock", allocs)
	assert.LessOrEqual(t, allocs, 1.0)
}

// Readers is exact while RLock calls arrive behind a waiting writer: an
// RLock on its way into the line is never counted as a read lock, even for
// an instant (its fast path's add is settled off the count it reports).
func TestRWLockReadersExactWhileReadersArrive(t *testing.T) {
	const arrivals, attempts = 4, 2000 * stressScale
	var rw ctxsync.RWLock
	require.True(t, rw.TryRLock())
	require.True(t, rw.TryRLock())
	wctx, wcancel := context.WithCancel(context.Background())
	w := wlockAsync(wctx, &rw) // waits behind the two readers until cancelled
	for rw.Waiting() == 0 {
		runtime.Gosched() // until the writer is in line
	}
	stop := make(chan struct{})
	var tried atomic.Int64
	var wg sync.WaitGroup
	for range arrivals {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithCancel(context.Background())
				go cancelAfterYields(cancel, 1)
				if rw.RLock(ctx) == nil {
					t.Error("an RLock got in behind a waiting writer")
					rw.RUnlock()
				}
				cancel()
				tried.Add(1)
			}
		})
	}
	// Look for as long as the arrivals take to make their attempts.
	wrong := 0
	for tried.Load() < attempts {
		if rw.Readers() != 2 {
			wrong++
		}
	}
	assert.Zero(t, wrong, "Readers() other than the 2 read locks held")
	close(stop)
	wg.Wait()
	wcancel()
	require.Equal(t, context.Canceled, <-w)
	requireState(t, &rw, false, 2, 0)
	rw.RUnlock()
	rw.RUnlock()
}

// Schedules that stop an RLock or RUnlock between its fast path's atomic
// add and the rest of the call (StallRLock, StallRUnlock in
// export_test.go), so that the lock can fold back to fast under an add
// that is not settled yet: a schedule that a real goroutine meets only
// when it is descheduled at that very instant.

// An RLock adds while a writer holds the lock, and the writer unlocks
// before the RLock looks again: the fold takes the add in as a read lock,
// granted when nobody waited and no writer held the lock, and the RLock
// returns nil holding it.
func TestRWLockStalledRLockAcrossUnlock(t *testing.T) {
	var rw ctxsync.RWLock
	require.True(t, rw.TryLock())
	resume := rw.StallRLock(context.Background())
	requireState(t, &rw, true, 0, 0) // the add is not a read lock yet
	rw.Unlock()
	requireState(t, &rw, false, 1, 0)
	assert.False(t, rw.TryLock(), "the stalled RLock holds a read lock")
	require.NoError(t, resume())
	requireState(t, &rw, false, 1, 0)
	rw.RUnlock()
	require.True(t, rw.TryLock(), "nothing left behind")
	rw.Unlock()
}

// The same across a Downgrade: both the downgraded writer and the stalled
// RLock hold read locks.
func TestRWLockStalledRLockAcrossDowngrade(t *testing.T) {
	var rw ctxsync.RWLock
	require.True(t, rw.TryLock())
	resume := rw.StallRLock(context.Background())
	rw.Downgrade()
	requireState(t, &rw, false, 2, 0)
	require.NoError(t, resume())
	rw.RUnlock()
	rw.RUnlock()
	requireState(t, &rw, false, 0, 0)
	require.True(t, rw.TryLock())
	rw.Unlock()
}

// Readers hold the lock and a writer waits; an RUnlock and an RLock have
// each made their add, which cancel out in the count, when the writer
// leaves on its context. The fold counts the read lock given back as given
// back and the one taken as taken, and neither call undoes anything after.
func TestRWLockStalledAddsAcrossFold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryRLock())
		require.True(t, rw.TryRLock())
		ctx, cancel := context.WithCancel(context.Background())
		w := wlockAsync(ctx, &rw)
		synctest.Wait()
		resumeUnlock := rw.StallRUnlock()
		resumeLock := rw.StallRLock(context.Background())
		requireState(t, &rw, false, 2, 1) // neither add counts yet
		cancel()
		require.Equal(t, context.Canceled, <-w)
		requireState(t, &rw, false, 2, 0) // one given back, one taken
		resumeUnlock()
		require.NoError(t, resumeLock())
		requireState(t, &rw, false, 2, 0)
		rw.RUnlock()
		rw.RUnlock()
		requireState(t, &rw, false, 0, 0)
		require.True(t, rw.TryLock())
		rw.Unlock()
	})
}

// An RLock whose add met a writer, and whose take-back meets a word moved
// by another add of the same epoch, tries again and then waits in line as
// usual.
func TestRWLockStalledRLockRetriesTakeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		require.True(t, rw.TryLock())
		first := rw.StallRLock(context.Background())
		second := rw.StallRLock(context.Background())
		got := make(chan error, 2)
		go func() { got <- first() }()
		go func() { got <- second() }()
		synctest.Wait()
		requireState(t, &rw, true, 0, 2)
		rw.Unlock()
		require.NoError(t, <-got)
		require.NoError(t, <-got)
		requireState(t, &rw, false, 2, 0)
		rw.RUnlock()
		rw.RUnlock()
	})
}

// A misused RUnlock under a writer, stalled across the writer's Unlock:
// the fold comes out below zero, and the RUnlock puts the count back and
// panics, leaving the lock free.
func TestRWLockStalledMisusedRUnlockAcrossFold(t *testing.T) {
	var rw ctxsync.RWLock
	require.True(t, rw.TryLock())
	resume := rw.StallRUnlock()
	rw.Unlock()
	assert.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", resume)
	requireState(t, &rw, false, 0, 0)
	require.True(t, rw.TryLock())
	rw.Unlock()
}

// A misused RUnlock on a free lock, stalled before it puts the count back:
// a writer arriving meanwhile waits for the count to come back, then takes
// the lock.
func TestRWLockStalledMisusedRUnlockOnFreeLock(t *testing.T) {
	var rw ctxsync.RWLock
	resume := rw.StallRUnlock()
	got := wlockAsync(context.Background(), &rw)
	assert.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", resume)
	require.NoError(t, <-got)
	requireState(t, &rw, true, 0, 0)
	rw.Unlock()
}
