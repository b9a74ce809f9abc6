package etcdsync_test

// Session.Close is retryable: a Close whose revoke fails ends the session
// all the same, and a later Close tries the revoke again until one
// succeeds; after that, Close returns nil at once.

import (
	"context"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// sessionGoroutines counts the goroutines running code of a Session: none
// may outlive Close. Tests compare it with the count before they made
// their sessions, which is 0 unless an earlier test left one open.
func sessionGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		// A goroutine not yet scheduled has no frame of its own, but
		// says who created it.
		if strings.Contains(g, "etcdsync.(*Session).") || strings.Contains(g, "created by github.com/ctxsync/ctxsync/etcdsync.NewSession") {
			count++
		}
	}
	return count
}

// leaseTTL is the lease's remaining TTL in etcd; -1 once it is gone.
func leaseTTL(t testing.TB, cli *clientv3.Client, id clientv3.LeaseID) int64 {
	t.Helper()
	resp, err := cli.TimeToLive(confCtx(t), id)
	require.NoError(t, err)
	return resp.TTL
}

// newProxy starts a TCP proxy to the shared server, closed when the test
// ends.
func newProxy(t testing.TB) *etcdtest.Proxy {
	t.Helper()
	u, err := url.Parse(server.Endpoints()[0])
	require.NoError(t, err)
	proxy, err := etcdtest.NewProxy(u.Host)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	return proxy
}

func TestSessionCloseRetriesRevoke(t *testing.T) {
	for _, dc := range confDoneCtxs() {
		t.Run(dc.name, func(t *testing.T) {
			base := sessionGoroutines()
			prefix := testPrefix(t)
			admin := newClient(t)
			cli, rpcs := confCountingClient(t)
			s, err := etcdsync.NewSession(confCtx(t), cli, etcdsync.WithPrefix(prefix))
			require.NoError(t, err)
			p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
			require.NoError(t, err)

			rpcs.reset()
			confIsExactly(t, dc.want, s.Close(dc.make()), "Close")
			require.Empty(t, rpcs.sent(), "Close on a done ctx sent RPCs")
			// The session has ended all the same ...
			require.True(t, confClosed(s.Done()), "Done after a failed Close")
			require.True(t, confClosed(p.Lost()), "Lost after a failed Close")
			require.LessOrEqual(t, sessionGoroutines(), base, "goroutines outlived Close")
			_, err = etcdsync.NewLock(s, "l").Lock(confCtx(t))
			require.ErrorIs(t, err, etcdsync.ErrSessionLost)
			// ... but the lease was not revoked.
			require.Positive(t, leaseTTL(t, admin, s.Lease()))
			confTickets(t, admin, confLockQ(prefix, "l"), 1)

			// A later Close revokes it.
			require.NoError(t, s.Close(confCtx(t)))
			require.EqualValues(t, -1, leaseTTL(t, admin, s.Lease()))
			confTickets(t, admin, confLockQ(prefix, "l"), 0)

			// And after that, Close returns nil at once, sending nothing.
			rpcs.reset()
			require.NoError(t, s.Close(dc.make()))
			require.NoError(t, s.Close(confCtx(t)))
			require.Empty(t, rpcs.sent(), "Close after a successful Close sent RPCs")
		})
	}
}

// A Close that cannot reach etcd returns exactly ctx.Err(), and has ended
// the session; once the network is back, Close revokes the lease, so what
// the session held passes on long before its TTL.
func TestSessionCloseRetriesRevokeAfterCut(t *testing.T) {
	base := sessionGoroutines()
	prefix := testPrefix(t)
	proxy := newProxy(t)
	cutCli := newClient(t, proxy.URL())
	admin := newClient(t)
	other := newSession(t, admin)
	s, err := etcdsync.NewSession(confCtx(t), cutCli, etcdsync.WithPrefix(prefix), etcdsync.WithTTL(60*time.Second))
	require.NoError(t, err)
	p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
	require.NoError(t, err)
	next := lockAsync(etcdsync.NewLock(other, "l"), context.Background())
	waitWaiting(t, etcdsync.NewLock(other, "l"), 1)

	proxy.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err = s.Close(ctx)
	cancel()
	confIsExactly(t, context.DeadlineExceeded, err, "Close while cut")
	require.True(t, confClosed(s.Done()))
	require.True(t, confClosed(p.Lost()))
	require.Positive(t, leaseTTL(t, admin, s.Lease()), "the lease outlived the failed Close")

	proxy.Restore()
	require.NoError(t, s.Close(confCtx(t)))
	require.EqualValues(t, -1, leaseTTL(t, admin, s.Lease()))
	r := waitResult(t, next, confWait)
	require.NoError(t, r.err)
	confRelease(t, r.p)
	require.NoError(t, s.Close(confCtx(t)))
	require.NoError(t, other.Close(confCtx(t)))
	require.LessOrEqual(t, sessionGoroutines(), base, "goroutines outlived Close")
}

