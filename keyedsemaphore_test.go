package ctxsync_test

import (
	"context"
	"fmt"
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

// Each key has its own n permits, and a key takes memory only while it has
// permits held.
func TestKeyedSemaphorePerKeyPermits(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[string](2)
	ctx := context.Background()
	assert.Equal(t, 2, s.Available("a"))
	assert.Zero(t, s.Len())
	require.NoError(t, s.Acquire(ctx, "a"))
	require.NoError(t, s.Acquire(ctx, "a"))
	assert.False(t, s.TryAcquire("a"))
	assert.Zero(t, s.Available("a"))
	assert.True(t, s.TryAcquire("b"), "keys are independent")
	assert.True(t, s.TryAcquireN("c", 2))
	assert.Equal(t, 3, s.Len())
	s.Release("a")
	assert.Equal(t, 1, s.Available("a"))
	s.Release("a")
	s.Release("b")
	s.ReleaseN("c", 2)
	assert.Zero(t, s.Len(), "every permit is back: no entry is left")
	assert.Equal(t, 2, s.Available("a"))
}

// A request above the per-key bound fails at once with ErrExceedsBound,
// before the context is looked at (R10), and leaves no entry.
func TestKeyedSemaphoreExceedsBound(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[int](2)
	assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(context.Background(), 1, 3))
	assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(cancelled(), 1, 3))
	assert.False(t, s.TryAcquireN(1, 3))
	tk := s.AcquireTicket(1, 3)
	require.True(t, isReady(tk))
	assert.Equal(t, ctxsync.ErrExceedsBound, tk.Err())
	assert.False(t, tk.Stop())
	assert.Zero(t, s.Len())

	zero := ctxsync.NewKeyedSemaphore[int](0)
	assert.Equal(t, ctxsync.ErrExceedsBound, zero.Acquire(context.Background(), 1))
	assert.NoError(t, zero.AcquireN(context.Background(), 1, 0))
	assert.Zero(t, zero.Len())
}

// A request for 0 permits on a key nobody holds succeeds and leaves no
// entry; ReleaseN(key, 0) is not misuse.
func TestKeyedSemaphoreZeroRequests(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[string](1)
	require.NoError(t, s.AcquireN(context.Background(), "a", 0))
	assert.True(t, s.TryAcquireN("a", 0))
	tk := s.AcquireTicket("a", 0)
	require.True(t, isReady(tk))
	require.NoError(t, tk.Err())
	assert.False(t, tk.Stop())
	assert.Zero(t, s.Len())
	assert.NotPanics(t, func() { s.ReleaseN("a", 0) })
	assert.Zero(t, s.Len())
	assert.Equal(t, context.Canceled, s.AcquireN(cancelled(), "a", 0), "R1 holds for 0 permits too")

	// With others waiting, a request for nothing queues behind them (R4)
	// and leaves nothing behind when served.
	synctest.Test(t, func(t *testing.T) {
		require.NoError(t, s.Acquire(context.Background(), "a"))
		got := make(chan error, 2)
		go func() { got <- s.Acquire(context.Background(), "a") }()
		synctest.Wait()
		assert.False(t, s.TryAcquireN("a", 0))
		go func() { got <- s.AcquireN(context.Background(), "a", 0) }()
		synctest.Wait()
		assert.Equal(t, 2, s.Waiting("a"))
		s.Release("a")
		require.NoError(t, <-got)
		require.NoError(t, <-got)
		assert.Equal(t, 1, s.Len())
		s.Release("a")
		assert.Zero(t, s.Len())
	})
}

// R1, R2 and R3 per key: a done context takes nothing even with permits
// free, a waiter ended by its context returns exactly ctx.Err() and takes
// nothing, and its entry goes with the last permit.
func TestKeyedSemaphoreContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewKeyedSemaphore[string](1)
		assert.Equal(t, context.Canceled, s.Acquire(cancelled(), "a"))
		assert.Zero(t, s.Len())

		require.NoError(t, s.Acquire(context.Background(), "a"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := s.Acquire(ctx, "a")
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.Zero(t, s.Available("a"))
		assert.Zero(t, s.Waiting("a"))
		s.Release("a")
		assert.Zero(t, s.Len())
	})
}

