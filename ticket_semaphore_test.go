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

// ticketSemaphore is a semaphore with tickets: both kinds have them.
type ticketSemaphore interface {
	anySemaphore
	AcquireTicket(n int) *ctxsync.Ticket
}

func forEachTicketSemaphore(t *testing.T, test func(t *testing.T, newSem func(n int) ticketSemaphore)) {
	t.Run("Semaphore", func(t *testing.T) {
		test(t, func(n int) ticketSemaphore { return ctxsync.NewSemaphore(n) })
	})
	t.Run("BoundedSemaphore", func(t *testing.T) {
		test(t, func(n int) ticketSemaphore { return ctxsync.NewBoundedSemaphore(n) })
	})
}

// Free permits with nobody in line: granted before the ticket is returned.
func TestAcquireTicketGrantedAtOnce(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(3)
		tk := s.AcquireTicket(2)
		require.True(t, isReady(tk))
		require.NoError(t, tk.Err())
		assert.Equal(t, 1, s.Available())
		assert.False(t, tk.Stop(), "decided: Stop returns false")
		assert.NoError(t, tk.Err(), "and the caller holds the permits")
		assert.Equal(t, 1, s.Available())

		zero := s.AcquireTicket(0)
		require.True(t, isReady(zero), "a request for no permit is served at once when nobody waits")
		require.NoError(t, zero.Err())
		s.ReleaseN(2)
		assert.Equal(t, 3, s.Available())
	})
}

// A waiting ticket stands in line as a blocked AcquireN does: the fast
// paths step aside, and Release hands it its permits once it can be served
// whole; the grant is complete when Release returns.
func TestAcquireTicketWaitsAndIsHandedPermits(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(3)
		require.True(t, s.TryAcquireN(3))
		tk := s.AcquireTicket(2)
		require.False(t, isReady(tk))
		require.NoError(t, tk.Err(), "nil while waiting")
		assert.True(t, s.Locked())

		s.Release()
		assert.False(t, isReady(tk), "one permit is not the whole request")
		assert.Equal(t, 1, s.Available(), "set aside, still counted free")
		assert.False(t, s.TryAcquire(), "but no newcomer takes it")

		zero := s.AcquireTicket(0)
		assert.False(t, isReady(zero), "a request for no permit queues behind a waiting one")

		s.Release()
		require.True(t, isReady(tk), "served whole when Release returns")
		require.True(t, isReady(zero), "and the one behind it, in the same step")
		require.NoError(t, tk.Err())
		assert.False(t, tk.Stop())
		assert.Equal(t, 0, s.Available())

		s.ReleaseN(3)
		assert.Equal(t, 3, s.Available())
		assert.False(t, s.Locked())
		assert.True(t, s.TryAcquireN(3), "the line is empty: the fast paths are back")
		s.ReleaseN(3)
	})
}

// A stopped ticket at the head of the line was holding back smaller
// requests; Stop serves them, as a cancelled AcquireN's leaving does.
func TestAcquireTicketStopLetsSmallerRequestsGo(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		synctest.Test(t, func(t *testing.T) {
			s := newSem(3)
			require.True(t, s.TryAcquireN(2))
			big := s.AcquireTicket(3)
			small := acquireAsync(context.Background(), s, 1)
			synctest.Wait() // parked before the ticket joins
			smallTicket := s.AcquireTicket(1)
			synctest.Wait()
			require.Empty(t, small, "held back by the big request")
			require.False(t, isReady(smallTicket))

			require.True(t, big.Stop())
			assertStopped(t, big)
			require.NoError(t, <-small, "served by Stop itself")
			assert.False(t, isReady(smallTicket), "no permit left for it")
			s.Release()
			require.True(t, isReady(smallTicket))
			s.ReleaseN(3)
			assert.Equal(t, 3, s.Available(), "the stopped request took nothing")
			assert.False(t, s.Locked())
		})
	})
}

// A request above the bound can never succeed: decided at once with
// ErrExceedsBound, taking nothing and holding nobody back.
func TestBoundedAcquireTicketExceedsBound(t *testing.T) {
	s := ctxsync.NewBoundedSemaphore(2)
	require.True(t, s.TryAcquire())
	behind := s.AcquireTicket(2) // waits
	tk := s.AcquireTicket(3)
	require.True(t, isReady(tk), "decided before it is returned")
	assert.Equal(t, ctxsync.ErrExceedsBound, tk.Err())
	assert.False(t, tk.Stop())
	assert.Equal(t, ctxsync.ErrExceedsBound, tk.Err(), "Stop changes nothing once decided")
	assert.Equal(t, 1, s.Available())
	s.Release()
	require.True(t, isReady(behind))
	require.NoError(t, behind.Err())
	s.ReleaseN(2)
	assert.Equal(t, 2, s.Available())

	var zero ctxsync.BoundedSemaphore
	assert.Equal(t, ctxsync.ErrExceedsBound, zero.AcquireTicket(1).Err())
	z := zero.AcquireTicket(0)
	require.True(t, isReady(z))
	assert.NoError(t, z.Err())

	// On an unbounded Semaphore the same request just waits.
	u := ctxsync.NewSemaphore(2)
	ut := u.AcquireTicket(3)
	assert.False(t, isReady(ut))
	assert.True(t, ut.Stop())
}

