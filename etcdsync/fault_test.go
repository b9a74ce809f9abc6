package etcdsync_test

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// shortTTL keeps the fault tests quick; the test server's minimum TTL is
// below it.
const shortTTL = 2 * time.Second

// lostBound is how long a loss may take to be seen: the TTL (a loss from
// outside, such as a revoke, is seen at the session's next keep-alive) and
// slack for a loaded machine.
const lostBound = shortTTL + 8*time.Second

// waitClosed fails the test unless ch closes within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s not within %v", what, d)
	}
}

type lockResult struct {
	p   *etcdsync.Permit
	err error
}

func lockAsync(l *etcdsync.Lock, ctx context.Context) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		p, err := l.Lock(ctx)
		ch <- lockResult{p, err}
	}()
	return ch
}

func waitResult(t *testing.T, ch <-chan lockResult, d time.Duration) lockResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("no result within %v", d)
		return lockResult{}
	}
}

// waitWaiting polls until n requests wait on l.
func waitWaiting(t *testing.T, l *etcdsync.Lock, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		w, err := l.Waiting(context.Background())
		return err == nil && w == n
	}, 10*time.Second, 5*time.Millisecond)
}

// guardHolds runs a write guarded by p and reports whether it was applied.
func guardHolds(t *testing.T, cli *clientv3.Client, p *etcdsync.Permit, key string) bool {
	t.Helper()
	resp, err := cli.Txn(context.Background()).If(p.Guard()).Then(clientv3.OpPut(key, "x")).Commit()
	require.NoError(t, err)
	return resp.Succeeded
}

// assertLost checks everything D6 says of a permit whose session is gone.
func assertLost(t *testing.T, cli *clientv3.Client, p *etcdsync.Permit, s *etcdsync.Session) {
	t.Helper()
	waitClosed(t, s.Done(), lostBound, "session end")
	waitClosed(t, p.Lost(), lostBound, "Lost")
	pctx, cancel := p.Context(context.Background())
	defer cancel()
	<-pctx.Done()
	assert.ErrorIs(t, context.Cause(pctx), etcdsync.ErrSessionLost)
	assert.False(t, guardHolds(t, cli, p, testPrefix(t)+"fenced"), "Guard of a lost permit held")
	assert.ErrorIs(t, p.Release(context.Background()), etcdsync.ErrSessionLost)
}

// TestCrashHolder: the holder's lease is revoked, as when its process dies
// and the lease runs out. The next waiter gets the lock with a higher
// token, and the old permit is lost in every way D6 names.
func TestCrashHolder(t *testing.T) {
	crashed := newClient(t)
	sc := newSession(t, crashed, etcdsync.WithTTL(shortTTL))
	other := newClient(t)
	so := newSession(t, other, etcdsync.WithTTL(shortTTL))
	ctx := context.Background()

	old, err := etcdsync.NewLock(sc, "crash").Lock(ctx)
	require.NoError(t, err)
	lo := etcdsync.NewLock(so, "crash")
	next := lockAsync(lo, ctx)
	waitWaiting(t, lo, 1)
	// A blocked call of the crashed process fails with ErrSessionLost.
	blocked := lockAsync(etcdsync.NewLock(sc, "crash"), ctx)
	waitWaiting(t, lo, 2)

	start := time.Now()
	_, err = other.Revoke(ctx, sc.Lease())
	require.NoError(t, err)

	r := waitResult(t, next, lostBound)
	require.NoError(t, r.err)
	t.Logf("next holder granted %v after the revoke", time.Since(start))
	assert.Greater(t, r.p.Token(), old.Token())
	assert.True(t, guardHolds(t, other, r.p, testPrefix(t)+"fenced"))

	assert.ErrorIs(t, waitResult(t, blocked, lostBound).err, etcdsync.ErrSessionLost)
	assertLost(t, other, old, sc)
	_, err = etcdsync.NewLock(sc, "crash").Lock(ctx)
	assert.ErrorIs(t, err, etcdsync.ErrSessionLost)
	require.NoError(t, r.p.Release(ctx))
}

