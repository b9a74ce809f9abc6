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

func TestLockZeroValue(t *testing.T) {
	var l ctxsync.Lock
	assert.False(t, l.Locked())
	require.NoError(t, l.Lock(context.Background()))
	assert.True(t, l.Locked())
	assert.False(t, l.TryLock())
	l.Unlock()
	assert.False(t, l.Locked())
	assert.True(t, l.TryLock())
	l.Unlock()
}

// R1: a done context fails even when the lock is free.
func TestLockDoneContextFailsWhenFree(t *testing.T) {
	var l ctxsync.Lock
	err := l.Lock(cancelled())
	assert.Equal(t, context.Canceled, err)
	assert.False(t, l.Locked())
}

// R2: the error is exactly ctx.Err(), for both kinds of ending.
func TestLockReturnsExactContextError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := l.Lock(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, ctx.Err(), err)

		ctx2, cancel2 := context.WithCancelCause(context.Background())
		go cancel2(assert.AnError)
		err = l.Lock(ctx2)
		assert.Equal(t, context.Canceled, err, "ctx.Err(), not the cause")

		assert.True(t, l.Locked(), "failed Lock calls leave the lock as it was")
		l.Unlock()
		assert.False(t, l.Locked())
	})
}

// R4: blocked Lock calls are served in the order they started waiting, and
// the hand-off leaves no gap for TryLock.
func TestLockFIFOHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 8
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		order := make(chan int, n)
		for i := range n {
			go func() {
				if assert.NoError(t, l.Lock(context.Background())) {
					order <- i
				}
			}()
			synctest.Wait() // i is parked before i+1 starts
		}
		for i := range n {
			assert.False(t, l.TryLock(), "TryLock must not overtake waiters")
			l.Unlock()
			assert.True(t, l.Locked(), "ownership passes straight to the waiter")
			assert.Equal(t, i, <-order)
		}
		l.Unlock()
		assert.False(t, l.Locked())
	})
}

// A waiter that gives up lets the next one in line proceed.
func TestLockCancelledHeadDoesNotBlockNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { first <- l.Lock(ctx) }()
		synctest.Wait()
		second := make(chan error, 1)
		go func() { second <- l.Lock(context.Background()) }()
		synctest.Wait()

		cancel()
		assert.Equal(t, context.Canceled, <-first)
		l.Unlock()
		assert.NoError(t, <-second)
		assert.True(t, l.Locked())
		l.Unlock()
		assert.False(t, l.Locked())
	})
}

// A cancelled waiter is skipped by Unlock even when it has not left the line
// yet: the lock goes to the next waiter and is not lost.
func TestLockUnlockSkipsCancelledWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { first <- l.Lock(ctx) }()
		synctest.Wait()
		cancel()
		l.Unlock() // the cancelled waiter may or may not have left yet
		err := <-first
		if err == nil {
			// It was woken by the grant before seeing the cancellation.
			l.Unlock()
		} else {
			assert.Equal(t, context.Canceled, err)
		}
		assert.False(t, l.Locked())
		assert.True(t, l.TryLock())
		l.Unlock()
	})
}

// R3 under stress: random cancellations racing with hand-offs never break
// mutual exclusion and never lose the lock.
func TestLockStressRandomCancellation(t *testing.T) {
	const goroutines, rounds = 16, 300 * stressScale
	var l ctxsync.Lock
	var inside, entered atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancel()
				}
				var ok bool
				if rng.IntN(5) == 0 {
					ok = l.TryLock()
				} else {
					ok = l.Lock(ctx) == nil
				}
				if ok {
					if inside.Add(1) != 1 {
						t.Error("two holders at once")
					}
					entered.Add(1)
					inside.Add(-1)
					l.Unlock()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	assert.False(t, l.Locked(), "the lock is free once everyone is done")
	assert.True(t, l.TryLock())
	l.Unlock()
	assert.Positive(t, entered.Load())
}

