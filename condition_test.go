package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// waitAsyncCond starts a goroutine that locks c, waits on it with ctx,
// reports the result of Wait, and unlocks.
func waitAsyncCond(ctx context.Context, t *testing.T, c *ctxsync.Condition, id int, out chan<- result) {
	go func() {
		if !assert.NoError(t, c.Lock(context.Background())) {
			return
		}
		err := c.Wait(ctx)
		assert.True(t, c.Locked(), "Wait returns with the lock held")
		out <- result{id, err}
		c.Unlock()
	}()
}

type result struct {
	id  int
	err error
}

func TestConditionZeroValueAndSharedLock(t *testing.T) {
	var c ctxsync.Condition
	require.NoError(t, c.Lock(context.Background()))
	assert.True(t, c.Locked())
	assert.False(t, c.TryLock())
	c.Unlock()
	assert.True(t, c.TryLock())
	c.Unlock()

	var l ctxsync.Lock
	shared := ctxsync.NewCondition(&l)
	require.NoError(t, l.Lock(context.Background()))
	assert.True(t, shared.Locked())
	shared.Unlock()
	assert.False(t, l.Locked())
	assert.False(t, ctxsync.NewCondition(nil).Locked())
}

func TestConditionMisusePanics(t *testing.T) {
	var c ctxsync.Condition
	tests := []struct {
		name string
		call func()
		msg  string
	}{
		{"Wait", func() { _ = c.Wait(context.Background()) }, "ctxsync: Condition.Wait without holding the lock"},
		{"WaitFor with true predicate", func() { _ = c.WaitFor(context.Background(), func() bool { return true }) }, "ctxsync: Condition.WaitFor without holding the lock"},
		{"Notify", func() { c.Notify(1) }, "ctxsync: Condition.Notify without holding the lock"},
		{"Notify zero", func() { c.Notify(0) }, "ctxsync: Condition.Notify without holding the lock"},
		{"NotifyAll", c.NotifyAll, "ctxsync: Condition.NotifyAll without holding the lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.msg, tt.call)
			assert.False(t, c.Locked())
			require.True(t, c.TryLock(), "the lock is still usable")
			c.Unlock()
		})
	}
}

// R1: a done context returns at once without letting go of the lock.
func TestConditionWaitDoneContextKeepsLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c ctxsync.Condition
		require.NoError(t, c.Lock(context.Background()))
		locker := make(chan error, 1)
		go func() { locker <- c.Lock(context.Background()) }()
		synctest.Wait()

		assert.Equal(t, context.Canceled, c.Wait(cancelled()))
		assert.Equal(t, context.Canceled, c.WaitFor(cancelled(), func() bool { return false }))
		synctest.Wait()
		assert.Empty(t, locker, "the lock was never let go")
		assert.NoError(t, c.WaitFor(cancelled(), func() bool { return true }))
		c.Unlock()
		require.NoError(t, <-locker)
		c.Unlock()
	})
}

// Notified waiters join the lock's line in the order they were notified,
// behind goroutines already waiting in Lock, and return one at a time.
func TestConditionNotifyOrderBehindLockers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c ctxsync.Condition
		out := make(chan result, 10)
		for id := range 3 {
			waitAsyncCond(context.Background(), t, &c, id, out)
			synctest.Wait()
		}
		require.NoError(t, c.Lock(context.Background()))
		go func() {
			if assert.NoError(t, c.Lock(context.Background())) {
				out <- result{id: 100}
				c.Unlock()
			}
		}()
		synctest.Wait()
		c.Notify(2)
		c.Notify(0)
		c.Notify(-1)
		c.Unlock()
		assert.Equal(t, result{id: 100}, <-out)
		assert.Equal(t, result{id: 0}, <-out)
		assert.Equal(t, result{id: 1}, <-out)
		synctest.Wait()
		assert.Empty(t, out, "only two were notified")

		require.NoError(t, c.Lock(context.Background()))
		c.NotifyAll()
		c.Unlock()
		assert.Equal(t, result{id: 2}, <-out)
		synctest.Wait()
		assert.False(t, c.Locked())
	})
}

// A waiter whose context ends takes the lock back before returning
// ctx.Err(), and no notification is spent on it: Notify picks the next
// waiter, whether or not the cancelled one has left the line yet.
func TestConditionNotifySkipsCancelledWaiter(t *testing.T) {
	for _, leftFirst := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			var c ctxsync.Condition
			out := make(chan result, 2)
			ctx, cancel := context.WithCancel(context.Background())
			waitAsyncCond(ctx, t, &c, 0, out)
			synctest.Wait()
			waitAsyncCond(context.Background(), t, &c, 1, out)
			synctest.Wait()

			require.NoError(t, c.Lock(context.Background()))
			cancel()
			if leftFirst {
				synctest.Wait() // the cancelled waiter now waits for the lock
			}
			c.Notify(1)
			c.Unlock()
			got := map[int]error{}
			for range 2 {
				r := <-out
				got[r.id] = r.err
			}
			assert.Equal(t, map[int]error{0: context.Canceled, 1: nil}, got)
			synctest.Wait()
			assert.False(t, c.Locked())
		})
	}
}

// A waiter once notified returns nil even if its context ends before it
// gets the lock.
func TestConditionNotifiedWaiterKeepsNotification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c ctxsync.Condition
		out := make(chan result, 1)
		ctx, cancel := context.WithCancel(context.Background())
		waitAsyncCond(ctx, t, &c, 0, out)
		synctest.Wait()
		require.NoError(t, c.Lock(context.Background()))
		c.Notify(1)
		cancel()
		synctest.Wait()
		assert.Empty(t, out, "it waits for the lock")
		c.Unlock()
		assert.Equal(t, result{id: 0}, <-out)
	})
}

func TestConditionWaitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c ctxsync.Condition
		require.NoError(t, c.Lock(context.Background()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := c.WaitFor(ctx, func() bool { return false })
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.True(t, c.Locked())
		c.Unlock()
	})
}

func TestConditionWaitForPredicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c ctxsync.Condition
		n := 0
		calls := 0
		done := make(chan error, 1)
		go func() {
			_ = c.Lock(context.Background())
			done <- c.WaitFor(context.Background(), func() bool { calls++; return n >= 3 })
			c.Unlock()
		}()
		synctest.Wait()
		for range 3 {
			require.NoError(t, c.Lock(context.Background()))
			n++
			c.NotifyAll()
			c.Unlock()
			synctest.Wait()
		}
		require.NoError(t, <-done)
		assert.Equal(t, 4, calls, "checked before waiting and after each wake-up")
	})
}

// A panicking predicate leaves the lock held and the Condition consistent.
func TestConditionWaitForPredicatePanics(t *testing.T) {
	var c ctxsync.Condition
	require.NoError(t, c.Lock(context.Background()))
	assert.PanicsWithValue(t, "boom", func() {
		_ = c.WaitFor(context.Background(), func() bool { panic("boom") })
	})
	assert.True(t, c.Locked())
	c.NotifyAll()
	c.Unlock()
	assert.True(t, c.TryLock())
	c.Unlock()
}

// Producers and consumers built on WaitFor, with random cancellations:
// every token produced is consumed exactly once and nobody is left behind.
func TestConditionProducerConsumerRandomCancellation(t *testing.T) {
	const producers, perProducer, steady, fickle = 4, 300, 3, 6
	var c ctxsync.Condition
	tokens, consumed, produced := 0, 0, 0
	closed := false

	var consumers sync.WaitGroup
	consume := func(seed uint64, cancels bool) {
		defer consumers.Done()
		rng := rand.New(rand.NewPCG(seed, 5))
		for {
			ctx, cancel := context.WithCancel(context.Background())
			if cancels && rng.IntN(2) == 0 {
				go cancel()
			}
			if !assert.NoError(t, c.Lock(context.Background())) {
				cancel()
				return
			}
			err := c.WaitFor(ctx, func() bool { return tokens > 0 || closed })
			assert.True(t, c.Locked())
			cancel()
			if err != nil {
				assert.Equal(t, context.Canceled, err)
			}
			if tokens > 0 {
				tokens--
				consumed++
			}
			stop := closed && tokens == 0
			c.Unlock()
			if stop {
				return
			}
		}
	}
	for i := range steady + fickle {
		consumers.Add(1)
		go consume(uint64(i), i >= steady)
	}

	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for range perProducer {
				if !assert.NoError(t, c.Lock(context.Background())) {
					return
				}
				tokens++
				produced++
				c.Notify(1)
				c.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Lock(context.Background()))
	closed = true
	c.NotifyAll()
	c.Unlock()

	finished := make(chan struct{})
	go func() { consumers.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("consumers stuck: a notification was lost")
	}
	assert.Equal(t, producers*perProducer, produced)
	assert.Equal(t, produced, consumed)
	assert.Zero(t, tokens)
	assert.False(t, c.Locked())
}

// Notify(1) racing with waiters' cancellations: every notification wakes
// exactly one waiter with nil. Steady waiters (never cancelled) are always
// in line when Notify runs, so a notification spent on a waiter that then
// returns ctx.Err() would stall the notifier, and a doubled one would show
// in the count.
func TestConditionNotifyVersusCancelStorm(t *testing.T) {
	const notifications, steady, fickle = 2000 * stressScale, 2, 6
	var c ctxsync.Condition
	closed := false
	inLine := make(chan struct{}, steady)
	woke := make(chan struct{}, notifications+steady+fickle)

	var wg sync.WaitGroup
	for i := range steady + fickle {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 6))
			require.NoError(t, c.Lock(context.Background()))
			defer c.Unlock()
			if i < steady {
				inLine <- struct{}{} // sent with the lock held: in line once it is let go
			}
			for {
				ctx, cancel := context.WithCancel(context.Background())
				if i >= steady && rng.IntN(2) == 0 {
					go cancelAfterYields(cancel, rng.IntN(64))
				}
				err := c.Wait(ctx)
				cancel()
				if closed {
					return
				}
				if err == nil {
					woke <- struct{}{} // with the lock held, before waiting again
				} else {
					assert.Equal(t, context.Canceled, err)
				}
			}
		})
	}
	for range steady {
		<-inLine
	}
	rng := rand.New(rand.NewPCG(99, 6))
	for n := range notifications {
		require.NoError(t, c.Lock(context.Background()))
		c.Notify(1)
		for range rng.IntN(8) {
			runtime.Gosched() // let cancellations land between Notify and Unlock
		}
		c.Unlock()
		select {
		case <-woke:
		case <-time.After(time.Minute):
			t.Fatalf("notification %d was lost", n)
		}
	}
	require.NoError(t, c.Lock(context.Background()))
	closed = true
	c.NotifyAll()
	c.Unlock()
	wg.Wait()
	assert.Empty(t, woke, "no notification woke two waiters")
}