// R4 per key: a weighted request at the head of a key's line holds back
// smaller ones behind it, and no newcomer overtakes.
func TestKeyedSemaphoreFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewKeyedSemaphore[int](3)
		ctx := context.Background()
		require.NoError(t, s.AcquireN(ctx, 1, 2))
		order := make(chan int, 3)
		go func() {
			if assert.NoError(t, s.AcquireN(ctx, 1, 3)) {
				order <- 3
			}
		}()
		synctest.Wait()
		go func() {
			if assert.NoError(t, s.AcquireN(ctx, 1, 1)) {
				order <- 1
			}
		}()
		synctest.Wait()
		assert.Equal(t, 1, s.Available(1))
		assert.False(t, s.TryAcquire(1), "a newcomer never overtakes")
		assert.Equal(t, 2, s.Waiting(1))
		assert.True(t, s.TryAcquireN(2, 3), "another key is not held back")
		s.ReleaseN(2, 3)

		s.ReleaseN(1, 2)
		assert.Equal(t, 3, <-order)
		s.ReleaseN(1, 3)
		assert.Equal(t, 1, <-order)
		s.Release(1)
		assert.Zero(t, s.Len())
	})
}

// Tickets stand in a key's line, keep its entry while they wait, and a Stop
// that withdraws one lets the requests it held back go.
func TestKeyedSemaphoreTicket(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[string](2)
	a := s.AcquireTicket("k", 2)
	require.True(t, isReady(a))
	require.NoError(t, a.Err())

	big := s.AcquireTicket("k", 2)
	small := s.AcquireTicket("k", 1)
	assert.False(t, isReady(big))
	assert.Equal(t, 2, s.Waiting("k"))
	s.Release("k")
	assert.False(t, isReady(small), "held back by the larger request ahead")
	assert.True(t, big.Stop())
	assertStopped(t, big)
	assert.True(t, isReady(small), "the withdrawn request no longer holds it back")
	assert.Equal(t, 1, s.Len())
	s.ReleaseN("k", 2) // one of a's, and small's
	assert.Zero(t, s.Len())

	// A withdrawn ticket that was all that kept the entry drops it.
	require.NoError(t, s.AcquireN(context.Background(), "k", 2))
	last := s.AcquireTicket("k", 1)
	s.ReleaseN("k", 2)
	require.True(t, isReady(last))
	s.Release("k")
	assert.Zero(t, s.Len())
	require.NoError(t, s.AcquireN(context.Background(), "k", 2))
	w := s.AcquireTicket("k", 1)
	s.ReleaseN("k", 2)
	assert.False(t, w.Stop(), "granted by the release")
	s.Release("k")
	assert.Zero(t, s.Len())
}

// Stop racing a grant on a keyed ticket: the permits are never lost nor
// doubled, and the entry goes once the key is idle.
func TestKeyedSemaphoreTicketStopRacesGrant(t *testing.T) {
	for i := range 50 {
		synctest.Test(t, func(t *testing.T) {
			s := ctxsync.NewKeyedSemaphore[int](2)
			require.NoError(t, s.AcquireN(context.Background(), 1, 2))
			tk := s.AcquireTicket(1, 2)
			var stopped atomic.Bool
			var wg sync.WaitGroup
			wg.Go(func() {
				for range i % 5 {
					runtime.Gosched()
				}
				s.ReleaseN(1, 2)
			})
			wg.Go(func() {
				for range i / 5 % 5 {
					runtime.Gosched()
				}
				stopped.Store(tk.Stop())
			})
			wg.Wait()
			if stopped.Load() {
				assertStopped(t, tk)
				assert.Equal(t, 2, s.Available(1))
			} else {
				require.NoError(t, tk.Err())
				assert.Zero(t, s.Available(1))
				s.ReleaseN(1, 2)
			}
			assert.Zero(t, s.Len())
		})
	}
}

