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

// The zero value is ready, with every key unlocked, and a key takes memory
// only while it is held.
func TestKeyedLockZeroValue(t *testing.T) {
	var m ctxsync.KeyedLock[string]
	assert.False(t, m.Locked("a"))
	assert.Zero(t, m.Len())
	assert.Zero(t, m.Waiting("a"))
	require.NoError(t, m.Lock(context.Background(), "a"))
	assert.True(t, m.Locked("a"))
	assert.False(t, m.Locked("b"))
	assert.Equal(t, 1, m.Len())
	assert.False(t, m.TryLock("a"))
	m.Unlock("a")
	assert.False(t, m.Locked("a"))
	assert.Zero(t, m.Len(), "an unlocked key leaves no entry")
	assert.True(t, m.TryLock("a"))
	assert.Equal(t, 1, m.Len())
	m.Unlock("a")
	assert.Zero(t, m.Len())
}

// Keys are independent: a key held, and a waiter on it, never hold back
// another key.
func TestKeyedLockKeysIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m ctxsync.KeyedLock[int]
		ctx := context.Background()
		require.NoError(t, m.Lock(ctx, 1))
		waiter := make(chan error, 1)
		go func() { waiter <- m.Lock(ctx, 1) }()
		synctest.Wait()
		assert.Equal(t, 1, m.Waiting(1))

		require.NoError(t, m.Lock(ctx, 2), "another key is free")
		assert.True(t, m.TryLock(3))
		assert.Equal(t, 3, m.Len())
		m.Unlock(2)
		m.Unlock(3)
		assert.Equal(t, 1, m.Len(), "key 1 is held and waited for")
		assert.Empty(t, waiter)

		m.Unlock(1)
		require.NoError(t, <-waiter)
		assert.True(t, m.Locked(1))
		m.Unlock(1)
		assert.Zero(t, m.Len())
	})
}

// R1: a done context fails even when the key is free, and leaves no entry.
func TestKeyedLockDoneContextFailsWhenFree(t *testing.T) {
	var m ctxsync.KeyedLock[string]
	assert.Equal(t, context.Canceled, m.Lock(cancelled(), "a"))
	assert.False(t, m.Locked("a"))
	assert.Zero(t, m.Len())
}

// R2 and R3: a waiter whose context ends returns exactly ctx.Err(), leaves
// the key as it was, and its entry goes with the last holder.
func TestKeyedLockCancelledWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m ctxsync.KeyedLock[string]
		require.NoError(t, m.Lock(context.Background(), "k"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := m.Lock(ctx, "k")
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.Equal(t, ctx.Err(), err)
		assert.True(t, m.Locked("k"))
		assert.Zero(t, m.Waiting("k"))
		assert.Equal(t, 1, m.Len())
		m.Unlock("k")
		assert.Zero(t, m.Len())

		// A waiter leaving after the last holder went takes the entry
		// with it.
		require.NoError(t, m.Lock(context.Background(), "k"))
		ctx2, cancel2 := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Lock(ctx2, "k") }()
		synctest.Wait()
		cancel2()
		assert.Equal(t, context.Canceled, <-done)
		m.Unlock("k")
		assert.Zero(t, m.Len())
	})
}

// R4: one key's waiters are served in the order they came, Locked stays
// true across the hand-off and TryLock cannot slip in.
func TestKeyedLockFIFOHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 6
		var m ctxsync.KeyedLock[string]
		require.NoError(t, m.Lock(context.Background(), "k"))
		order := make(chan int, n)
		for i := range n {
			go func() {
				if assert.NoError(t, m.Lock(context.Background(), "k")) {
					order <- i
				}
			}()
			synctest.Wait()
		}
		assert.Equal(t, n, m.Waiting("k"))
		for i := range n {
			assert.False(t, m.TryLock("k"), "TryLock must not overtake waiters")
			m.Unlock("k")
			assert.True(t, m.Locked("k"))
			assert.Equal(t, i, <-order)
			assert.Equal(t, n-1-i, m.Waiting("k"))
		}
		m.Unlock("k")
		assert.Zero(t, m.Len())
	})
}

