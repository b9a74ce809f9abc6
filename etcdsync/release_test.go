package etcdsync_test

// Release rules (ETCDSYNC.md, "Session and Permit"): transient failures are
// retried inside Release until its ctx ends, other failures are returned at
// once, and a Release that fails leaves its delete to the session (D3), so
// that what a deferred Release gave back is held at most until etcd can be
// reached again; such a permit is not lost.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// awaitTickets waits, bounded, until exactly want tickets are under q: the
// session's cleaner removes them in the background.
func awaitTickets(t testing.TB, cli *clientv3.Client, q string, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return keysUnder(t, cli, q) == int64(want) },
		confWait, 5*time.Millisecond, "tickets under %s: want %d", q, want)
}

// txnFaults fails the Txn RPCs of a client with err, without sending them,
// while armed: n more times, or every time if n < 0.
type txnFaults struct {
	mu     sync.Mutex
	n      int
	err    error
	failed int
}

func (f *txnFaults) arm(n int, err error) {
	f.mu.Lock()
	f.n, f.err, f.failed = n, err, 0
	f.mu.Unlock()
}

func (f *txnFaults) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *txnFaults) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if strings.HasSuffix(method, "/Txn") {
		f.mu.Lock()
		if f.n != 0 {
			f.n--
			f.failed++
			err := f.err
			f.mu.Unlock()
			return err
		}
		f.mu.Unlock()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func txnFaultyClient(t testing.TB) (*clientv3.Client, *txnFaults) {
	t.Helper()
	f := &txnFaults{}
	cli := dialWith(t, nil, f.intercept, nil)
	t.Cleanup(func() { _ = cli.Close() })
	return cli, f
}

func TestReleaseRetriesTransientFailures(t *testing.T) {
	transient := []struct {
		name string
		err  error
	}{
		{"unavailable", status.Error(codes.Unavailable, "connection refused")},
		{"no-leader", rpctypes.ErrGRPCNoLeader},
		{"leader-changed", rpctypes.ErrGRPCLeaderChanged},
		{"too-many-requests", rpctypes.ErrGRPCRequestTooManyRequests},
		{"proposal-dropped", status.Error(codes.Unknown, "raft proposal dropped")},
		// The same reasons, told only by their text or code.
		{"leader-changed-text", status.Error(codes.Unknown, "etcdserver: leader changed")},
		{"resource-exhausted", status.Error(codes.ResourceExhausted, "test: overloaded")},
		{"unavailable-eof", status.Error(codes.Unavailable, "error reading from server: EOF")},
	}
	for _, tc := range transient {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix(t)
			cli, f := txnFaultyClient(t)
			s := newSession(t, cli)
			p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
			require.NoError(t, err)
			f.arm(3, tc.err)
			require.NoError(t, p.Release(confCtx(t)))
			require.Equal(t, 3, f.count(), "failures seen by Release")
			confTickets(t, cli, confLockQ(prefix, "l"), 0)
			require.False(t, confClosed(p.Lost()))
		})
	}

	// Transient failures that last: Release retries until its ctx ends
	// and returns exactly ctx.Err(); once etcd answers again, the session
	// removes the ticket, and a later Release returns nil.
	t.Run("until-ctx-ends", func(t *testing.T) {
		prefix := testPrefix(t)
		cli, f := txnFaultyClient(t)
		s := newSession(t, cli)
		p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
		require.NoError(t, err)
		f.arm(-1, rpctypes.ErrGRPCNoLeader)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = p.Release(ctx)
		cancel()
		confIsExactly(t, context.DeadlineExceeded, err, "Release")
		require.Greater(t, f.count(), 1, "Release did not retry")
		confTickets(t, cli, confLockQ(prefix, "l"), 1)
		f.arm(0, nil)
		awaitTickets(t, cli, confLockQ(prefix, "l"), 0)
		require.NoError(t, p.Release(confCtx(t)))
		require.False(t, confClosed(p.Lost()))
	})
}

// Any other failure is returned at once, wrapped; the session still
// removes the ticket in the background once etcd accepts the delete.
func TestReleaseReturnsOtherFailuresAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   error // what errors.Is must reach
	}{
		{"permission-denied", rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrPermissionDenied},
		{"invalid-argument", status.Error(codes.InvalidArgument, "test: bad request"), nil},
		{"unknown", status.Error(codes.Unknown, "test: something else"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix(t)
			cli, f := txnFaultyClient(t)
			s := newSession(t, cli)
			p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
			require.NoError(t, err)
			f.arm(1, tc.err)
			err = p.Release(confCtx(t))
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			} else {
				st, ok := status.FromError(err)
				require.True(t, ok, "the gRPC status is not reachable through %T: %v", err, err)
				require.Equal(t, status.Code(tc.err), st.Code())
			}
			require.True(t, strings.HasPrefix(err.Error(), "etcdsync: "), err.Error())
			require.False(t, errors.Is(err, etcdsync.ErrSessionLost) || errors.Is(err, context.Canceled) ||
				errors.Is(err, context.DeadlineExceeded), err.Error())
			require.Equal(t, 1, f.count(), "Release retried a failure that is not transient")
			awaitTickets(t, cli, confLockQ(prefix, "l"), 0)
			require.NoError(t, p.Release(confCtx(t)))
			require.False(t, confClosed(p.Lost()))
		})
	}
}