// A request arriving for a key whose entry is being retired: the last
// holder's Release and a waiter's cancellation race with a new AcquireN,
// at spread-out points of each other's calls. The new request always gets
// its permits (in a new entry or the old one), the key never has more than
// n out, and it takes no memory afterwards.
func TestKeyedSemaphoreRequestMeetsRetiringEntry(t *testing.T) {
	for i := range 60 {
		synctest.Test(t, func(t *testing.T) {
			const bound = 2
			s := ctxsync.NewKeyedSemaphore[string](bound)
			require.NoError(t, s.AcquireN(context.Background(), "k", bound))
			var out atomic.Int32
			hold := func(who string, n int) {
				assert.LessOrEqual(t, out.Add(int32(n)), int32(bound), "%s: the key is over its bound", who)
				out.Add(int32(-n))
				s.ReleaseN("k", n)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				// The waiter keeps its permits if the hand-off came first.
				if err := s.AcquireN(ctx, "k", bound); err == nil {
					hold("the waiter", bound)
				} else {
					assert.Equal(t, context.Canceled, err)
				}
			})
			synctest.Wait()

			spin := func(n int) {
				for range n {
					runtime.Gosched()
				}
			}
			wg.Go(func() { spin(i % 4); cancel() })
			wg.Go(func() { spin(i / 4 % 4); s.ReleaseN("k", bound) })
			wg.Go(func() {
				spin(i / 16 % 4)
				n := 1 + i%bound
				if assert.NoError(t, s.AcquireN(context.Background(), "k", n)) {
					hold("the newcomer", n)
				}
			})
			wg.Wait()
			assert.Equal(t, bound, s.Available("k"))
			assert.Zero(t, s.Len())
		})
	}
}

// Misuse panics at once with a message naming the mistake, and changes
// nothing; a zero KeyedSemaphore names its constructor.
func TestKeyedSemaphoreMisuse(t *testing.T) {
	const zeroMsg = "ctxsync: zero KeyedSemaphore; make one with NewKeyedSemaphore"
	const overMsg = "ctxsync: KeyedSemaphore released more permits than the key holds"
	const negMsg = "ctxsync: negative permit count"
	ctx := context.Background()
	tests := []struct {
		name string
		call func(s *ctxsync.KeyedSemaphore[string])
		msg  string
	}{
		{"Release of a key never acquired", func(s *ctxsync.KeyedSemaphore[string]) { s.Release("b") }, overMsg},
		{"ReleaseN above what the key holds", func(s *ctxsync.KeyedSemaphore[string]) { s.ReleaseN("a", 2) }, overMsg},
		{"ReleaseN negative", func(s *ctxsync.KeyedSemaphore[string]) { s.ReleaseN("a", -1) }, negMsg},
		{"AcquireN negative", func(s *ctxsync.KeyedSemaphore[string]) { _ = s.AcquireN(ctx, "a", -1) }, negMsg},
		{"TryAcquireN negative", func(s *ctxsync.KeyedSemaphore[string]) { s.TryAcquireN("a", -1) }, negMsg},
		{"AcquireTicket negative", func(s *ctxsync.KeyedSemaphore[string]) { s.AcquireTicket("a", -1) }, negMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ctxsync.NewKeyedSemaphore[string](3)
			require.NoError(t, s.Acquire(ctx, "a"))
			assert.PanicsWithValue(t, tt.msg, func() { tt.call(s) })
			assert.Equal(t, 2, s.Available("a"), "nothing changed")
			assert.Equal(t, 3, s.Available("b"))
			assert.Equal(t, 1, s.Len())
			s.Release("a")
			assert.Zero(t, s.Len())
		})
	}
	t.Run("NewKeyedSemaphore negative", func(t *testing.T) {
		assert.PanicsWithValue(t, "ctxsync: negative semaphore size", func() { ctxsync.NewKeyedSemaphore[int](-1) })
	})
	var zero ctxsync.KeyedSemaphore[string]
	zeroCalls := map[string]func(){
		"Acquire":                      func() { _ = zero.Acquire(ctx, "a") },
		"AcquireN":                     func() { _ = zero.AcquireN(ctx, "a", 0) },
		"TryAcquire":                   func() { zero.TryAcquire("a") },
		"TryAcquireN":                  func() { zero.TryAcquireN("a", 0) },
		"Release":                      func() { zero.Release("a") },
		"ReleaseN":                     func() { zero.ReleaseN("a", 0) },
		"AcquireTicket":                func() { zero.AcquireTicket("a", 0) },
		"Available":                    func() { zero.Available("a") },
		"Waiting":                      func() { zero.Waiting("a") },
		"Len":                          func() { zero.Len() },
		"AcquireN of a negative count": func() { _ = zero.AcquireN(ctx, "a", -1) },
		"ReleaseN of a negative count": func() { zero.ReleaseN("a", -1) },
	}
	for name, call := range zeroCalls {
		t.Run("zero value "+name, func(t *testing.T) {
			assert.PanicsWithValue(t, zeroMsg, call)
		})
	}
}

