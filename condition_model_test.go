package ctxsync_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// condWaiter is a goroutine of FuzzCondition: it locks, waits once, and
// unlocks.
type condWaiter struct {
	*pending
	id        int
	initial   bool  // still to get the lock before it can Wait
	cancelled bool  // its context has ended
	result    error // what its Wait returns once it has the lock back
}

// condSpec is the sequential model of a Condition and its Lock. At rest
// only the fuzzing goroutine ("main") can hold the lock: a waiter that gets
// it either starts waiting or returns and unlocks.
type condSpec struct {
	mainHolds bool
	lockLine  []*condWaiter // goroutines waiting for the lock, in order
	condLine  []*condWaiter // goroutines waiting for a notification
	returned  []int         // waiter ids in the order their Wait returned
}

// release lets go of the lock and runs the hand-offs it causes.
func (m *condSpec) release() {
	for len(m.lockLine) > 0 {
		w := m.lockLine[0]
		m.lockLine = m.lockLine[1:]
		if w.initial {
			w.initial = false
			if !w.cancelled {
				m.condLine = append(m.condLine, w)
				continue
			}
			w.result = context.Canceled // a done context: Wait returns at once
		}
		w.finish(opOutput{err: w.result})
		m.returned = append(m.returned, w.id)
	}
}

// lockFor puts w in line for the lock, and hands the lock over at once if
// it is free.
func (m *condSpec) lockFor(w *condWaiter) {
	m.lockLine = append(m.lockLine, w)
	if !m.mainHolds {
		m.release()
	}
}

// cancelWaiter ends w's context. A waiter waiting for a notification
// leaves that line and takes the lock back; one in line for the lock stays
// there (a notified waiter keeps its notification; one that has not started
// waiting will find its context done).
func (m *condSpec) cancelWaiter(w *condWaiter) {
	w.cancel()
	if w.over || w.cancelled {
		return
	}
	w.cancelled = true
	if i := slices.Index(m.condLine, w); i >= 0 {
		m.condLine = slices.Delete(m.condLine, i, i+1)
		w.result = context.Canceled
		m.lockFor(w)
	}
}

func FuzzCondition(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 3, 1, 2, 0, 1, 0, 4, 0, 2, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0, 5, 1, 3, 9, 2, 0, 6, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 5, 0, 5, 1, 4, 0, 2, 0, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var c ctxsync.Condition
			m := &condSpec{}
			var logMu sync.Mutex
			var returned []int
			var waiters []*condWaiter
			var calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%7, int(data[1])
				data = data[2:]
				switch op {
				case 0: // a new waiter: Lock, Wait, Unlock
					id := len(waiters)
					p := startCall(&calls, 0, func(ctx context.Context) opOutput {
						_ = c.Lock(context.Background())
						defer c.Unlock()
						err := c.Wait(ctx)
						logMu.Lock()
						returned = append(returned, id)
						logMu.Unlock()
						return opOutput{err: err}
					})
					w := &condWaiter{pending: p, id: id, initial: true}
					waiters = append(waiters, w)
					m.lockFor(w)
				case 1: // main takes the lock
					want := !m.mainHolds
					m.mainHolds = m.mainHolds || want
					require.Equal(t, want, c.TryLock())
				case 2: // main lets go of it
					if !m.mainHolds {
						require.PanicsWithValue(t, "ctxsync: Unlock of unlocked Lock", c.Unlock)
						break
					}
					m.mainHolds = false
					c.Unlock()
					m.release()
				case 3, 4: // Notify(arg % 3), NotifyAll
					if !m.mainHolds {
						require.Panics(t, func() { c.Notify(1) })
						break
					}
					n := arg % 3
					if op == 4 {
						n = len(m.condLine)
						c.NotifyAll()
					} else {
						c.Notify(n)
					}
					for ; n > 0 && len(m.condLine) > 0; n-- {
						w := m.condLine[0]
						m.condLine = m.condLine[1:]
						w.result = nil
						m.lockLine = append(m.lockLine, w)
					}
				case 5: // a waiter's context ends
					if len(waiters) > 0 {
						m.cancelWaiter(waiters[arg%len(waiters)])
					}
				case 6: // Wait with a done context keeps the lock
					if m.mainHolds {
						require.Equal(t, context.Canceled, c.Wait(cancelled()))
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.mainHolds, c.Locked())
				logMu.Lock()
				require.Equal(t, m.returned, returned, "the order in which waiters returned")
				logMu.Unlock()
			}
			// Let everyone go: end every waiter's context, then the lock.
			for _, w := range waiters {
				m.cancelWaiter(w)
			}
			if m.mainHolds {
				m.mainHolds = false
				c.Unlock()
				m.release()
			}
			checkPending(t, calls)
			require.False(t, c.Locked())
		})
	})
}
