package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

type barrierResult struct {
	index int
	err   error
}

func waitAsync(ctx context.Context, b *ctxsync.Barrier) <-chan barrierResult {
	done := make(chan barrierResult, 1)
	go func() {
		i, err := b.Wait(ctx)
		done <- barrierResult{i, err}
	}()
	return done
}

func TestBarrierSingleParty(t *testing.T) {
	b := ctxsync.NewBarrier(1)
	for range 3 {
		i, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 0, i)
	}
	assert.Equal(t, 1, b.Parties())
	assert.Equal(t, 0, b.Waiting())
}

func TestBarrierIndexesByArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const parties = 4
		b := ctxsync.NewBarrier(parties)
		var results []<-chan barrierResult
		for i := range parties - 1 {
			results = append(results, waitAsync(context.Background(), b))
			synctest.Wait()
			assert.Equal(t, i+1, b.Waiting())
		}
		last, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, parties-1, last, "the last to arrive gets parties-1")
		for i, r := range results {
			got := <-r
			require.NoError(t, got.err)
			assert.Equal(t, i, got.index)
		}
		assert.Equal(t, 0, b.Waiting())
		assert.False(t, b.Broken())
	})
}

func TestBarrierIsCyclic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		for range 3 {
			r := waitAsync(context.Background(), b)
			synctest.Wait()
			i, err := b.Wait(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 1, i)
			assert.Equal(t, barrierResult{0, nil}, <-r)
		}
	})
}

// R1: a done context fails even when the caller would trip the barrier.
func TestBarrierDoneContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		r := waitAsync(context.Background(), b)
		synctest.Wait()
		i, err := b.Wait(cancelled())
		assert.Equal(t, -1, i)
		assert.Equal(t, context.Canceled, err)
		assert.Equal(t, 1, b.Waiting())
		b.Reset()
		assert.Equal(t, barrierResult{-1, ctxsync.ErrBrokenBarrier}, <-r)
	})
}

// A waiter that withdraws leaves no gap and no duplicate index, and does
// not break the barrier.
func TestBarrierWithdrawal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(3)
		first := waitAsync(context.Background(), b)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		leaver := waitAsync(ctx, b)
		synctest.Wait()
		assert.Equal(t, 2, b.Waiting())
		time.Sleep(time.Second) // fake time: the leaver's deadline passes
		assert.Equal(t, barrierResult{-1, context.DeadlineExceeded}, <-leaver)
		assert.Equal(t, 1, b.Waiting())
		assert.False(t, b.Broken())

		second := waitAsync(context.Background(), b)
		synctest.Wait()
		i, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 2, i)
		assert.Equal(t, barrierResult{0, nil}, <-first)
		assert.Equal(t, barrierResult{1, nil}, <-second)
	})
}

func TestBarrierAbortAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(3)
		r1 := waitAsync(context.Background(), b)
		r2 := waitAsync(context.Background(), b)
		synctest.Wait()
		b.Abort()
		assert.Equal(t, barrierResult{-1, ctxsync.ErrBrokenBarrier}, <-r1)
		assert.Equal(t, barrierResult{-1, ctxsync.ErrBrokenBarrier}, <-r2)
		assert.True(t, b.Broken())
		assert.Equal(t, 0, b.Waiting())

		// R10: the broken barrier is reported before the done context.
		i, err := b.Wait(cancelled())
		assert.Equal(t, -1, i)
		assert.Equal(t, ctxsync.ErrBrokenBarrier, err)

		b.Reset()
		assert.False(t, b.Broken())
		r3 := waitAsync(context.Background(), b)
		r4 := waitAsync(context.Background(), b)
		synctest.Wait()
		assert.Equal(t, 2, b.Waiting())
		i, err = b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 2, i)
		got := []int{(<-r3).index, (<-r4).index}
		sort.Ints(got)
		assert.Equal(t, []int{0, 1}, got)
	})
}