// TestNetworkCut: a TCP proxy between one replica's client and the server
// drops every byte for longer than the TTL. The server expires its lease:
// the other replica gets the lock with a higher token, and the cut replica
// learns it lost everything, its blocked calls included.
func TestNetworkCut(t *testing.T) {
	u, err := url.Parse(server.Endpoints()[0])
	require.NoError(t, err)
	proxy, err := etcdtest.NewProxy(u.Host)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)

	cutCli := newClient(t, proxy.URL())
	sc := newSession(t, cutCli, etcdsync.WithTTL(shortTTL))
	other := newClient(t)
	so := newSession(t, other, etcdsync.WithTTL(shortTTL))
	ctx := context.Background()

	old, err := etcdsync.NewLock(sc, "cut").Lock(ctx)
	require.NoError(t, err)
	lo := etcdsync.NewLock(so, "cut")
	next := lockAsync(lo, ctx)
	waitWaiting(t, lo, 1)
	// The cut replica also waits for a Semaphore, across the cut.
	sem, err := etcdsync.NewSemaphore(ctx, sc, "cut", 1)
	require.NoError(t, err)
	semHeld, err := sem.Acquire(ctx)
	require.NoError(t, err)
	semBlocked := make(chan error, 1)
	go func() {
		_, err := sem.Acquire(ctx)
		semBlocked <- err
	}()
	require.Eventually(t, func() bool {
		w, err := etcdsync.NewLock(so, "unused").Waiting(ctx) // a round trip, so the acquire had time to queue
		if err != nil || w != 0 {
			return false
		}
		resp, err := other.Get(ctx, testPrefix(t)+"sem/cut/q/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	}, 10*time.Second, 5*time.Millisecond)

	proxy.Cut()
	start := time.Now()
	r := waitResult(t, next, lostBound)
	require.NoError(t, r.err)
	t.Logf("the other replica was granted %v after the cut", time.Since(start))
	assert.Greater(t, r.p.Token(), old.Token())

	waitClosed(t, sc.Done(), lostBound, "session end on the cut replica")
	select {
	case err := <-semBlocked:
		assert.ErrorIs(t, err, etcdsync.ErrSessionLost)
	case <-time.After(lostBound):
		t.Fatal("blocked Acquire did not fail")
	}
	waitClosed(t, semHeld.Lost(), lostBound, "Lost of the semaphore permit")
	proxy.Restore()
	assertLost(t, other, old, sc)
	require.NoError(t, r.p.Release(ctx))
}

// TestSessionCloseFailsBlockedCalls: Close revokes the lease; blocked calls
// return ErrSessionLost, held permits are lost, and a waiter in another
// session is granted.
func TestSessionCloseFailsBlockedCalls(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli)
	other := newSession(t, newClient(t))
	ctx := context.Background()
	held, err := etcdsync.NewLock(s, "close").Lock(ctx)
	require.NoError(t, err)
	lo := etcdsync.NewLock(other, "close")
	next := lockAsync(lo, ctx)
	waitWaiting(t, lo, 1)
	blocked := lockAsync(etcdsync.NewLock(s, "close"), ctx)
	waitWaiting(t, lo, 2)

	require.NoError(t, s.Close(ctx))
	assert.ErrorIs(t, waitResult(t, blocked, 5*time.Second).err, etcdsync.ErrSessionLost)
	waitClosed(t, held.Lost(), time.Second, "Lost after Close")
	assert.ErrorIs(t, held.Release(ctx), etcdsync.ErrSessionLost)
	r := waitResult(t, next, 5*time.Second)
	require.NoError(t, r.err)
	require.NoError(t, r.p.Release(ctx))
	assert.NoError(t, s.Close(ctx), "a second Close")
}

// TestLeaderFailover runs holders and waiters on a 3-member cluster and
// stops the leader while they work. No grant is made twice (never two
// holders, tokens strictly increasing from holder to holder), none is lost
// (every worker goes on being granted after the failover), and no ticket is
// left.
func TestLeaderFailover(t *testing.T) {
	skipIfExternal(t, "it stops the leader of an embedded cluster of three, not the external server")
	cluster, err := etcdtest.StartCluster(3)
	require.NoError(t, err)
	// Cleanups run last-in first-out: the cluster stops after the
	// sessions and clients made below have closed.
	t.Cleanup(cluster.Close)

	const replicas, workers, roundsAfter = 3, 3, 5
	locks := make([]*etcdsync.Lock, replicas)
	var clis []*clientv3.Client
	for i := range locks {
		cli := newClient(t, cluster.Endpoints()...)
		clis = append(clis, cli)
		locks[i] = etcdsync.NewLock(newSession(t, cli, etcdsync.WithTTL(10*time.Second)), "failover")
	}
	var mu sync.Mutex
	var lastToken int64
	var holders, grants, failed atomic.Int64
	var failedOver atomic.Bool // set once the leader has stopped
	var wg sync.WaitGroup
	for i := range replicas * workers {
		l := locks[i%replicas]
		wg.Go(func() {
			// Each worker goes on until it was granted roundsAfter times
			// after the leader stopped.
			for after := 0; after < roundsAfter; {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				p, err := l.Lock(ctx)
				cancel()
				if err != nil {
					// Failover may fail a call (no leader, a cut
					// stream); it must leave nothing, and a retry goes on.
					require.NotErrorIs(t, err, etcdsync.ErrSessionLost)
					failed.Add(1)
					continue
				}
				if h := holders.Add(1); h != 1 {
					t.Errorf("%d holders during failover", h)
				}
				mu.Lock()
				if p.Token() <= lastToken {
					t.Errorf("token %d after %d", p.Token(), lastToken)
				}
				lastToken = p.Token()
				mu.Unlock()
				grants.Add(1)
				holders.Add(-1)
				if failedOver.Load() {
					after++
				}
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					err := p.Release(ctx)
					cancel()
					if err == nil {
						break
					}
					require.NotErrorIs(t, err, etcdsync.ErrSessionLost)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return grants.Load() >= 10 }, 30*time.Second, 5*time.Millisecond)
	leader := cluster.Leader()
	require.NotNil(t, leader)
	before := grants.Load()
	leader.Stop()
	failedOver.Store(true)
	t.Logf("stopped leader %s after %d grants", leader.Name, before)
	stopped := time.Now()
	wg.Wait()
	t.Logf("%d grants in all, the last %v after the leader stopped; %d calls failed on the way", grants.Load(), time.Since(stopped), failed.Load())

	var alive *clientv3.Client
	for i, m := range cluster.Members {
		if m != leader {
			alive = clis[i]
			break
		}
	}
	resp, err := alive.Get(context.Background(), testPrefix(t)+"lock/failover/q/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "tickets left behind")
}

// TestCleanupRetriedAfterCut: a waiting call's context ends while its
// client is cut off, so its ticket cannot be withdrawn before it returns.
// The session retries the withdrawal in the background, and once the
// network is back the ticket is gone well before the lease would have
// expired.
func TestCleanupRetriedAfterCut(t *testing.T) {
	u, err := url.Parse(server.Endpoints()[0])
	require.NoError(t, err)
	proxy, err := etcdtest.NewProxy(u.Host)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	cutCli := newClient(t, proxy.URL())
	// The lease outlives the cut by far: only the cleaner can remove the
	// ticket in time.
	sc := newSession(t, cutCli, etcdsync.WithTTL(60*time.Second))
	other := newClient(t)
	so := newSession(t, other)
	bg := context.Background()

	held, err := etcdsync.NewLock(so, "cleanup").Lock(bg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(bg)
	waiter := lockAsync(etcdsync.NewLock(sc, "cleanup"), ctx)
	lo := etcdsync.NewLock(so, "cleanup")
	waitWaiting(t, lo, 1)

	proxy.Cut()
	cancel()
	r := waitResult(t, waiter, 10*time.Second)
	assert.Equal(t, context.Canceled, r.err)
	n, err := lo.Waiting(bg)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the ticket cannot have gone while the network is cut")

	proxy.Restore()
	waitWaiting(t, lo, 0)
	require.NoError(t, held.Release(bg))
	locked, err := lo.Locked(bg)
	require.NoError(t, err)
	assert.False(t, locked, "the withdrawn ticket was granted")
	select {
	case <-sc.Done():
		t.Fatal("the cut session ended")
	default:
	}
}