// A ticket keeps its key's entry alive while it waits, and a Stop that
// withdraws it drops the entry once nobody else wants the key.
func TestKeyedLockTicket(t *testing.T) {
	var m ctxsync.KeyedLock[string]
	tk := m.LockTicket("k")
	assert.True(t, isReady(tk), "a free key is granted at once")
	require.NoError(t, tk.Err())
	assert.False(t, tk.Stop(), "already granted")
	assert.True(t, m.Locked("k"))

	waiting := m.LockTicket("k")
	assert.False(t, isReady(waiting))
	assert.Equal(t, 1, m.Waiting("k"))
	m.Unlock("k")
	assert.True(t, isReady(waiting), "Unlock hands the key to the ticket")
	require.NoError(t, waiting.Err())
	assert.False(t, waiting.Stop())
	assert.True(t, m.Locked("k"))
	assert.Equal(t, 1, m.Len())

	stopped := m.LockTicket("k")
	m.Unlock("k") // the ticket holds it now
	assert.True(t, isReady(stopped))
	m.Unlock("k")
	assert.Zero(t, m.Len())

	require.NoError(t, m.Lock(context.Background(), "k"))
	withdrawn := m.LockTicket("k")
	assert.True(t, withdrawn.Stop())
	assertStopped(t, withdrawn)
	assert.Zero(t, m.Waiting("k"))
	m.Unlock("k")
	assert.Zero(t, m.Len())

	// A ticket that is the last to want the key takes its entry with it.
	require.NoError(t, m.Lock(context.Background(), "k"))
	last := m.LockTicket("k")
	m.Unlock("k")
	require.True(t, isReady(last))
	m.Unlock("k")
	assert.Zero(t, m.Len())
}

// A Stop of a waiting ticket after the holder's Unlock has gone leaves
// the entry to be retired by Stop itself.
func TestKeyedLockTicketStopRetiresEntry(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	require.NoError(t, m.Lock(context.Background(), 7))
	a := m.LockTicket(7)
	b := m.LockTicket(7)
	assert.True(t, b.Stop())
	assert.Equal(t, 1, m.Waiting(7))
	assert.True(t, a.Stop())
	assert.Equal(t, 1, m.Len(), "still held")
	m.Unlock(7)
	assert.Zero(t, m.Len())
	assertStopped(t, a)
	assertStopped(t, b)
}