func TestLockUnlockOfUnlockedPanics(t *testing.T) {
	var l ctxsync.Lock
	assert.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", l.Unlock)
	assert.False(t, l.Locked())
	require.NoError(t, l.Lock(context.Background()))
	l.Unlock()
}

// R8: calls that do not block allocate nothing.
func TestLockNonBlockingCallsDoNotAllocate(t *testing.T) {
	var l ctxsync.Lock
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		_ = l.Lock(ctx)
		l.Unlock()
		if l.TryLock() {
			l.Unlock()
		}
		_ = l.Locked()
	})
	assert.Zero(t, allocs)
}

// R1, R2: a context whose deadline has passed is done like a cancelled one:
// Lock fails with context.DeadlineExceeded, free lock or not, and takes
// nothing.
func TestLockExpiredDeadline(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var l ctxsync.Lock
	assert.Equal(t, context.DeadlineExceeded, l.Lock(ctx))
	require.False(t, l.Locked(), "a free lock stays free")

	require.NoError(t, l.Lock(context.Background()))
	assert.Equal(t, context.DeadlineExceeded, l.Lock(ctx))
	assert.True(t, l.Locked())
	l.Unlock()
	assert.False(t, l.Locked(), "the failed call left no waiter to hand the lock to")
}

// Waiting.

// "How many wait": the calls in line now, not yet granted.
func TestLockWaitingCountsCallsInLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var l ctxsync.Lock
		assert.Zero(t, l.Waiting(), "zero value")
		require.NoError(t, l.Lock(ctx))
		assert.Zero(t, l.Waiting(), "the holder is not waiting")
		assert.False(t, l.TryLock())
		assert.Zero(t, l.Waiting(), "a failed TryLock leaves no trace")

		done := make(chan error, 3)
		for range 3 {
			go func() { done <- l.Lock(ctx) }()
			synctest.Wait()
		}
		assert.Equal(t, 3, l.Waiting())
		l.Unlock()
		require.NoError(t, <-done)
		assert.Equal(t, 2, l.Waiting(), "a granted call no longer counts")
		l.Unlock()
		require.NoError(t, <-done)
		l.Unlock()
		require.NoError(t, <-done)
		assert.Zero(t, l.Waiting())
		l.Unlock()
		assert.Zero(t, l.Waiting())
	})
}

// A waiter that leaves on its context stops counting once it has left.
func TestLockWaitingDropsLeavers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Lock(ctx) }()
		synctest.Wait()
		assert.Equal(t, 1, l.Waiting())
		cancel()
		synctest.Wait()
		assert.Zero(t, l.Waiting())
		assert.ErrorIs(t, <-done, context.Canceled)
		l.Unlock()
	})
}

// Deterministic interleavings: inside a testing/synctest bubble a parked
// goroutine stays parked until the test lets it run, so "the context ends
// at the instant of a hand-off" is an exact schedule, not a hope.

// A Lock waiter whose context ends leaves no trace: the next Unlock frees
// the lock instead of handing it to nobody.
func TestInterleaveLockWaiterLeavesNoTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { got <- l.Lock(ctx) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		assert.Equal(t, context.Canceled, <-got)
		l.Unlock()
		assert.False(t, l.Locked())
		assert.True(t, l.TryLock())
		l.Unlock()
	})
}

// LockTicket.

// A request that can be served at once is granted before the ticket is
// returned; Stop then returns false and the caller holds the lock.
func TestLockTicketFreeLockGrantedAtOnce(t *testing.T) {
	var l ctxsync.Lock
	tk := l.LockTicket()
	require.True(t, isReady(tk), "Ready is closed when LockTicket returns")
	require.NoError(t, tk.Err())
	assert.True(t, l.Locked())
	assert.False(t, l.TryLock())
	assert.False(t, tk.Stop(), "Stop after a grant returns false")
	assert.True(t, isReady(tk), "when Stop returns false, Ready is closed")
	assert.NoError(t, tk.Err(), "a false Stop leaves the grant with the caller")
	assert.True(t, l.Locked(), "the caller still holds the lock")
	l.Unlock()
	assert.False(t, l.Locked())
}