// R6: a negative count panics and changes nothing.
func TestAcquireTicketNegativePanics(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(1)
		assert.PanicsWithValue(t, "ctxsync: negative permit count", func() { s.AcquireTicket(-1) })
		assert.Equal(t, 1, s.Available())
		assert.False(t, s.Locked())
	})
}

// Tickets and blocked AcquireN calls stand in one line, served in the
// order they joined it.
func TestAcquireTicketsMixedWithCallsInOrder(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		synctest.Test(t, func(t *testing.T) {
			s := newSem(2)
			require.True(t, s.TryAcquireN(2))
			order := make(chan int, 6)
			var tickets [6]*ctxsync.Ticket
			for i := range 6 {
				if i%2 == 0 {
					go func() {
						if assert.NoError(t, s.AcquireN(context.Background(), 1)) {
							order <- i
						}
					}()
					synctest.Wait() // parked before the next joins
					continue
				}
				tickets[i] = s.AcquireTicket(1)
			}
			for want := range 6 {
				s.Release()
				synctest.Wait()
				if tk := tickets[want]; tk != nil {
					require.True(t, isReady(tk), "ticket %d", want)
					assert.Empty(t, order)
				} else {
					require.Equal(t, want, <-order)
				}
				for _, tk := range tickets[want+1:] {
					if tk != nil {
						assert.False(t, isReady(tk), "served before %d", want)
					}
				}
			}
			s.ReleaseN(2) // the last two served hold the two permits
			assert.Equal(t, 2, s.Available())
		})
	})
}

// Stop racing a grant, staged in both orders.
func TestAcquireTicketStopRacingGrant(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		t.Run("GrantFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(2)
				require.True(t, s.TryAcquireN(2))
				tk := s.AcquireTicket(2)
				next := acquireAsync(context.Background(), s, 1)
				synctest.Wait()
				s.ReleaseN(2) // the grant
				require.False(t, tk.Stop())
				require.NoError(t, tk.Err(), "granted: the caller holds 2")
				assert.Equal(t, 0, s.Available())
				s.ReleaseN(2)
				require.NoError(t, <-next)
				s.Release()
				assert.Equal(t, 2, s.Available())
			})
		})
		t.Run("StopFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(2)
				require.True(t, s.TryAcquireN(2))
				tk := s.AcquireTicket(2)
				next := acquireAsync(context.Background(), s, 1)
				synctest.Wait()
				require.True(t, tk.Stop())
				s.ReleaseN(2) // goes past the stopped ticket to the next
				require.NoError(t, <-next)
				assertStopped(t, tk)
				assert.Equal(t, 1, s.Available())
				s.Release()
				assert.Equal(t, 2, s.Available())
			})
		})
	})
}

// Acquire-or-timeout in one select with ctx.Done(), a timer and a ticket
// of another semaphore.
func TestAcquireTicketsInOneSelect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := ctxsync.NewSemaphore(0), ctxsync.NewBoundedSemaphore(1)
		require.True(t, b.TryAcquire())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		pick := func(timeout time.Duration) (string, *ctxsync.Ticket, *ctxsync.Ticket) {
			ta, tb := a.AcquireTicket(1), b.AcquireTicket(1)
			timer := time.NewTimer(timeout)
			defer timer.Stop()
			select {
			case <-ta.Ready():
				return "a", ta, tb
			case <-tb.Ready():
				return "b", ta, tb
			case <-ctx.Done():
				return "ctx", ta, tb
			case <-timer.C:
				return "timer", ta, tb
			}
		}
		// giveBack stops a ticket we no longer want, returning its permit
		// if it was granted meanwhile.
		giveBack := func(tk *ctxsync.Ticket, s ticketSemaphore) {
			if !tk.Stop() && tk.Err() == nil {
				s.Release()
			}
		}

		got, ta, tb := pick(time.Second)
		require.Equal(t, "timer", got)
		giveBack(ta, a)
		giveBack(tb, b)

		go func() {
			time.Sleep(time.Millisecond) // fake time inside the bubble
			a.Release()
		}()
		got, ta, tb = pick(time.Minute)
		require.Equal(t, "a", got)
		require.NoError(t, ta.Err())
		giveBack(tb, b) // the permit of a is kept until the end

		go cancel()
		got, ta, tb = pick(time.Minute)
		require.Equal(t, "ctx", got)
		giveBack(ta, a)
		giveBack(tb, b)

		assert.Equal(t, 0, a.Available())
		a.Release()
		assert.Equal(t, 1, a.Available())
		assert.Equal(t, 0, b.Available())
		b.Release()
		assert.Equal(t, 1, b.Available())
	})
}