// Stop racing a grant on a keyed ticket: whichever wins, the lock is never
// lost nor doubled, and the entry goes once the key is idle.
func TestKeyedLockTicketStopRacesGrant(t *testing.T) {
	for i := range 50 {
		synctest.Test(t, func(t *testing.T) {
			var m ctxsync.KeyedLock[int]
			require.NoError(t, m.Lock(context.Background(), 1))
			tk := m.LockTicket(1)
			var stopped atomic.Bool
			var wg sync.WaitGroup
			wg.Go(func() {
				for range i % 5 {
					runtime.Gosched()
				}
				m.Unlock(1)
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
				assert.False(t, m.Locked(1), "the lock went back to nobody")
			} else {
				require.True(t, isReady(tk))
				require.NoError(t, tk.Err())
				assert.True(t, m.Locked(1), "the ticket holds the key")
				m.Unlock(1)
			}
			assert.Zero(t, m.Len())
		})
	}
}

// A request arriving for a key whose entry is being retired: the last
// holder's Unlock and a waiter's cancellation race with a new Lock. The new
// Lock always gets the key (in its own new entry or the old one), and the
// key takes no memory afterwards.
func TestKeyedLockRequestMeetsRetiringEntry(t *testing.T) {
	for i := range 60 {
		synctest.Test(t, func(t *testing.T) {
			var m ctxsync.KeyedLock[string]
			require.NoError(t, m.Lock(context.Background(), "k"))
			var inside atomic.Int32
			alone := func(who string) {
				assert.Equal(t, int32(1), inside.Add(1), "%s is not alone with the key", who)
				inside.Add(-1)
				m.Unlock("k")
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				// The waiter keeps the key if the hand-off came first.
				if err := m.Lock(ctx, "k"); err == nil {
					alone("the waiter")
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
			wg.Go(func() { spin(i / 4 % 4); m.Unlock("k") })
			wg.Go(func() {
				spin(i / 16 % 4)
				if assert.NoError(t, m.Lock(context.Background(), "k")) {
					alone("the newcomer")
				}
			})
			wg.Wait()
			assert.False(t, m.Locked("k"))
			assert.Zero(t, m.Len())
		})
	}
}

// Misuse panics at once, with a message naming the mistake, and changes
// nothing.
func TestKeyedLockMisuse(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *ctxsync.KeyedLock[string])
		call  func(m *ctxsync.KeyedLock[string])
	}{
		{"Unlock of a key never locked", func(*ctxsync.KeyedLock[string]) {}, func(m *ctxsync.KeyedLock[string]) { m.Unlock("a") }},
		{"Unlock of a key unlocked again", func(m *ctxsync.KeyedLock[string]) { _ = m.TryLock("a"); m.Unlock("a") }, func(m *ctxsync.KeyedLock[string]) { m.Unlock("a") }},
		{"Unlock of a free key while another is held", func(m *ctxsync.KeyedLock[string]) { _ = m.TryLock("b") }, func(m *ctxsync.KeyedLock[string]) { m.Unlock("a") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m ctxsync.KeyedLock[string]
			tt.setup(&m)
			before := m.Len()
			assert.PanicsWithValue(t, "ctxsync: KeyedLock.Unlock of unlocked key", func() { tt.call(&m) })
			assert.Equal(t, before, m.Len())
			assert.False(t, m.Locked("a"))
			assert.True(t, m.TryLock("a"), "the key still works")
			m.Unlock("a")
		})
	}
}

// The signatures of API.md's KeyedLock, checked by the compiler.
var (
	_ func(*ctxsync.KeyedLock[string], context.Context, string) error = (*ctxsync.KeyedLock[string]).Lock
	_ func(*ctxsync.KeyedLock[string], string) bool                   = (*ctxsync.KeyedLock[string]).TryLock
	_ func(*ctxsync.KeyedLock[string], string)                        = (*ctxsync.KeyedLock[string]).Unlock
	_ func(*ctxsync.KeyedLock[string], string) *ctxsync.Ticket        = (*ctxsync.KeyedLock[string]).LockTicket
	_ func(*ctxsync.KeyedLock[string], string) bool                   = (*ctxsync.KeyedLock[string]).Locked
	_ func(*ctxsync.KeyedLock[string], string) int                    = (*ctxsync.KeyedLock[string]).Waiting
	_ func(*ctxsync.KeyedLock[string]) int                            = (*ctxsync.KeyedLock[string]).Len
)

// R3 per key: a waiter's context ends at the moment the holder's Unlock
// hands it the key, with a second waiter behind it. Both happen before
// the waiter looks (it is held before it waits), in both orders. The key
// is kept by the first waiter (nil) or passed on to the second (exactly
// ctx.Err()): held by one of them, never lost nor doubled, and the entry
// lives exactly while the key is held or waited for.
func TestKeyedLockInterleaveCancelAtHandOff(t *testing.T) {
	for _, cancelFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("cancelFirst=", cancelFirst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := holdParked(t)
				var m ctxsync.KeyedLock[string]
				bg := context.Background()
				require.NoError(t, m.Lock(bg, "k"))
				ctx, cancel := context.WithCancel(bg)
				first, second := make(chan error, 1), make(chan error, 1)
				go func() { first <- m.Lock(ctx, "k") }()
				synctest.Wait()
				go func() { second <- m.Lock(bg, "k") }()
				synctest.Wait()
				require.Equal(t, 2, m.Waiting("k"))
				if cancelFirst {
					cancel()
					// Waiting counts a call whose context has just
					// ended until it has left the line.
					assert.Equal(t, 2, m.Waiting("k"))
					m.Unlock("k")
				} else {
					m.Unlock("k")
					cancel()
				}
				release()
				if err := <-first; err == nil {
					synctest.Wait()
					assert.Empty(t, second, "the key is held once")
					assert.Equal(t, 1, m.Waiting("k"))
					m.Unlock("k")
				} else {
					assert.Equal(t, context.Canceled, err)
				}
				require.NoError(t, <-second, "the key went on to the next waiter")
				assert.True(t, m.Locked("k"))
				assert.Zero(t, m.Waiting("k"))
				assert.Equal(t, 1, m.Len())
				m.Unlock("k")
				assert.False(t, m.Locked("k"))
				assert.Zero(t, m.Len())
			})
		})
	}
}

// The memory-model sentence: the n'th Unlock(key) synchronizes before the
// m'th successful Lock(key) or TryLock(key), n < m, tickets included. Each
// key guards a plain counter that every holder reads and writes; -race
// reports a hand-over that lacks the synchronization, and the counts show
// that no update was lost.
func TestKeyedLockMemoryModel(t *testing.T) {
	const keys, workers = 3, 6
	rounds := 200 * stressScale
	var m ctxsync.KeyedLock[int]
	var data [keys]int // guarded by m's key; not atomic on purpose
	var taken [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 26))
			for range rounds {
				k := rng.IntN(keys)
				switch rng.IntN(3) {
				case 0:
					if !m.TryLock(k) {
						continue
					}
				case 1:
					<-m.LockTicket(k).Ready()
				default:
					if !assert.NoError(t, m.Lock(context.Background(), k)) {
						return
					}
				}
				data[k]++
				taken[k].Add(1)
				m.Unlock(k)
			}
		})
	}
	wg.Wait()
	for k := range keys {
		assert.Equal(t, int(taken[k].Load()), data[k], "key %d", k)
	}
	assert.Zero(t, m.Len())
}