// Closes from several goroutines at once: one revokes, all return nil.
func TestSessionCloseConcurrent(t *testing.T) {
	base := sessionGoroutines()
	admin := newClient(t)
	s, err := etcdsync.NewSession(confCtx(t), newClient(t), etcdsync.WithPrefix(testPrefix(t)))
	require.NoError(t, err)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- s.Close(confCtx(t)) }()
	}
	for range cap(errs) {
		require.NoError(t, <-errs)
	}
	require.EqualValues(t, -1, leaseTTL(t, admin, s.Lease()))
	require.LessOrEqual(t, sessionGoroutines(), base, "goroutines outlived Close")
}

// A session whose lease etcd ended (a revoke from outside) has nothing
// left to revoke: Close returns nil without an RPC, even on a done ctx.
func TestSessionCloseAfterLeaseGone(t *testing.T) {
	cli, rpcs := confCountingClient(t)
	s, err := etcdsync.NewSession(confCtx(t), cli, etcdsync.WithPrefix(testPrefix(t)), etcdsync.WithTTL(minTTL))
	require.NoError(t, err)
	p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
	require.NoError(t, err)
	_, err = newClient(t).Revoke(confCtx(t), s.Lease())
	require.NoError(t, err)
	waitClosed(t, s.Done(), confWait, "Done after the revoke")
	waitClosed(t, p.Lost(), confWait, "Lost after the revoke")

	rpcs.reset()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, s.Close(done))
	require.Empty(t, rpcs.sent())
	require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
}

// A Close whose revoke etcd refuses with an error of its own (not the
// ctx's) returns it wrapped, with a message that begins "etcdsync: " (D2),
// and has ended the session all the same; a later Close revokes the lease.
func TestSessionCloseRetriesRevokeAfterError(t *testing.T) {
	base := sessionGoroutines()
	prefix := testPrefix(t)
	admin := newClient(t)
	var refuse atomic.Bool
	refuse.Store(true)
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/LeaseRevoke") && refuse.Load() {
			return rpctypes.ErrGRPCPermissionDenied
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli := dialWith(t, nil, unary, nil)
	t.Cleanup(func() { _ = cli.Close() })
	s, err := etcdsync.NewSession(confCtx(t), cli, etcdsync.WithPrefix(prefix))
	require.NoError(t, err)
	p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
	require.NoError(t, err)

	err = s.Close(confCtx(t))
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	require.True(t, strings.HasPrefix(err.Error(), "etcdsync: "), err.Error())
	require.True(t, confClosed(s.Done()), "Done after a failed Close")
	require.True(t, confClosed(p.Lost()), "Lost after a failed Close")
	require.LessOrEqual(t, sessionGoroutines(), base, "goroutines outlived Close")
	require.Positive(t, leaseTTL(t, admin, s.Lease()))
	confTickets(t, admin, confLockQ(prefix, "l"), 1)
	// Still refused: the same again.
	require.ErrorIs(t, s.Close(confCtx(t)), rpctypes.ErrPermissionDenied)

	refuse.Store(false)
	require.NoError(t, s.Close(confCtx(t)))
	require.EqualValues(t, -1, leaseTTL(t, admin, s.Lease()))
	confTickets(t, admin, confLockQ(prefix, "l"), 0)
	require.NoError(t, s.Close(confCtx(t)))
	require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
}
