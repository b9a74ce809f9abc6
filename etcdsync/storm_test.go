package etcdsync_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// replica is one simulated process: a client and a session of its own.
type replica struct {
	cli *clientv3.Client
	s   *etcdsync.Session
}

func newReplicas(t *testing.T, n int, opts ...etcdsync.Option) []replica {
	t.Helper()
	rs := make([]replica, n)
	for i := range rs {
		rs[i].cli = newClient(t)
		rs[i].s = newSession(t, rs[i].cli, opts...)
	}
	return rs
}

// TestStormSemaphore runs 6 replicas × 8 goroutines on one Semaphore with
// random weights and random deadlines of 0–50 ms, so that many RPCs end
// with their outcome unknown (the client gives up while the server may
// still apply them). Invariants: the permits held never exceed the size;
// at the end no ticket is left in etcd and Available equals the size.
func TestStormSemaphore(t *testing.T) {
	const size, replicas, workers = 5, 6, 8
	rounds := 25 * stressScale
	rs := newReplicas(t, replicas)
	sems := make([]*etcdsync.Semaphore, replicas)
	for i, r := range rs {
		var err error
		sems[i], err = etcdsync.NewSemaphore(context.Background(), r.s, "storm", size)
		require.NoError(t, err)
	}
	var held, granted, timedOut, wouldBlock atomic.Int64
	var wg sync.WaitGroup
	for i := range replicas * workers {
		sem := sems[i%replicas]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for range rounds {
				n := rng.IntN(size + 1)
				ctx, cancel := context.WithTimeout(context.Background(), stormDeadline(rng))
				var p *etcdsync.Permit
				var err error
				if rng.IntN(4) == 0 {
					p, err = sem.TryAcquireN(ctx, n)
				} else {
					p, err = sem.AcquireN(ctx, n)
				}
				cancel()
				switch {
				case errors.Is(err, etcdsync.ErrWouldBlock):
					wouldBlock.Add(1)
					continue
				case err != nil:
					// Only the deadline may fail a call here, and then
					// with exactly the context's error.
					if !assert.Equal(t, context.DeadlineExceeded, err) {
						return
					}
					timedOut.Add(1)
					continue
				}
				granted.Add(1)
				if now := held.Add(int64(n)); now > size {
					t.Errorf("%d permits held, size %d", now, size)
				}
				held.Add(-int64(n))
				releaseEventually(t, p, rng)
			}
		})
	}
	wg.Wait()
	t.Logf("granted %d, timed out %d, would block %d", granted.Load(), timedOut.Load(), wouldBlock.Load())
	require.Positive(t, granted.Load())
	require.Positive(t, timedOut.Load(), "no call timed out: the storm did not test unknown outcomes")

	ctx := context.Background()
	tickets := testPrefix(t) + "sem/storm/q/"
	assert.Zero(t, keysUnder(t, rs[0].cli, tickets), "tickets left behind")
	avail, err := sems[0].Available(ctx)
	require.NoError(t, err)
	assert.Equal(t, size, avail)
	waiting, err := sems[0].Waiting(ctx)
	require.NoError(t, err)
	assert.Zero(t, waiting)
	t.Logf("tombstones of unknown outcomes: %d", keysUnder(t, rs[0].cli, testPrefix(t)+"sem/storm/x/"))

	// A late put, applied after its cleanup, must land nowhere: write
	// once more and read again, after every request sent before has had
	// its chance to be applied.
	_, err = rs[0].cli.Put(ctx, testPrefix(t)+"barrier-write", "")
	require.NoError(t, err)
	assert.Zero(t, keysUnder(t, rs[0].cli, tickets), "a late ticket landed")
}

// TestStormLock is the storm on a Lock: never two holders, and each
// holder's token is higher than every earlier holder's.
func TestStormLock(t *testing.T) {
	const replicas, workers = 6, 8
	rounds := 15 * stressScale
	rs := newReplicas(t, replicas)
	locks := make([]*etcdsync.Lock, replicas)
	for i, r := range rs {
		locks[i] = etcdsync.NewLock(r.s, "storm")
	}
	var mu sync.Mutex // guards lastToken, taken only by holders
	var lastToken int64
	var holders, granted, timedOut atomic.Int64
	var wg sync.WaitGroup
	for i := range replicas * workers {
		l := locks[i%replicas]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), stormDeadline(rng))
				var p *etcdsync.Permit
				var err error
				if rng.IntN(4) == 0 {
					p, err = l.TryLock(ctx)
				} else {
					p, err = l.Lock(ctx)
				}
				cancel()
				if errors.Is(err, etcdsync.ErrWouldBlock) {
					continue
				}
				if err != nil {
					if !assert.Equal(t, context.DeadlineExceeded, err) {
						return
					}
					timedOut.Add(1)
					continue
				}
				granted.Add(1)
				if h := holders.Add(1); h != 1 {
					t.Errorf("%d holders of one lock", h)
				}
				mu.Lock()
				if p.Token() <= lastToken {
					t.Errorf("token %d after %d", p.Token(), lastToken)
				}
				lastToken = p.Token()
				mu.Unlock()
				holders.Add(-1)
				releaseEventually(t, p, rng)
			}
		})
	}
	wg.Wait()
	t.Logf("granted %d, timed out %d", granted.Load(), timedOut.Load())
	require.Positive(t, granted.Load())
	assert.Zero(t, keysUnder(t, rs[0].cli, testPrefix(t)+"lock/storm/q/"), "tickets left behind")
	locked, err := locks[0].Locked(context.Background())
	require.NoError(t, err)
	assert.False(t, locked)
}

// stormDeadline is 0–50 ms for two calls in three, short enough that RPCs
// end with their outcome unknown, and up to 1 s for the third, so that
// calls are also granted while so many others time out.
func stormDeadline(rng *rand.Rand) time.Duration {
	if rng.IntN(3) == 0 {
		return time.Duration(50+rng.IntN(951)) * time.Millisecond
	}
	return time.Duration(rng.IntN(51)) * time.Millisecond
}

// releaseEventually releases p, first under a random short deadline (so
// that Releases too end with their outcome unknown), then retries without
// one, as the contract allows after ctx.Err().
func releaseEventually(t *testing.T, p *etcdsync.Permit, rng *rand.Rand) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(30))*time.Millisecond)
	err := p.Release(ctx)
	cancel()
	if err == nil {
		return
	}
	assert.Equal(t, context.DeadlineExceeded, err)
	assert.NoError(t, p.Release(context.Background()))
}