// R8 for a call that blocks: a Lock that waits for its key allocates at
// most its wake-up channel and one waiter record, nothing for the key.
func TestKeyedLockBlockingCallAllocs(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unlock, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for range unlock {
			// Let go once the caller is in line, so that it blocks.
			for m.Waiting(1) == 0 {
				runtime.Gosched()
			}
			m.Unlock(1)
		}
	}()
	require.NoError(t, m.Lock(ctx, 1))
	allocs := testing.AllocsPerRun(100, func() {
		unlock <- struct{}{}
		if m.Lock(ctx, 1) != nil { // blocks until the helper unlocks
			panic("Lock failed")
		}
	})
	close(unlock)
	<-done
	m.Unlock(1)
	assert.Zero(t, m.Len())
	t.Logf("%.2f allocations per blocking Lock", allocs)
	assert.LessOrEqual(t, allocs, 2.0)
}

// R9: a KeyedLock made and warmed up outside a synctest bubble serves
// calls and tickets inside one, and they are durably blocked there (the
// bubble's synctest.Wait returns): nothing a recycled entry keeps ties a
// waiter to another bubble.
func TestKeyedLockDurablyBlockedInBubble(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	for k := range 200 {
		require.True(t, m.TryLock(k))
	}
	for k := range 200 {
		m.Unlock(k)
	}
	synctest.Test(t, func(t *testing.T) {
		require.NoError(t, m.Lock(context.Background(), 1))
		got := make(chan error, 1)
		go func() { got <- m.Lock(context.Background(), 1) }()
		synctest.Wait() // durably blocked, and first in line
		tk := m.LockTicket(1)
		ticketHeld := make(chan struct{})
		go func() {
			<-tk.Ready()
			close(ticketHeld)
		}()
		synctest.Wait() // both durably blocked
		assert.Equal(t, 2, m.Waiting(1))
		m.Unlock(1)
		require.NoError(t, <-got)
		m.Unlock(1)
		<-ticketHeld
		m.Unlock(1)
		assert.Zero(t, m.Len())
	})
}

// R8: once warm, calls that do not block allocate nothing.
func TestKeyedLockNoAllocs(t *testing.T) {
	var m ctxsync.KeyedLock[string]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
	}
	i := 0
	lockUnlock := func() {
		k := keys[i%len(keys)]
		i++
		if m.Lock(ctx, k) != nil {
			panic("Lock failed")
		}
		m.Unlock(k)
	}
	lockUnlock()
	assert.Zero(t, testing.AllocsPerRun(1000, lockUnlock))
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		if m.TryLock("x") {
			_ = m.Locked("x")
			_ = m.Waiting("x")
			_ = m.Len()
			m.Unlock("x")
		}
		_ = m.Locked("absent")
		_ = m.Waiting("absent")
	}))
	var ints ctxsync.KeyedLock[int]
	n := 0
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		n++
		_ = ints.Lock(ctx, n%16)
		ints.Unlock(n % 16)
	}))
	type pair struct {
		a int
		b string
	}
	var pairs ctxsync.KeyedLock[pair]
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		n++
		_ = pairs.Lock(ctx, pair{n % 16, "x"})
		pairs.Unlock(pair{n % 16, "x"})
	}))
}

// Randomized stress: many goroutines lock, try, unlock, take tickets and
// give up on a few keys; each key is held by at most one at a time, and at
// the end no key takes memory.
func TestKeyedLockStress(t *testing.T) {
	const keys, workers = 4, 8
	rounds := 300 * stressScale
	var m ctxsync.KeyedLock[int]
	var holders [keys]atomic.Int32
	enter := func(k int) {
		assert.Equal(t, int32(1), holders[k].Add(1), "key %d held twice", k)
	}
	leave := func(k int) {
		holders[k].Add(-1)
		m.Unlock(k)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 23))
			for range rounds {
				k := rng.IntN(keys)
				switch rng.IntN(4) {
				case 0:
					if m.TryLock(k) {
						enter(k)
						leave(k)
					}
				case 1:
					tk := m.LockTicket(k)
					if rng.IntN(2) == 0 {
						runtime.Gosched()
						if !tk.Stop() {
							enter(k)
							leave(k)
						}
						continue
					}
					<-tk.Ready()
					enter(k)
					leave(k)
				default:
					ctx, cancel := context.WithCancel(context.Background())
					if rng.IntN(3) == 0 {
						go cancelAfterYields(cancel, rng.IntN(6))
					}
					if m.Lock(ctx, k) == nil {
						enter(k)
						runtime.Gosched()
						leave(k)
					}
					cancel()
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, m.Len())
	for k := range keys {
		assert.False(t, m.Locked(k))
	}
}

