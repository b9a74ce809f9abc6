package waitq_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newWaiters(n int) []*waitq.Waiter[int] {
	ws := make([]*waitq.Waiter[int], n)
	for i := range ws {
		ws[i] = waitq.NewWaiter[int](context.Background(), i)
	}
	return ws
}

func lineOf(l *waitq.List[int]) []int {
	var ns []int
	for l.Len() > 0 {
		w := l.Head()
		ns = append(ns, w.Weight)
		l.Remove(w)
	}
	return ns
}

func TestListOrderAndRemove(t *testing.T) {
	var l waitq.List[int]
	ws := newWaiters(5)
	for _, w := range ws {
		l.PushBack(w)
	}
	assert.Equal(t, 5, l.Len())
	l.Remove(ws[0]) // head
	l.Remove(ws[2]) // middle
	l.Remove(ws[4]) // tail
	l.Remove(ws[4]) // not in the line any more: nothing happens
	var other waitq.List[int]
	other.Remove(ws[1]) // in another line: nothing happens
	assert.Equal(t, 2, l.Len())
	assert.Equal(t, []int{1, 3}, lineOf(&l))
	assert.Nil(t, l.Head())
}

func TestPushBackTwicePanics(t *testing.T) {
	var l waitq.List[int]
	w := waitq.NewWaiter[int](context.Background(), 0)
	l.PushBack(w)
	assert.Panics(t, func() { l.PushBack(w) })
	assert.Equal(t, 1, l.Len())
}

func TestFirstDropsAbandonedButNotPinned(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var l waitq.List[int]
	dead := waitq.NewWaiter[int](ctx, 0)
	pinned := waitq.NewWaiter[int](ctx, 1)
	pinned.Pinned = true
	l.PushBack(dead)
	l.PushBack(pinned)
	assert.Same(t, pinned, l.First())
	assert.Equal(t, 1, l.Len())
	assert.False(t, dead.Granted())

	var l2 waitq.List[int]
	l2.PushBack(waitq.NewWaiter[int](ctx, 0))
	assert.Nil(t, l2.First())
	assert.Zero(t, l2.Len())
}

// The decision and the take read the same line: a waiter that First has
// returned is returned again after its context ends, until it leaves. A
// First that looked again would return nil here, and a primitive that
// decided on the first answer and took on the second would act on nothing
// (the Queue.Get panic of issue 21).
func TestFirstIsStableWhileTheWaiterIsInLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var l waitq.List[int]
	w := waitq.NewWaiter[int](ctx, 0)
	next := waitq.NewWaiter[int](context.Background(), 0)
	l.PushBack(w)
	l.PushBack(next)
	require.Same(t, w, l.First())
	cancel()
	assert.Same(t, w, l.First(), "a context ending between two reads changes nothing")
	assert.Equal(t, 2, l.Len())

	// Once it leaves, First looks afresh, and an abandoned waiter that it
	// had not returned yet is dropped as before.
	l.Remove(w)
	dead := waitq.NewWaiter[int](ctx, 0)
	l.PushBack(dead)
	assert.Same(t, next, l.First())
	waitq.Grant(next)
	assert.Nil(t, l.First(), "dead was never returned, so it is dropped")
	assert.Zero(t, l.Len())
}

// A waiter that First returned and that then leaves on its context (under
// the owner's mutex, in ParkUnlock) no longer counts: the next one is
// looked at.
func TestFirstForgetsAWaiterThatLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var l waitq.List[int]
		ctx, cancel := context.WithCancel(context.Background())
		w := waitq.NewWaiter[int](ctx, 0)
		next := waitq.NewWaiter[int](context.Background(), 0)
		mu.Lock()
		l.PushBack(w)
		l.PushBack(next)
		require.Same(t, w, l.First())
		errc := make(chan error, 1)
		go func() {
			mu.Lock()
			errc <- waitq.ParkUnlock(ctx, &mu, w, nil)
		}()
		mu.Unlock()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		mu.Lock()
		assert.Same(t, next, l.First())
		mu.Unlock()
	})
}

func TestParkGranted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var l waitq.List[int]
		w := waitq.NewWaiter[int](context.Background(), 0)
		mu.Lock()
		l.PushBack(w)
		done := make(chan error, 1)
		go func() { done <- waitq.ParkUnlock(context.Background(), &mu, w, nil) }()
		synctest.Wait()
		assert.Empty(t, done, "parked until granted")

		mu.Lock()
		w.Value = 42
		waitq.Grant(w)
		mu.Unlock()
		require.NoError(t, <-done)
		assert.Equal(t, 42, w.Value)
		assert.True(t, w.Granted())
		assert.Zero(t, l.Len())
	})
}

func TestParkCancelledLeavesLineAndRunsPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var l waitq.List[int]
		ctx, cancel := context.WithCancel(context.Background())
		w := waitq.NewWaiter[int](ctx, 0)
		mu.Lock()
		l.PushBack(w)
		var left []*waitq.Waiter[int]
		done := make(chan error, 1)
		go func() {
			done <- waitq.ParkUnlock(ctx, &mu, w, func(w *waitq.Waiter[int]) { left = append(left, w) })
		}()
		synctest.Wait()
		cancel()
		assert.Equal(t, context.Canceled, <-done)
		assert.Zero(t, l.Len())
		assert.Equal(t, []*waitq.Waiter[int]{w}, left)
		assert.False(t, w.Granted())
	})
}

// A grant that arrives while the context ends is kept: never lost, never
// doubled, and the leaving policy does not run.
func TestParkKeepsGrantRacingWithCancel(t *testing.T) {
	for range 100 {
		var mu sync.Mutex
		var l waitq.List[int]
		ctx, cancel := context.WithCancel(context.Background())
		w := waitq.NewWaiter[int](ctx, 0)
		mu.Lock()
		l.PushBack(w)
		waitq.Grant(w)
		cancel()
		err := waitq.ParkUnlock(ctx, &mu, w, func(*waitq.Waiter[int]) { t.Error("policy ran for a granted waiter") })
		require.NoError(t, err)
		assert.True(t, mu.TryLock(), "Park returns without the mutex")
		mu.Unlock()
	}
}

// A pinned waiter ignores its context and waits for its grant.
func TestParkPinnedIgnoresContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var l waitq.List[int]
		ctx, cancel := context.WithCancel(context.Background())
		w := waitq.NewWaiter[int](ctx, 0)
		w.Pinned = true
		mu.Lock()
		l.PushBack(w)
		done := make(chan error, 1)
		go func() { done <- waitq.ParkUnlock(ctx, &mu, w, nil) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		assert.Empty(t, done, "still waiting for the promised grant")
		mu.Lock()
		waitq.Grant(w)
		mu.Unlock()
		assert.NoError(t, <-done)
	})
}

// A leaving policy may put the waiter back in a line; Park then waits for
// that grant without the context and still reports ctx.Err().
func TestParkRequeuedByPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var first, second waitq.List[int]
		ctx, cancel := context.WithCancel(context.Background())
		w := waitq.NewWaiter[int](ctx, 0)
		mu.Lock()
		first.PushBack(w)
		done := make(chan error, 1)
		go func() {
			done <- waitq.ParkUnlock(ctx, &mu, w, func(w *waitq.Waiter[int]) {
				w.Pinned = true
				second.PushBack(w)
			})
		}()
		synctest.Wait()
		cancel()
		synctest.Wait()
		assert.Empty(t, done)
		mu.Lock()
		assert.Zero(t, first.Len())
		assert.Same(t, w, second.First())
		waitq.Grant(w)
		mu.Unlock()
		assert.Equal(t, context.Canceled, <-done)
	})
}

// A recycled record comes back as new: a fresh channel, the new context
// and weight, no item, no grant, in no line.
func TestPoolRecyclesAsNew(t *testing.T) {
	var pool waitq.Pool[int]
	var mu sync.Mutex
	var l waitq.List[int]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		w := pool.Get(context.Background(), 3)
		assert.Equal(t, 3, w.Weight)
		assert.Zero(t, w.Value)
		assert.False(t, w.Granted())
		assert.False(t, w.Pinned)
		assert.False(t, w.Refused)
		w.Value, w.Pinned, w.Refused = 7, true, true
		mu.Lock()
		l.PushBack(w)
		waitq.Grant(w)
		require.NoError(t, waitq.ParkUnlock(ctx, &mu, w, nil))
		pool.Put(w)

		// A record made for a done context leaves at once.
		w = pool.Get(ctx, 0)
		mu.Lock()
		l.PushBack(w)
		assert.Equal(t, context.Canceled, waitq.ParkUnlock(ctx, &mu, w, nil))
		assert.Zero(t, l.Len())
		pool.Put(w)
	}
}

func TestGrantAllInOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var l waitq.List[int]
	ws := newWaiters(3)
	ws[1] = waitq.NewWaiter[int](ctx, 1) // abandoned ones are granted too
	for _, w := range ws {
		l.PushBack(w)
	}
	var order []int
	waitq.GrantAll(&l, func(w *waitq.Waiter[int]) { order = append(order, w.Weight) })
	assert.Equal(t, []int{0, 1, 2}, order)
	assert.Zero(t, l.Len())
	for _, w := range ws {
		assert.True(t, w.Granted())
	}
}