// The holder is cut off from etcd. A Release with a deadline returns
// exactly ctx.Err(); the permit is not lost, and the lock passes on as soon
// as the network is back, not a TTL later. A Release without a deadline
// waits out the cut and returns nil.
func TestReleaseAcrossCut(t *testing.T) {
	prefix := testPrefix(t)
	proxy := newProxy(t)
	cutCli := newClient(t, proxy.URL())
	admin := newClient(t)
	// A TTL far longer than the test: only the session's own retry can
	// give the lock back in time.
	s := newSession(t, cutCli, etcdsync.WithTTL(60*time.Second))
	other := newSession(t, admin)
	bg := context.Background()

	p, err := etcdsync.NewLock(s, "a").Lock(bg)
	require.NoError(t, err)
	lo := etcdsync.NewLock(other, "a")
	next := lockAsync(lo, bg)
	waitWaiting(t, lo, 1)

	proxy.Cut()
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	err = p.Release(ctx)
	cancel()
	confIsExactly(t, context.DeadlineExceeded, err, "Release while cut")
	require.False(t, confClosed(p.Lost()), "a permit given back is not lost")
	locked, err := lo.Locked(bg)
	require.NoError(t, err)
	require.True(t, locked, "etcd cannot have heard of the Release during the cut")
	proxy.Restore()
	r := waitResult(t, next, confWait)
	require.NoError(t, r.err)
	require.Greater(t, r.p.Token(), p.Token())
	require.NoError(t, p.Release(confCtx(t)))
	require.False(t, confClosed(p.Lost()))
	confRelease(t, r.p)

	// A Release whose ctx has no end waits out the cut.
	q, err := etcdsync.NewLock(s, "b").Lock(bg)
	require.NoError(t, err)
	proxy.Cut()
	released := make(chan error, 1)
	go func() { released <- q.Release(bg) }()
	// The Release is under way (or not yet started): either way it cannot
	// reach etcd until the cut ends.
	confTickets(t, admin, confLockQ(prefix, "b"), 1)
	proxy.Restore()
	select {
	case err := <-released:
		require.NoError(t, err)
	case <-time.After(confWait):
		t.Fatal("Release did not return after the cut")
	}
	confTickets(t, admin, confLockQ(prefix, "b"), 0)
	require.False(t, confClosed(q.Lost()))
}

// The usual pattern: a deferred Release with the request's ctx, which
// has ended by then. The permit is given back all the same, at once, and
// the next waiter is granted; the session does not hold it until it ends.
func TestReleaseDeferredWithEndedContext(t *testing.T) {
	s := newSession(t, newClient(t))
	other := newSession(t, newClient(t))
	lo := etcdsync.NewLock(other, "l")
	var held *etcdsync.Permit
	var releaseErr error
	work := func(ctx context.Context, cancel context.CancelFunc) {
		p, err := etcdsync.NewLock(s, "l").Lock(ctx)
		require.NoError(t, err)
		held = p
		defer func() { releaseErr = p.Release(ctx) }()
		cancel() // the request ends while the work holds the lock
	}
	ctx, cancel := context.WithCancel(context.Background())
	work(ctx, cancel)
	confIsExactly(t, context.Canceled, releaseErr, "deferred Release")

	p, err := lo.Lock(confCtx(t))
	require.NoError(t, err, "the next waiter must be granted while the session lives")
	require.Greater(t, p.Token(), held.Token())
	require.False(t, confClosed(held.Lost()))
	require.False(t, confClosed(s.Done()))
	confRelease(t, p)
	require.NoError(t, held.Release(confCtx(t)))
}

// A permit whose delete the session completed: Release returns nil even
// after the session ended, and its Lost stays open. One the session could
// not complete before it ended: ErrSessionLost (etcd can no longer tell),
// and still not lost.
func TestReleaseAfterSessionEnded(t *testing.T) {
	t.Run("delete-done", func(t *testing.T) {
		prefix := testPrefix(t)
		cli := newClient(t)
		s := newSession(t, cli)
		p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
		require.NoError(t, err)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		confIsExactly(t, context.Canceled, p.Release(done), "Release")
		awaitTickets(t, cli, confLockQ(prefix, "l"), 0)
		require.NoError(t, s.Close(confCtx(t)))
		require.NoError(t, p.Release(confCtx(t)))
		require.False(t, confClosed(p.Lost()))
		v, panicked := confPanicValue(func() { _ = p.Release(confCtx(t)) })
		require.True(t, panicked, "Release after a successful Release")
		require.Equal(t, "etcdsync: Release of a permit already released", v)
	})
	t.Run("delete-not-done", func(t *testing.T) {
		cli, f := txnFaultyClient(t)
		s := newSession(t, cli)
		p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
		require.NoError(t, err)
		f.arm(-1, rpctypes.ErrGRPCNoLeader)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		confIsExactly(t, context.DeadlineExceeded, p.Release(ctx), "Release")
		cancel()
		require.NoError(t, s.Close(confCtx(t)))
		err = p.Release(confCtx(t))
		require.ErrorIs(t, err, etcdsync.ErrSessionLost)
		require.False(t, errors.Is(err, context.Canceled))
		require.False(t, confClosed(p.Lost()), "a permit given back is not lost")
	})
}