// A waiting ticket holds the line as a parked Lock does: TryLock and the
// fast paths step aside, Unlock hands the lock straight to it, and the
// grant is complete when Unlock returns.
func TestLockTicketHandOff(t *testing.T) {
	var l ctxsync.Lock
	require.NoError(t, l.Lock(context.Background()))
	tk := l.LockTicket()
	require.False(t, isReady(tk))
	require.NoError(t, tk.Err(), "Err is nil while the request waits")
	assert.False(t, l.TryLock(), "TryLock must not overtake a ticket")

	l.Unlock()
	require.True(t, isReady(tk), "the hand-off is complete when Unlock returns")
	require.NoError(t, tk.Err())
	assert.True(t, l.Locked(), "the lock passed straight to the ticket")
	assert.False(t, tk.Stop())
	assert.False(t, l.TryLock())
	l.Unlock()
	assert.False(t, l.Locked())
	assert.True(t, l.TryLock(), "no waiter left: the fast path is back")
	l.Unlock()
}

// Stop of a waiting ticket returns true and has no effect at all: the
// lock stays held, and its Unlock frees it with nobody in line.
func TestLockTicketStopWhileWaiting(t *testing.T) {
	var l ctxsync.Lock
	require.NoError(t, l.Lock(context.Background()))
	tk := l.LockTicket()
	require.True(t, tk.Stop())
	assertStopped(t, tk)
	assert.True(t, l.Locked())
	l.Unlock()
	assert.False(t, l.Locked(), "the stopped ticket is not handed the lock")
	require.True(t, l.TryLock(), "and left no waiters bit behind")
	l.Unlock()
	assertStopped(t, tk)
}

// Only one of many concurrent Stops returns true.
func TestLockTicketOneStopWins(t *testing.T) {
	var l ctxsync.Lock
	require.NoError(t, l.Lock(context.Background()))
	tk := l.LockTicket()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if tk.Stop() {
				wins.Add(1)
			}
			// Whatever Stop returned, the ticket is spent by now.
			assert.Equal(t, ctxsync.ErrTicketStopped, tk.Err())
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load())
	assertStopped(t, tk)
	l.Unlock()
	assert.False(t, l.Locked())
}

// Tickets and blocking Lock calls stand in one line and are served in the
// order they joined it; a stopped ticket in the middle passes its turn on.
func TestLockTicketsMixedWithLockCallsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		require.NoError(t, l.Lock(context.Background()))
		order := make(chan int, 8)
		var tickets []*ctxsync.Ticket
		// Line: call 0, ticket 1, call 2, ticket 3 (stopped), ticket 4, call 5.
		for i := range 6 {
			if i == 0 || i == 2 || i == 5 {
				go func() {
					if assert.NoError(t, l.Lock(context.Background())) {
						order <- i
					}
				}()
				synctest.Wait() // parked before the next joins
				tickets = append(tickets, nil)
				continue
			}
			tickets = append(tickets, l.LockTicket())
		}
		require.True(t, tickets[3].Stop())
		for _, want := range []int{0, 1, 2, 4, 5} {
			l.Unlock()
			synctest.Wait()
			if tk := tickets[want]; tk != nil {
				require.True(t, isReady(tk), "ticket %d", want)
				require.NoError(t, tk.Err())
				assert.Empty(t, order, "only the ticket got the lock")
			} else {
				require.Equal(t, want, <-order)
			}
			for _, tk := range tickets[want+1:] {
				if tk != nil {
					assert.False(t, isReady(tk), "a ticket behind %d is served early", want)
				}
			}
			assert.True(t, l.Locked())
		}
		l.Unlock()
		assert.False(t, l.Locked())
		assertStopped(t, tickets[3])
	})
}

