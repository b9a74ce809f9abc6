package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

func TestEventZeroValue(t *testing.T) {
	var e ctxsync.Event
	assert.False(t, e.IsSet())
	e.Set()
	assert.True(t, e.IsSet())
	e.Set() // setting twice is harmless
	assert.NoError(t, e.Wait(context.Background()))
	e.Clear()
	assert.False(t, e.IsSet())
	e.Clear()
	assert.False(t, e.IsSet())
}

// R1: Wait observes; a set event answers nil whatever the context.
func TestEventWaitOnSetEventIgnoresDoneContext(t *testing.T) {
	var e ctxsync.Event
	assert.Equal(t, context.Canceled, e.Wait(cancelled()))
	e.Set()
	assert.NoError(t, e.Wait(cancelled()))
}

func TestEventWaitReturnsExactContextError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e ctxsync.Event
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := e.Wait(ctx)
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.False(t, e.IsSet())
	})
}

// Set wakes every waiter, and a waiter woken by Set returns nil even though
// Clear follows at once.
func TestEventSetWakesAllEvenIfClearedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5
		var e ctxsync.Event
		errs := make(chan error, n)
		for range n {
			go func() { errs <- e.Wait(context.Background()) }()
		}
		synctest.Wait()
		assert.Empty(t, errs)
		e.Set()
		e.Clear()
		for range n {
			assert.NoError(t, <-errs)
		}
		// A new waiter blocks again after Clear.
		ctx, cancel := context.WithCancel(context.Background())
		go func() { errs <- e.Wait(ctx) }()
		synctest.Wait()
		assert.Empty(t, errs)
		cancel()
		assert.Equal(t, context.Canceled, <-errs)
	})
}

func TestEventDoneChannelPerRound(t *testing.T) {
	var e ctxsync.Event
	first := e.Done()
	assert.Equal(t, first, e.Done(), "one channel per round")
	select {
	case <-first:
		t.Fatal("closed before Set")
	default:
	}
	e.Set()
	<-first
	<-e.Done() // asked for after Set: closed too
	e.Clear()
	second := e.Done()
	assert.NotEqual(t, first, second, "a fresh channel after Clear")
	select {
	case <-second:
		t.Fatal("closed before the next Set")
	default:
	}
	<-first // old channels stay closed
	e.Set()
	<-second
}

// Random Set/Clear storms with random waiter cancellations leave no waiter
// behind: once the event stays set, every waiter returns, with nil or with
// exactly its context's error.
func TestEventSetClearStorm(t *testing.T) {
	const waiters, rounds = 16, 200 * stressScale
	var e ctxsync.Event
	var wg sync.WaitGroup
	for g := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(2) == 0 {
					go cancel()
				}
				if err := e.Wait(ctx); err != nil {
					assert.Equal(t, context.Canceled, err)
				}
				cancel()
			}
		}()
	}
	var setters sync.WaitGroup
	setters.Add(1)
	go func() {
		defer setters.Done()
		for i := range rounds * 4 {
			if i%2 == 0 {
				e.Set()
			} else {
				e.Clear()
			}
		}
	}()
	setters.Wait()
	e.Set()
	wg.Wait()
	assert.True(t, e.IsSet())
}

func TestEventNonBlockingCallsDoNotAllocate(t *testing.T) {
	var e ctxsync.Event
	e.Set()
	_ = e.Done()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		_ = e.Wait(ctx)
		_ = e.IsSet()
		e.Set()
		_ = e.Done()
	})
	assert.Zero(t, allocs)
	require.True(t, e.IsSet())
}

// R8: setting and clearing an event that no one asked a Done channel of
// allocates nothing: a channel is made only for a round that Done asks for.
func TestEventSetClearDoNotAllocate(t *testing.T) {
	var e ctxsync.Event
	allocs := testing.AllocsPerRun(100, func() {
		e.Set()
		e.Clear()
	})
	assert.Zero(t, allocs)
	assert.False(t, e.IsSet())
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