// Keys come and go in random order, many per shard, so that each shard's
// table grows, shrinks, and deletes keys from the middle of its probe
// runs: every key stays findable, and none is found that is gone.
func TestKeyedLockManyKeysRandomOrder(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	rng := rand.New(rand.NewPCG(1, 2))
	held := map[int]bool{}
	const pool = 2000
	for step := range 20_000 {
		k := rng.IntN(pool)
		// Grow for the first half, then shrink.
		if held[k] && (step > 10_000 || rng.IntN(3) == 0) {
			m.Unlock(k)
			delete(held, k)
		} else if !held[k] {
			require.True(t, m.TryLock(k))
			held[k] = true
		}
		require.Equal(t, held[k], m.Locked(k))
		if step%100 == 0 {
			require.Equal(t, len(held), m.Len())
		}
		if step%2000 == 0 {
			for k := range pool {
				require.Equal(t, held[k], m.Locked(k), "key %d", k)
			}
		}
	}
	for k := range held {
		m.Unlock(k)
	}
	assert.Zero(t, m.Len())
}

// R8 for tickets: making a keyed ticket allocates at most its record and
// its channel, each kind on its own, granted at once or waiting, once the
// key's table is warm; looking at a ticket allocates nothing.
func TestKeyedTicketAllocs(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	s := ctxsync.NewKeyedSemaphore[int](1)
	lockGranted := func() {
		<-m.LockTicket(1).Ready()
		m.Unlock(1)
	}
	semaGranted := func() {
		<-s.AcquireTicket(1, 1).Ready()
		s.Release(1)
	}
	lockGranted()
	semaGranted()
	assert.LessOrEqual(t, testing.AllocsPerRun(100, lockGranted), 2.0, "KeyedLock.LockTicket, granted")
	assert.LessOrEqual(t, testing.AllocsPerRun(100, semaGranted), 2.0, "KeyedSemaphore.AcquireTicket, granted")

	require.True(t, m.TryLock(1))
	require.True(t, s.TryAcquire(1))
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if !m.LockTicket(1).Stop() {
			panic("a waiting ticket must stop")
		}
	}), 2.0, "KeyedLock.LockTicket, waiting")
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if !s.AcquireTicket(1, 1).Stop() {
			panic("a waiting ticket must stop")
		}
	}), 2.0, "KeyedSemaphore.AcquireTicket, waiting")
	tk := m.LockTicket(1)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = tk.Err(); _ = tk.Ready() }))
	require.True(t, tk.Stop())
	m.Unlock(1)
	s.Release(1)
	assert.Zero(t, m.Len())
	assert.Zero(t, s.Len())
}

// A key takes memory only while it is held: after bursts of a quarter of
// memoryKeys distinct keys held at once, the heap goes back to within a
// small bound of where it started.
func TestKeyedLockGivesMemoryBack(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	ctx := context.Background()
	require.NoError(t, m.Lock(ctx, -1)) // the table exists before the measure
	m.Unlock(-1)
	before := heapAfterGC()
	const burst = memoryKeys / 4
	for b := range 4 {
		for k := b * burst; k < (b+1)*burst; k++ {
			require.True(t, m.TryLock(k))
		}
		require.Equal(t, burst, m.Len())
		for k := b * burst; k < (b+1)*burst; k++ {
			m.Unlock(k)
		}
		require.Zero(t, m.Len())
	}
	after := heapAfterGC()
	t.Logf("heap before %d, after %d bytes", before, after)
	assert.Less(t, int64(after)-int64(before), int64(keyedMemoryBound))
	runtime.KeepAlive(&m)
}

// A keyed table's shard spans two cache lines, and its fields fit in one,
// so that no two shards' fields share a line wherever the table starts.
func TestKeyedShardsShareNoCacheLine(t *testing.T) {
	size, fields := ctxsync.KeyedShardLayout()
	require.EqualValues(t, 128, size, "shard size")
	require.LessOrEqual(t, fields, uintptr(64), "shard fields")
}