// Stop racing a grant, staged in both orders. The grant first: Stop
// returns false and the ticket holds the lock. Stop first: it returns true
// and the lock goes to the next in line, a blocked call.
func TestLockTicketStopRacingGrant(t *testing.T) {
	t.Run("GrantFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var l ctxsync.Lock
			require.NoError(t, l.Lock(context.Background()))
			tk := l.LockTicket()
			next := make(chan error, 1)
			go func() { next <- l.Lock(context.Background()) }()
			synctest.Wait()

			l.Unlock() // the grant
			if !tk.Stop() && tk.Err() == nil {
				l.Unlock() // held: give it back, as the idiom says
			} else {
				t.Fatal("Stop after the grant returned true")
			}
			require.NoError(t, <-next, "the lock went on to the next waiter")
			l.Unlock()
			assert.False(t, l.Locked())
		})
	})
	t.Run("StopFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var l ctxsync.Lock
			require.NoError(t, l.Lock(context.Background()))
			tk := l.LockTicket()
			next := make(chan error, 1)
			go func() { next <- l.Lock(context.Background()) }()
			synctest.Wait()

			require.True(t, tk.Stop())
			l.Unlock() // goes past the stopped ticket
			require.NoError(t, <-next)
			assertStopped(t, tk)
			assert.True(t, l.Locked(), "held by the blocked call now")
			l.Unlock()
			assert.False(t, l.Locked())
		})
	})
}

// A ticket for a lock waited for in one select with ctx.Done(), a timer
// and a ticket for another lock: whichever lock comes first is kept, the
// other ticket is stopped, and a grant that slipped in is given back.
func TestLockTicketsInOneSelect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var a, b ctxsync.Lock
		require.NoError(t, a.Lock(context.Background()))
		require.NoError(t, b.Lock(context.Background()))

		// Neither lock comes: the timer fires first.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ta, tb := a.LockTicket(), b.LockTicket()
		timer := time.NewTimer(time.Second)
		select {
		case <-ta.Ready():
			t.Fatal("a was not unlocked")
		case <-tb.Ready():
			t.Fatal("b was not unlocked")
		case <-ctx.Done():
			t.Fatal("ctx was not cancelled")
		case <-timer.C:
		}
		require.True(t, ta.Stop())
		require.True(t, tb.Stop())

		// b is unlocked by someone else a moment later: b wins, and the
		// ticket for a is withdrawn.
		ta, tb = a.LockTicket(), b.LockTicket()
		timer.Reset(time.Minute)
		go func() {
			time.Sleep(time.Millisecond) // fake time inside the bubble
			b.Unlock()
		}()
		var got string
		select {
		case <-ta.Ready():
			got = "a"
		case <-tb.Ready():
			got = "b"
		case <-ctx.Done():
		case <-timer.C:
		}
		require.Equal(t, "b", got)
		require.NoError(t, tb.Err())
		if !ta.Stop() && ta.Err() == nil {
			a.Unlock()
		}
		assert.True(t, b.Locked())
		b.Unlock()

		// ctx ends first.
		require.NoError(t, b.Lock(context.Background()))
		ta, tb = a.LockTicket(), b.LockTicket()
		go cancel()
		select {
		case <-ta.Ready():
		case <-tb.Ready():
		case <-ctx.Done():
		case <-timer.C:
		}
		require.Error(t, ctx.Err())
		for _, tk := range []*ctxsync.Ticket{ta, tb} {
			require.True(t, tk.Stop())
		}
		a.Unlock()
		b.Unlock()
		assert.False(t, a.Locked())
		assert.False(t, b.Locked())
		timer.Stop()
	})
}