func TestBarrierResetReleasesWaitersBroken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		r := waitAsync(context.Background(), b)
		synctest.Wait()
		b.Reset()
		assert.Equal(t, barrierResult{-1, ctxsync.ErrBrokenBarrier}, <-r)
		assert.False(t, b.Broken())
		assert.Equal(t, 0, b.Waiting())
	})
}

func TestNewBarrierPanics(t *testing.T) {
	for _, parties := range []int{0, -1} {
		assert.PanicsWithValue(t, "ctxsync: Barrier needs at least 1 party", func() { ctxsync.NewBarrier(parties) })
	}
}

// Many goroutines cycle through a barrier with random withdrawals: every
// trip releases exactly `parties` goroutines with indexes 0..parties-1.
func TestBarrierStressRandomWithdrawals(t *testing.T) {
	const parties, goroutines = 3, 8
	b := ctxsync.NewBarrier(parties)
	var counts [parties]atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 4))
			for !stop.Load() {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(4) == 0 {
					go cancel()
				}
				i, err := b.Wait(ctx)
				cancel()
				switch err {
				case nil:
					if assert.True(t, i >= 0 && i < parties, "index %d", i) {
						counts[i].Add(1)
					}
				case ctxsync.ErrBrokenBarrier:
					return
				default:
					assert.Equal(t, context.Canceled, err)
					assert.Equal(t, -1, i)
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return counts[parties-1].Load() >= 500*stressScale }, 30*time.Minute, time.Millisecond)
	stop.Store(true)
	b.Abort()
	wg.Wait()
	trips := counts[parties-1].Load()
	for i := range parties {
		assert.Equal(t, trips, counts[i].Load(), "index %d handed out once per trip", i)
	}
}

// A zero Barrier has no parties and could only park its callers for good,
// so it is refused loudly on first use.
func TestBarrierZeroValuePanics(t *testing.T) {
	const msg = "ctxsync: zero Barrier; make one with NewBarrier"
	tests := []struct {
		name string
		call func(b *ctxsync.Barrier)
	}{
		{"Wait", func(b *ctxsync.Barrier) {
			// Before the fix, Wait parked until its context ended.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, _ = b.Wait(ctx)
		}},
		{"Reset", func(b *ctxsync.Barrier) { b.Reset() }},
		{"Abort", func(b *ctxsync.Barrier) { b.Abort() }},
		{"Parties", func(b *ctxsync.Barrier) { b.Parties() }},
		{"Waiting", func(b *ctxsync.Barrier) { b.Waiting() }},
		{"Broken", func(b *ctxsync.Barrier) { b.Broken() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b ctxsync.Barrier
			assert.PanicsWithValue(t, msg, func() { tt.call(&b) })
		})
	}
}

// Deterministic interleavings: inside a testing/synctest bubble a parked
// goroutine stays parked until the test lets it run, so "the context ends
// at the instant of a hand-off" is an exact schedule, not a hope.

// A waiter's context ends just as the last party arrives, before it could
// withdraw: the trip comes first and counts it.
func TestInterleaveBarrierWithdrawRacesTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		ctx, cancel := context.WithCancel(context.Background())
		first := waitAsync(ctx, b)
		synctest.Wait()
		cancel()
		i, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, i)
		assert.Equal(t, barrierResult{0, nil}, <-first, "a tripped round is final")
	})
}

// The waiter withdraws first: the last party now waits for a new partner.
func TestInterleaveBarrierWithdrawBeforeTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := ctxsync.NewBarrier(2)
		ctx, cancel := context.WithCancel(context.Background())
		first := waitAsync(ctx, b)
		synctest.Wait()
		cancel()
		synctest.Wait()
		assert.Equal(t, barrierResult{-1, context.Canceled}, <-first)
		assert.Equal(t, 0, b.Waiting(), "no waiter left behind")
		second := waitAsync(context.Background(), b)
		synctest.Wait()
		i, err := b.Wait(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, i)
		assert.Equal(t, barrierResult{0, nil}, <-second)
	})
}