// The signatures of API.md's KeyedSemaphore, checked by the compiler.
var (
	_ func(int) *ctxsync.KeyedSemaphore[string]                                 = ctxsync.NewKeyedSemaphore[string]
	_ func(*ctxsync.KeyedSemaphore[string], context.Context, string) error      = (*ctxsync.KeyedSemaphore[string]).Acquire
	_ func(*ctxsync.KeyedSemaphore[string], context.Context, string, int) error = (*ctxsync.KeyedSemaphore[string]).AcquireN
	_ func(*ctxsync.KeyedSemaphore[string], string) bool                        = (*ctxsync.KeyedSemaphore[string]).TryAcquire
	_ func(*ctxsync.KeyedSemaphore[string], string, int) bool                   = (*ctxsync.KeyedSemaphore[string]).TryAcquireN
	_ func(*ctxsync.KeyedSemaphore[string], string)                             = (*ctxsync.KeyedSemaphore[string]).Release
	_ func(*ctxsync.KeyedSemaphore[string], string, int)                        = (*ctxsync.KeyedSemaphore[string]).ReleaseN
	_ func(*ctxsync.KeyedSemaphore[string], string, int) *ctxsync.Ticket        = (*ctxsync.KeyedSemaphore[string]).AcquireTicket
	_ func(*ctxsync.KeyedSemaphore[string], string) int                         = (*ctxsync.KeyedSemaphore[string]).Available
	_ func(*ctxsync.KeyedSemaphore[string], string) int                         = (*ctxsync.KeyedSemaphore[string]).Waiting
	_ func(*ctxsync.KeyedSemaphore[string]) int                                 = (*ctxsync.KeyedSemaphore[string]).Len
)

// R10 per key: a misuse panic comes first, then ErrExceedsBound, then a
// done context (R1), whatever the key's state, tickets included.
func TestKeyedSemaphoreOutcomeOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewKeyedSemaphore[string](2)
		bg := context.Background()
		check := func(state string) {
			t.Helper()
			assert.PanicsWithValue(t, "ctxsync: negative permit count", func() { _ = s.AcquireN(cancelled(), "k", -1) }, state)
			assert.Equal(t, ctxsync.ErrExceedsBound, s.AcquireN(cancelled(), "k", 3), state)
			assert.Equal(t, context.Canceled, s.AcquireN(cancelled(), "k", 2), state)
			assert.Equal(t, context.Canceled, s.Acquire(cancelled(), "k"), state)
			assert.Equal(t, context.Canceled, s.AcquireN(cancelled(), "k", 0), state)
			tk := s.AcquireTicket("k", 3)
			assert.True(t, isReady(tk), state)
			assert.Equal(t, ctxsync.ErrExceedsBound, tk.Err(), state)
			assert.False(t, tk.Stop(), state)
		}
		check("no entry")
		assert.Zero(t, s.Len())
		require.NoError(t, s.Acquire(bg, "k"))
		check("one permit held")
		waiter := make(chan error, 1)
		go func() { waiter <- s.AcquireN(bg, "k", 2) }()
		synctest.Wait()
		check("a waiter in line")
		assert.Equal(t, 1, s.Waiting("k"))
		assert.Equal(t, 1, s.Available("k"), "nothing changed")
		s.Release("k")
		require.NoError(t, <-waiter)
		s.ReleaseN("k", 2)
		assert.Zero(t, s.Len())
	})
}

// R6 per key with a waiter in line: releasing more than the key holds
// panics even though the waiter would take the permits, and changes
// nothing; ReleaseN(key, 0) is not misuse and changes nothing either.
func TestKeyedSemaphoreOverReleaseWithWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ctxsync.NewKeyedSemaphore[string](2)
		bg := context.Background()
		require.NoError(t, s.AcquireN(bg, "k", 2))
		waiter := make(chan error, 1)
		go func() { waiter <- s.AcquireN(bg, "k", 2) }()
		synctest.Wait()
		assert.PanicsWithValue(t, "ctxsync: KeyedSemaphore released more permits than the key holds", func() { s.ReleaseN("k", 3) })
		assert.NotPanics(t, func() { s.ReleaseN("k", 0) })
		synctest.Wait()
		assert.Empty(t, waiter, "nothing was handed over")
		assert.Equal(t, 1, s.Waiting("k"))
		assert.Zero(t, s.Available("k"))
		assert.Equal(t, 1, s.Len())

		s.Release("k")
		synctest.Wait()
		assert.Empty(t, waiter, "one permit is not enough")
		assert.Equal(t, 1, s.Available("k"), "permits a waiter is short of stay available")
		assert.PanicsWithValue(t, "ctxsync: KeyedSemaphore released more permits than the key holds", func() { s.ReleaseN("k", 2) })
		s.Release("k")
		require.NoError(t, <-waiter)
		s.ReleaseN("k", 2)
		assert.Zero(t, s.Len())
	})
}