// R8, R9: a ticket costs at most its record and its channel, whether it is
// granted at once or waits, and Stop allocates nothing.
func TestLockTicketAllocs(t *testing.T) {
	var l ctxsync.Lock
	granted := testing.AllocsPerRun(100, func() {
		tk := l.LockTicket()
		if !tk.Stop() && tk.Err() == nil {
			l.Unlock()
		}
	})
	assert.LessOrEqual(t, granted, 2.0)
	require.NoError(t, l.Lock(context.Background()))
	waiting := testing.AllocsPerRun(100, func() {
		if !l.LockTicket().Stop() {
			t.Error("a waiting ticket must stop")
		}
	})
	assert.LessOrEqual(t, waiting, 2.0)
	l.Unlock()
	var tk *ctxsync.Ticket
	require.NoError(t, l.Lock(context.Background()))
	tk = l.LockTicket()
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = tk.Err(); _ = tk.Ready() }))
	require.True(t, tk.Stop())
	l.Unlock()
}

// Under stress, Stops racing hand-offs never let the lock be held twice
// and never lose it: each ticket is either withdrawn (true) or held and
// given back (false with a nil Err).
func TestLockTicketStressStopRacingGrant(t *testing.T) {
	const goroutines, rounds = 8, 300 * stressScale
	var l ctxsync.Lock
	var inside, entered, stopped, lateGrants atomic.Int64
	plain := 0 // no atomics: the race detector checks the hand-offs order it
	hold := func() {
		if inside.Add(1) != 1 {
			t.Error("the lock held twice")
		}
		plain++
		entered.Add(1)
		inside.Add(-1)
		l.Unlock()
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 13))
			for range rounds {
				switch rng.IntN(4) {
				case 0:
					if l.Lock(context.Background()) == nil {
						hold()
					}
				case 1:
					if l.TryLock() {
						hold()
					}
				default:
					tk := l.LockTicket()
					waited := !isReady(tk)
					// Give the holder a moment to hand the lock over,
					// or not, so that Stop lands anywhere.
					for range rng.IntN(3) {
						runtime.Gosched()
					}
					if rng.IntN(2) == 0 {
						<-tk.Ready()
						assert.NoError(t, tk.Err())
						hold()
						continue
					}
					if !tk.Stop() {
						assert.True(t, isReady(tk), "Stop false: Ready is closed")
						assert.NoError(t, tk.Err())
						if waited {
							lateGrants.Add(1)
						}
						hold()
					} else {
						stopped.Add(1)
						assertStopped(t, tk)
					}
				}
			}
		})
	}
	wg.Wait()
	assert.False(t, l.Locked(), "the lock is free once everyone is done")
	assert.True(t, l.TryLock(), "and no stale waiters bit")
	l.Unlock()
	assert.Positive(t, entered.Load())
	assert.Equal(t, entered.Load(), int64(plain))
	t.Logf("%d holds, %d Stops that withdrew, %d that came after a hand-off", entered.Load(), stopped.Load(), lateGrants.Load())
}

// Tickets share the Lock's one line with Condition waiters: a notified
// waiter joins it behind a ticket already waiting, and gets the lock only
// after the ticket's holder lets it go.
func TestLockTicketSharesLineWithCondition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l ctxsync.Lock
		c := ctxsync.NewCondition(&l)
		woke := make(chan struct{})
		go func() {
			if assert.NoError(t, c.Lock(context.Background())) {
				assert.NoError(t, c.Wait(context.Background()))
				close(woke)
				c.Unlock()
			}
		}()
		synctest.Wait() // waiting for a notification, lock let go
		require.NoError(t, l.Lock(context.Background()))
		tk := l.LockTicket()
		c.Notify(1) // the waiter joins the line behind the ticket
		l.Unlock()
		synctest.Wait()
		require.True(t, isReady(tk), "the ticket was first in line")
		select {
		case <-woke:
			t.Fatal("the notified waiter overtook the ticket")
		default:
		}
		l.Unlock() // the ticket's holder lets go
		<-woke
		synctest.Wait()
		assert.False(t, l.Locked())
	})
}