// R8, R9: a ticket costs at most its record and its channel.
func TestAcquireTicketAllocs(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		s := newSem(1)
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			if !s.AcquireTicket(1).Stop() {
				s.Release()
			}
		}), 2.0, "granted at once")
		require.True(t, s.TryAcquire())
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			if !s.AcquireTicket(1).Stop() {
				t.Error("a waiting ticket must stop")
			}
		}), 2.0, "waiting")
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			_ = s.AcquireTicket(5).Err()
		}), 2.0, "exceeding the bound, or waiting for ever")
		s.Release()
	})
}

// Under stress, weighted tickets whose Stops race Releases, mixed with
// blocking and Try calls, never hold more than the limit together, and
// every permit is back at the end.
func TestAcquireTicketStressStopRacingGrant(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		const limit, goroutines, rounds = 5, 8, 300 * stressScale
		s := newSem(limit)
		var held, stopped, lateGrants atomic.Int64
		use := func(n int) {
			if h := held.Add(int64(n)); h > limit {
				t.Errorf("%d permits held, limit %d", h, limit)
			}
			held.Add(-int64(n))
			s.ReleaseN(n)
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 13))
				for range rounds {
					n := rng.IntN(limit + 1)
					switch rng.IntN(4) {
					case 0:
						// A cancelled AcquireN's leaving serves the line
						// too, so it grants tickets racing their Stops.
						ctx, cancel := context.WithCancel(context.Background())
						if rng.IntN(2) == 0 {
							go cancelAfterYields(cancel, rng.IntN(4))
						}
						if s.AcquireN(ctx, n) == nil {
							use(n)
						}
						cancel()
					case 1:
						if s.TryAcquireN(n) {
							use(n)
						}
					default:
						tk := s.AcquireTicket(n)
						waited := !isReady(tk)
						for range rng.IntN(3) {
							runtime.Gosched() // let Stop land anywhere
						}
						if rng.IntN(3) == 0 {
							<-tk.Ready()
							assert.NoError(t, tk.Err())
							use(n)
						} else if !tk.Stop() {
							assert.True(t, isReady(tk))
							assert.NoError(t, tk.Err())
							if waited {
								lateGrants.Add(1)
							}
							use(n)
						} else {
							stopped.Add(1)
							assertStopped(t, tk)
						}
					}
				}
			})
		}
		wg.Wait()
		assert.Equal(t, limit, s.Available(), "every permit is back")
		assert.False(t, s.Locked())
		assert.True(t, s.TryAcquireN(limit), "and no stale waiters bit")
		t.Logf("%d Stops that withdrew, %d that came after a hand-off", stopped.Load(), lateGrants.Load())
	})
}

// The grant a Stop races may come from a blocked call leaving on its
// context: a large AcquireN at the head whose context ends serves the
// ticket behind it. Staged in both orders.
func TestAcquireTicketStopRacingCancelledHead(t *testing.T) {
	forEachTicketSemaphore(t, func(t *testing.T, newSem func(int) ticketSemaphore) {
		t.Run("CancelFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(3)
				require.True(t, s.TryAcquire())
				ctx, cancel := context.WithCancel(context.Background())
				big := acquireAsync(ctx, s, 3)
				synctest.Wait()
				tk := s.AcquireTicket(2)
				require.False(t, isReady(tk), "held back by the big request")
				cancel()
				require.Equal(t, context.Canceled, <-big) // its leaving served the ticket
				require.False(t, tk.Stop())
				require.NoError(t, tk.Err(), "granted by the leaving: the caller holds 2")
				assert.Equal(t, 0, s.Available())
				s.ReleaseN(3)
				assert.Equal(t, 3, s.Available())
			})
		})
		t.Run("StopFirst", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSem(3)
				require.True(t, s.TryAcquire())
				ctx, cancel := context.WithCancel(context.Background())
				big := acquireAsync(ctx, s, 3)
				synctest.Wait()
				tk := s.AcquireTicket(2)
				require.True(t, tk.Stop())
				cancel()
				require.Equal(t, context.Canceled, <-big)
				assertStopped(t, tk)
				assert.Equal(t, 2, s.Available(), "nobody took the free permits")
				assert.False(t, s.Locked(), "and nobody is left in line")
				s.Release()
			})
		})
	})
}