// R3 per key: a waiter's context ends at the moment a Release hands it its
// permits, with a second waiter behind it, in both orders, both before the
// waiter looks. The permits are kept by the first (nil) or passed on to
// the second (exactly ctx.Err()): never lost nor doubled, and the entry
// goes once every permit is back.
func TestKeyedSemaphoreInterleaveCancelAtHandOff(t *testing.T) {
	for _, cancelFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("cancelFirst=", cancelFirst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := holdParked(t)
				s := ctxsync.NewKeyedSemaphore[string](2)
				bg := context.Background()
				require.NoError(t, s.AcquireN(bg, "k", 2))
				ctx, cancel := context.WithCancel(bg)
				first, second := make(chan error, 1), make(chan error, 1)
				go func() { first <- s.AcquireN(ctx, "k", 2) }()
				synctest.Wait()
				go func() { second <- s.AcquireN(bg, "k", 2) }()
				synctest.Wait()
				require.Equal(t, 2, s.Waiting("k"))
				if cancelFirst {
					cancel()
					// Waiting counts a call whose context has just
					// ended until it has left the line.
					assert.Equal(t, 2, s.Waiting("k"))
					s.ReleaseN("k", 2)
				} else {
					s.ReleaseN("k", 2)
					cancel()
				}
				release()
				if err := <-first; err == nil {
					synctest.Wait()
					assert.Empty(t, second, "the permits are held once")
					assert.Zero(t, s.Available("k"))
					s.ReleaseN("k", 2)
				} else {
					assert.Equal(t, context.Canceled, err)
				}
				require.NoError(t, <-second, "the permits went on to the next waiter")
				assert.Zero(t, s.Available("k"))
				assert.Zero(t, s.Waiting("k"))
				assert.Equal(t, 1, s.Len())
				s.ReleaseN("k", 2)
				assert.Equal(t, 2, s.Available("k"))
				assert.Zero(t, s.Len())
			})
		})
	}
}

// The memory-model sentence: a Release(key) synchronizes before any
// Acquire(key) that it lets succeed. Every request takes all of a key's
// permits, so each key guards a plain counter; -race reports a hand-over
// that lacks the synchronization, and the counts show no update was lost.
func TestKeyedSemaphoreMemoryModel(t *testing.T) {
	const keys, workers, bound = 3, 6, 2
	rounds := 200 * stressScale
	s := ctxsync.NewKeyedSemaphore[int](bound)
	var data [keys]int // guarded by all of a key's permits; not atomic on purpose
	var taken [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 27))
			for range rounds {
				k := rng.IntN(keys)
				switch rng.IntN(3) {
				case 0:
					if !s.TryAcquireN(k, bound) {
						continue
					}
				case 1:
					<-s.AcquireTicket(k, bound).Ready()
				default:
					if !assert.NoError(t, s.AcquireN(context.Background(), k, bound)) {
						return
					}
				}
				data[k]++
				taken[k].Add(1)
				if rng.IntN(2) == 0 {
					s.ReleaseN(k, bound)
				} else {
					for range bound {
						s.Release(k)
					}
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		assert.Equal(t, int(taken[k].Load()), data[k], "key %d", k)
	}
	assert.Zero(t, s.Len())
}

// R8 for a call that blocks: an AcquireN that waits for its key's permits
// allocates at most its wake-up channel and one waiter record.
func TestKeyedSemaphoreBlockingCallAllocs(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[int](2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for range release {
			// Give back once the caller is in line, so that it blocks.
			for s.Waiting(1) == 0 {
				runtime.Gosched()
			}
			s.ReleaseN(1, 2)
		}
	}()
	require.NoError(t, s.AcquireN(ctx, 1, 2))
	allocs := testing.AllocsPerRun(100, func() {
		release <- struct{}{}
		if s.AcquireN(ctx, 1, 2) != nil { // blocks until the helper releases
			panic("AcquireN failed")
		}
	})
	close(release)
	<-done
	s.ReleaseN(1, 2)
	assert.Zero(t, s.Len())
	t.Logf("%.2f allocations per blocking AcquireN", allocs)
	assert.LessOrEqual(t, allocs, 2.0)
}

