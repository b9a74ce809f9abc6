package ctxsync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctxsync/ctxsync"
)

// Ordering under real parallelism. Each test runs many short rounds in
// which goroutines, released at the same moment, race through a window
// that a deterministic test cannot open: a store made one step too late,
// after the wake-up instead of before it. They only mean something run
// many times, with -race (go test -race), and more under -tags stress.

// orderingRounds is the rounds of each ordering test at the normal size.
const orderingRounds = 500

// together runs each of fs in a goroutine of its own, releasing them all
// at once, and waits for them.
func together(fs ...func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}

// jitter yields a random few times, so that the goroutines of a round meet
// at spread-out points of each other's calls.
func jitter(rng *rand.Rand) {
	for range rng.IntN(3) {
		runtime.Gosched()
	}
}

// A Wait that runs at the same moment as Set must not park after Set has
// finished: nothing would ever wake it. And a waiter woken by Set must see
// IsSet() true (no Clear comes in these rounds).
func TestOrderingEventWaitRacingSet(t *testing.T) {
	for round := range orderingRounds * stressScale {
		var e ctxsync.Event
		// A Wait that parked too late would block for good; the deadline
		// turns that into a failure instead of a hung test.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		waiters := make([]func(), 3)
		for i := range waiters {
			rng := rand.New(rand.NewPCG(uint64(round), uint64(i)))
			waiters[i] = func() {
				jitter(rng)
				if err := e.Wait(ctx); err != nil {
					t.Errorf("round %d: Wait racing Set returned %v", round, err)
					return
				}
				if !e.IsSet() {
					t.Errorf("round %d: a waiter woken by Set saw the event not set", round)
				}
			}
		}
		together(append(waiters, e.Set)...)
		cancel()
		if t.Failed() {
			return
		}
	}
}

// A Get that is handed an item finds its task counted before it returns,
// so a TaskDone right after it never finds the count at zero, and Join
// sees the whole count.
func TestOrderingQueueTaskCountedBeforeGetReturns(t *testing.T) {
	forEachQueue(t, func(t *testing.T, newQueue func(int) *ctxsync.Queue[int], _ func([]int) []int) {
		for round := range orderingRounds * stressScale {
			q := newQueue(1)
			ctx := context.Background()
			get := func() {
				if _, err := q.Get(ctx); err != nil {
					t.Errorf("round %d: Get: %v", round, err)
					return
				}
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("round %d: TaskDone right after Get: %v", round, r)
					}
				}()
				q.TaskDone()
			}
			put := func() {
				for i := range 2 {
					if err := q.Put(ctx, i); err != nil {
						t.Errorf("round %d: Put: %v", round, err)
					}
				}
			}
			together(get, get, put)
			assert.NoError(t, q.Join(cancelled()), "every task done")
			if t.Failed() {
				return
			}
		}
	})
}

// An acquirer that has returned holds its permits: Available never counts
// them, so it is at most the limit less what the caller holds, even while
// the Release that served it is still running.
func TestOrderingSemaphoreAcquiredPermitsNotAvailable(t *testing.T) {
	forEachSemaphore(t, func(t *testing.T, newSem func(int) anySemaphore) {
		const limit, goroutines = 2, 4
		rounds := orderingRounds * stressScale
		s := newSem(limit)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 21))
				for range rounds {
					n := 1 + rng.IntN(limit)
					if err := s.AcquireN(context.Background(), n); err != nil {
						t.Errorf("AcquireN(%d): %v", n, err)
						return
					}
					if a := s.Available(); a > limit-n {
						t.Errorf("holding %d of %d permits, Available() = %d", n, limit, a)
					}
					jitter(rng)
					s.ReleaseN(n)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, limit, s.Available(), fmt.Sprintf("every permit back after %d rounds", rounds))
	})
}