// RefuseAll wakes the whole line, abandoned waiters too, each marked
// Refused and none holding a grant it must give back.
func TestRefuseAll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var l waitq.List[int]
	ws := newWaiters(3)
	ws[1] = waitq.NewWaiter[int](ctx, 1)
	for _, w := range ws {
		l.PushBack(w)
	}
	waitq.RefuseAll(&l)
	assert.Zero(t, l.Len())
	var mu sync.Mutex
	for i, w := range ws {
		assert.True(t, w.Refused)
		wctx := context.Background()
		if i == 1 {
			wctx = ctx
		}
		mu.Lock()
		assert.NoError(t, waitq.ParkUnlock(wctx, &mu, w, nil), "woken, and a wake-up is kept")
	}
}

func newTicket(weight int) *waitq.Waiter[int] {
	w := &waitq.Waiter[int]{}
	w.InitTicket(weight)
	return w
}

// A ticket still in its line is withdrawn: it leaves the line, the policy
// runs under the mutex, and it is never decided.
func TestWithdrawWaitingTicket(t *testing.T) {
	var mu sync.Mutex
	var l waitq.List[int]
	w, next := newTicket(1), newTicket(2)
	l.PushBack(w)
	l.PushBack(next)
	assert.False(t, w.Decided())
	var left []*waitq.Waiter[int]
	ok := waitq.Withdraw(&mu, w, func(w *waitq.Waiter[int]) {
		assert.False(t, mu.TryLock(), "the policy runs under the mutex")
		left = append(left, w)
	})
	require.True(t, ok)
	assert.Equal(t, []*waitq.Waiter[int]{w}, left)
	assert.True(t, w.Withdrawn())
	assert.False(t, w.Decided())
	assert.Same(t, next, l.First(), "the next in line moves up")
	assert.True(t, mu.TryLock(), "Withdraw returns without the mutex")
	mu.Unlock()

	// Withdrawn already: false, and the policy does not run again.
	assert.False(t, waitq.Withdraw(&mu, w, func(*waitq.Waiter[int]) { t.Error("policy ran twice") }))
	assert.True(t, w.Withdrawn())
}

// A ticket granted (or refused) before Withdraw stays decided: false, and
// the policy does not run.
func TestWithdrawDecidedTicket(t *testing.T) {
	var mu sync.Mutex
	var l waitq.List[int]
	w := newTicket(0)
	l.PushBack(w)
	waitq.Grant(w)
	assert.True(t, w.Decided())
	assert.False(t, waitq.Withdraw(&mu, w, func(*waitq.Waiter[int]) { t.Error("policy ran for a granted ticket") }))
	assert.False(t, w.Withdrawn())
	assert.True(t, w.Decided())

	refused := newTicket(0)
	l.PushBack(refused)
	waitq.RefuseAll(&l)
	assert.True(t, refused.Decided())
	assert.True(t, refused.Refused)
	assert.False(t, waitq.Withdraw(&mu, refused, nil))

	never := newTicket(0) // decided without ever standing in line
	waitq.Grant(never)
	assert.False(t, waitq.Withdraw(&mu, never, nil))
}

// Withdraw racing Grant: exactly one of them wins, whatever the timing.
func TestWithdrawRacingGrant(t *testing.T) {
	for range 200 {
		var mu sync.Mutex
		var l waitq.List[int]
		w := newTicket(0)
		l.PushBack(w)
		granted := make(chan bool, 1)
		go func() {
			mu.Lock()
			g := l.First()
			if g != nil {
				waitq.Grant(g)
			}
			mu.Unlock()
			granted <- g != nil
		}()
		withdrawn := waitq.Withdraw(&mu, w, nil)
		require.NotEqual(t, withdrawn, <-granted, "exactly one of withdraw and grant")
		require.Equal(t, !withdrawn, w.Decided())
		require.Equal(t, withdrawn, w.Withdrawn())
	}
}

// A policy that puts the withdrawn ticket back in line is a bug of the
// primitive; Withdraw says so, and lets go of the mutex.
func TestWithdrawPolicyRequeuePanics(t *testing.T) {
	var mu sync.Mutex
	var l waitq.List[int]
	w := newTicket(0)
	l.PushBack(w)
	assert.Panics(t, func() {
		waitq.Withdraw(&mu, w, func(w *waitq.Waiter[int]) { l.PushBack(w) })
	})
	assert.True(t, mu.TryLock())
	mu.Unlock()
}