// R9: a KeyedSemaphore made and warmed up outside a synctest bubble serves
// calls and tickets inside one, and they are durably blocked there.
func TestKeyedSemaphoreDurablyBlockedInBubble(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[int](1)
	for k := range 200 {
		require.True(t, s.TryAcquire(k))
	}
	for k := range 200 {
		s.Release(k)
	}
	synctest.Test(t, func(t *testing.T) {
		require.NoError(t, s.Acquire(context.Background(), 1))
		got := make(chan error, 1)
		go func() { got <- s.Acquire(context.Background(), 1) }()
		synctest.Wait() // durably blocked, and first in line
		tk := s.AcquireTicket(1, 1)
		ticketHeld := make(chan struct{})
		go func() {
			<-tk.Ready()
			close(ticketHeld)
		}()
		synctest.Wait() // both durably blocked
		assert.Equal(t, 2, s.Waiting(1))
		s.Release(1)
		require.NoError(t, <-got)
		s.Release(1)
		<-ticketHeld
		require.NoError(t, tk.Err())
		s.Release(1)
		assert.Zero(t, s.Len())
	})
}

// R8: once warm, calls that do not block allocate nothing.
func TestKeyedSemaphoreNoAllocs(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[int](2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	cycle := func() {
		n++
		k := n % 64
		if s.AcquireN(ctx, k, 2) != nil || !s.TryAcquireN(k+1000, 1) {
			panic("not granted")
		}
		_ = s.Available(k)
		_ = s.Waiting(k)
		_ = s.Len()
		_ = s.Available(-1) // a key without an entry
		_ = s.Waiting(-1)
		s.ReleaseN(k, 2)
		s.Release(k + 1000)
		s.ReleaseN(k, 0)
		_ = s.AcquireN(ctx, k, 0)
	}
	cycle()
	assert.Zero(t, testing.AllocsPerRun(1000, cycle))
}

// Randomized stress: on a few keys, goroutines take and give back random
// numbers of permits, through every call, with cancellations; a key never
// has more than n permits out, and at the end no key takes memory.
func TestKeyedSemaphoreStress(t *testing.T) {
	const keys, workers, bound = 3, 8, 3
	rounds := 300 * stressScale
	s := ctxsync.NewKeyedSemaphore[int](bound)
	var out [keys]atomic.Int32
	take := func(k, n int) {
		assert.LessOrEqual(t, out[k].Add(int32(n)), int32(bound), "key %d over its bound", k)
	}
	give := func(k, n int) {
		out[k].Add(int32(-n))
		s.ReleaseN(k, n)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 24))
			for range rounds {
				k, n := rng.IntN(keys), rng.IntN(bound+1)
				switch rng.IntN(4) {
				case 0:
					if s.TryAcquireN(k, n) {
						take(k, n)
						give(k, n)
					}
				case 1:
					tk := s.AcquireTicket(k, n)
					if rng.IntN(2) == 0 {
						runtime.Gosched()
						if tk.Stop() || tk.Err() != nil {
							continue
						}
					} else {
						<-tk.Ready()
					}
					take(k, n)
					give(k, n)
				default:
					ctx, cancel := context.WithCancel(context.Background())
					if rng.IntN(3) == 0 {
						go cancelAfterYields(cancel, rng.IntN(6))
					}
					if s.AcquireN(ctx, k, n) == nil {
						take(k, n)
						runtime.Gosched()
						give(k, n)
					}
					cancel()
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, s.Len())
	for k := range keys {
		assert.Equal(t, bound, s.Available(k))
	}
}

// The same for a KeyedSemaphore (TestKeyedLockGivesMemoryBack), with
// requests of 1 and 2 permits.
func TestKeyedSemaphoreGivesMemoryBack(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[int](2)
	ctx := context.Background()
	before := heapAfterGC()
	const burst = memoryKeys / 4
	for b := range 4 {
		for k := b * burst; k < (b+1)*burst; k++ {
			require.NoError(t, s.AcquireN(ctx, k, 1+k%2))
		}
		require.Equal(t, burst, s.Len())
		for k := b * burst; k < (b+1)*burst; k++ {
			s.ReleaseN(k, 1+k%2)
		}
		require.Zero(t, s.Len())
	}
	after := heapAfterGC()
	t.Logf("heap before %d, after %d bytes", before, after)
	assert.Less(t, int64(after)-int64(before), int64(keyedMemoryBound))
	runtime.KeepAlive(s)
}
