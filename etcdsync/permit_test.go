package etcdsync_test

// Contract-conformance tests for Session and Permit (ETCDSYNC.md, "Session
// and Permit", D5 Guard, D6). Helpers are in rules_test.go.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// confClosed reports whether ch is closed now.
func confClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// confAwaitClosed waits, bounded, for ch to close.
func confAwaitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(confWait):
		t.Fatalf("%s not closed within %v", what, confWait)
	}
}

// confGrantedTTL is the TTL the server granted lease id.
func confGrantedTTL(t testing.TB, cli *clientv3.Client, id clientv3.LeaseID) int64 {
	t.Helper()
	resp, err := cli.TimeToLive(confCtx(t), id)
	require.NoError(t, err)
	return resp.GrantedTTL
}

// confRevoke ends a session's lease behind its back, as its expiry would.
func confRevoke(t testing.TB, cli *clientv3.Client, s *etcdsync.Session) {
	t.Helper()
	_, err := cli.Revoke(confCtx(t), s.Lease())
	require.NoError(t, err)
}

func TestConfSessionOptions(t *testing.T) {
	cli := newClient(t)

	s := newSession(t, cli)
	require.NotZero(t, s.Lease())
	require.EqualValues(t, 15, confGrantedTTL(t, cli, s.Lease()), "default TTL")
	require.False(t, confClosed(s.Done()))

	for _, c := range []struct {
		ttl  time.Duration
		want int64
	}{
		{1500 * time.Millisecond, 2},
		{2*time.Second + time.Nanosecond, 3},
		{4 * time.Second, 4},
	} {
		s := newSession(t, cli, etcdsync.WithTTL(c.ttl))
		require.Equal(t, c.want, confGrantedTTL(t, cli, s.Lease()), "WithTTL(%v) rounds up to whole seconds", c.ttl)
	}

	// WithPrefix: keys land under it, and another prefix is another
	// namespace.
	p1 := testPrefix(t) + "one/"
	p2 := testPrefix(t) + "two/"
	s1 := newSession(t, cli, etcdsync.WithPrefix(p1))
	s2 := newSession(t, cli, etcdsync.WithPrefix(p2))
	a, err := etcdsync.NewLock(s1, "l").Lock(confCtx(t))
	require.NoError(t, err)
	require.EqualValues(t, 1, keysUnder(t, cli, p1))
	require.Zero(t, keysUnder(t, cli, p2))
	b, err := etcdsync.NewLock(s2, "l").TryLock(confCtx(t))
	require.NoError(t, err, "same name under another prefix is another lock")

	// Lease: what a permit holds is attached to it.
	resp, err := cli.Get(confCtx(t), confLockQ(p1, "l"), clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, int64(s1.Lease()), resp.Kvs[0].Lease)
	require.Equal(t, a.Token(), resp.Kvs[0].CreateRevision)
	confRelease(t, a)
	confRelease(t, b)

	// The default prefix is "/ctxsync/".
	def, err := etcdsync.NewSession(confCtx(t), cli)
	require.NoError(t, err)
	defer func() { _ = def.Close(confCtx(t)) }()
	name := "conf-default-prefix-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dp, err := etcdsync.NewLock(def, name).Lock(confCtx(t))
	require.NoError(t, err)
	require.EqualValues(t, 1, keysUnder(t, cli, confLockQ("/ctxsync/", name)))
	confRelease(t, dp)
	require.Zero(t, keysUnder(t, cli, confLockQ("/ctxsync/", name)))

	// Close revokes the lease and closes Done; a second Close is harmless.
	require.NoError(t, s1.Close(confCtx(t)))
	require.True(t, confClosed(s1.Done()), "Done after Close")
	ttl, err := cli.TimeToLive(confCtx(t), s1.Lease())
	require.NoError(t, err)
	require.LessOrEqual(t, ttl.TTL, int64(0), "lease revoked by Close")
	require.NoError(t, s1.Close(confCtx(t)))
}

func TestConfPermitN(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli)
	p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
	require.NoError(t, err)
	require.Equal(t, 1, p.N())
	confRelease(t, p)
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 5)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		f    func(context.Context) (*etcdsync.Permit, error)
		want int
	}{
		{"Acquire", m.Acquire, 1},
		{"AcquireN(3)", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 3) }, 3},
		{"AcquireN(0)", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 0) }, 0},
		{"TryAcquireN(5)", func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 5) }, 5},
	} {
		p, err := c.f(confCtx(t))
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, p.N(), c.name)
		require.Equal(t, 5-c.want, confInt(t, m.Available), c.name)
		confRelease(t, p)
	}
}

// D5: Guard holds exactly while the permit is held.
func TestConfPermitGuard(t *testing.T) {
	clis, ss := confReplicas(t, 2)
	cli := clis[0]
	l := etcdsync.NewLock(ss[0], "g")
	m, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "g", 2)
	require.NoError(t, err)
	key := testPrefix(t) + "data"
	fencedPut := func(p *etcdsync.Permit, v string) bool {
		resp, err := cli.Txn(confCtx(t)).If(p.Guard()).Then(clientv3.OpPut(key, v)).Commit()
		require.NoError(t, err)
		return resp.Succeeded
	}
	value := func() string {
		resp, err := cli.Get(confCtx(t), key)
		require.NoError(t, err)
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}

	p, err := l.Lock(confCtx(t))
	require.NoError(t, err)
	require.True(t, fencedPut(p, "lock"), "Guard while held")
	q, err := m.AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	require.True(t, fencedPut(q, "sem"), "Guard of a semaphore permit while held")
	confRelease(t, p)
	confRelease(t, q)
	require.False(t, fencedPut(p, "stale lock"), "Guard after Release")
	require.False(t, fencedPut(q, "stale sem"), "Guard after Release")
	require.Equal(t, "sem", value())

	// The next holder's Guard holds, the former one's still does not.
	p2, err := etcdsync.NewLock(ss[1], "g").Lock(confCtx(t))
	require.NoError(t, err)
	require.True(t, fencedPut(p2, "next"))
	require.False(t, fencedPut(p, "stale again"))

	// After the session is closed.
	confRelease(t, p2)
	p3, err := l.Lock(confCtx(t))
	require.NoError(t, err)
	require.True(t, fencedPut(p3, "before close"))
	require.NoError(t, ss[0].Close(confCtx(t)))
	require.False(t, fencedPut(p3, "after close"), "Guard after the session closed")
	require.Equal(t, "before close", value())
}

// D6: Close fails the calls blocked through the session.
func TestConfSessionCloseFailsBlockedCalls(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 2)
	la, lb := etcdsync.NewLock(ss[0], "l"), etcdsync.NewLock(ss[1], "l")
	ma, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 1)
	require.NoError(t, err)
	mb, err := etcdsync.NewSemaphore(confCtx(t), ss[1], "m", 1)
	require.NoError(t, err)
	a, err := la.Lock(confCtx(t))
	require.NoError(t, err)
	b, err := ma.Acquire(confCtx(t))
	require.NoError(t, err)

	chs := map[string]<-chan confResult{}
	chs["Lock"] = confGo(func() (*etcdsync.Permit, error) { return lb.Lock(context.Background()) })
	confAwait(t, "Lock.Waiting", la.Waiting, 1)
	chs["Acquire"] = confGo(func() (*etcdsync.Permit, error) { return mb.Acquire(context.Background()) })
	confAwait(t, "Semaphore.Waiting", ma.Waiting, 1)
	chs["AcquireN(0)"] = confGo(func() (*etcdsync.Permit, error) { return mb.AcquireN(context.Background(), 0) })
	confAwait(t, "Semaphore.Waiting", ma.Waiting, 2)

	require.NoError(t, ss[1].Close(confCtx(t)))
	require.True(t, confClosed(ss[1].Done()))
	for name, ch := range chs {
		r := confRecv(t, ch, name)
		require.Nil(t, r.p, name)
		require.ErrorIs(t, r.err, etcdsync.ErrSessionLost, name)
	}
	// Their tickets went with the lease; the holders are untouched.
	confTickets(t, clis[0], confLockQ(prefix, "l"), 1)
	confTickets(t, clis[0], confSemQ(prefix, "m"), 1)
	require.Zero(t, confInt(t, la.Waiting))
	require.Zero(t, confInt(t, ma.Waiting))
	require.True(t, confGuardHolds(t, clis[0], a))
	require.True(t, confGuardHolds(t, clis[0], b))
	require.False(t, confClosed(a.Lost()))
	confRelease(t, a)
	confRelease(t, b)
}

// D6: Close loses what the session held, and those waiting behind go on.
func TestConfSessionCloseLosesHeldPermits(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 2)
	la, lc := etcdsync.NewLock(ss[0], "l"), etcdsync.NewLock(ss[1], "l")
	ma, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 2)
	require.NoError(t, err)

	released, err := la.Lock(confCtx(t))
	require.NoError(t, err)
	relCtx, relCancel := released.Context(context.Background())
	defer relCancel()
	confRelease(t, released)

	p, err := la.Lock(confCtx(t))
	require.NoError(t, err)
	q, err := ma.AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	pctx, pcancel := p.Context(context.Background())
	defer pcancel()
	require.False(t, confClosed(p.Lost()))
	require.NoError(t, pctx.Err())

	ch := confGo(func() (*etcdsync.Permit, error) { return lc.Lock(context.Background()) })
	confAwait(t, "Waiting", la.Waiting, 1)

	require.NoError(t, ss[0].Close(confCtx(t)))
	require.True(t, confClosed(ss[0].Done()), "Done after Close")
	confAwaitClosed(t, p.Lost(), "Lost of a held lock permit")
	confAwaitClosed(t, q.Lost(), "Lost of a held semaphore permit")
	confAwaitClosed(t, pctx.Done(), "Permit.Context")
	require.ErrorIs(t, pctx.Err(), context.Canceled)
	require.ErrorIs(t, context.Cause(pctx), etcdsync.ErrSessionLost)

	// The waiter in the other session gets the lock, with a higher token.
	r := confRecv(t, ch, "Lock behind the closed session")
	require.NoError(t, r.err)
	require.Greater(t, r.p.Token(), p.Token())
	require.False(t, confGuardHolds(t, clis[1], p))
	require.False(t, confGuardHolds(t, clis[1], q))
	confTickets(t, clis[1], confLockQ(prefix, "l"), 1)
	confTickets(t, clis[1], confSemQ(prefix, "m"), 0)

	// Lost permits: Release says so, as often as asked, and never panics.
	for range 2 {
		require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
		require.ErrorIs(t, q.Release(confCtx(t)), etcdsync.ErrSessionLost)
	}
	// The released permit was not lost: its Lost stays open.
	require.False(t, confClosed(released.Lost()), "Lost of a permit released before the session closed")
	require.NoError(t, relCtx.Err(), "Context of a permit released before the session closed")
	require.True(t, confGuardHolds(t, clis[1], r.p))
	confRelease(t, r.p)
}

// D6: a lease that ends underneath the session (as an expiry does) loses
// what the session held and waited for; those behind go on, in order; a
// stale Release never removes another holder's ticket.
func TestConfSessionLeaseEndsUnderneath(t *testing.T) {
	prefix := testPrefix(t)
	admin := newClient(t)
	clis, ss := confReplicas(t, 3, etcdsync.WithTTL(2*time.Second))
	ls := make([]*etcdsync.Lock, 3)
	for i, s := range ss {
		ls[i] = etcdsync.NewLock(s, "l")
	}
	a, err := ls[0].Lock(confCtx(t))
	require.NoError(t, err)
	actx, acancel := a.Context(context.Background())
	defer acancel()
	chB := confGo(func() (*etcdsync.Permit, error) { return ls[1].Lock(context.Background()) })
	confAwait(t, "Waiting", ls[0].Waiting, 1)
	chC := confGo(func() (*etcdsync.Permit, error) { return ls[2].Lock(context.Background()) })
	confAwait(t, "Waiting", ls[0].Waiting, 2)

	// B's lease ends while it waits: its call fails, C moves up.
	confRevoke(t, admin, ss[1])
	rb := confRecv(t, chB, "Lock of the lost waiter")
	require.Nil(t, rb.p)
	require.ErrorIs(t, rb.err, etcdsync.ErrSessionLost)
	confAwaitClosed(t, ss[1].Done(), "Done of the session whose lease ended")
	confAwait(t, "Waiting", ls[0].Waiting, 1)
	confNotYet(t, chC, "C while A holds")

	// A's lease ends while it holds: C gets the lock at once (etcd's
	// word), A learns it late.
	m0, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 1)
	require.NoError(t, err)
	confRevoke(t, admin, ss[0])
	// What A asks for now, before or after it noticed, is never granted:
	// a ticket needs the lease.
	p, err := etcdsync.NewLock(ss[0], "other").Lock(confCtx(t))
	require.Nil(t, p)
	require.ErrorIs(t, err, etcdsync.ErrSessionLost, "Lock on a session whose lease ended")
	p, err = m0.Acquire(confCtx(t))
	require.Nil(t, p)
	require.ErrorIs(t, err, etcdsync.ErrSessionLost, "Acquire on a session whose lease ended")
	p, err = m0.TryAcquireN(confCtx(t), 1)
	require.Nil(t, p)
	require.ErrorIs(t, err, etcdsync.ErrSessionLost, "TryAcquireN on a session whose lease ended")
	require.Zero(t, keysUnder(t, admin, confLockQ(prefix, "other")))
	require.Zero(t, keysUnder(t, admin, confSemQ(prefix, "m")))
	rc := confRecv(t, chC, "Lock behind the lost holder")
	require.NoError(t, rc.err)
	require.Greater(t, rc.p.Token(), a.Token())
	require.False(t, confGuardHolds(t, admin, a))
	require.True(t, confGuardHolds(t, admin, rc.p))

	// A stale Release: ErrSessionLost, and C's ticket stays.
	require.ErrorIs(t, a.Release(confCtx(t)), etcdsync.ErrSessionLost)
	confTickets(t, admin, confLockQ(prefix, "l"), 1)
	require.True(t, confGuardHolds(t, admin, rc.p))
	locked, err := ls[2].Locked(confCtx(t))
	require.NoError(t, err)
	require.True(t, locked)
	_, err = ls[2].TryLock(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)

	confAwaitClosed(t, a.Lost(), "Lost of the lost holder")
	confAwaitClosed(t, actx.Done(), "Context of the lost holder")
	require.ErrorIs(t, context.Cause(actx), etcdsync.ErrSessionLost)
	confAwaitClosed(t, ss[0].Done(), "Done of the lost holder's session")
	// The lost session's calls fail for good.
	_, err = ls[0].Lock(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrSessionLost)
	_ = clis

	confRelease(t, rc.p)
	confTickets(t, admin, confLockQ(prefix, "l"), 0)
}

// Release with a done ctx returns exactly ctx.Err(), and the session
// removes the ticket in the background (a deferred Release that failed
// must not leave the permit held for the session's life); the permit is
// not lost, and a later Release returns nil.
func TestConfPermitReleaseDoneContext(t *testing.T) {
	prefix := testPrefix(t)
	cli := newClient(t)
	s := newSession(t, cli)
	l := etcdsync.NewLock(s, "l")
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
	require.NoError(t, err)

	var given []*etcdsync.Permit
	for _, dc := range confDoneCtxs() {
		p, err := l.Lock(confCtx(t))
		require.NoError(t, err)
		q, err := m.AcquireN(confCtx(t), 2)
		require.NoError(t, err)
		for _, x := range []*etcdsync.Permit{p, q} {
			confIsExactly(t, dc.want, x.Release(dc.make()), "Release, "+dc.name)
			require.False(t, confClosed(x.Lost()))
		}
		awaitTickets(t, cli, confLockQ(prefix, "l"), 0)
		awaitTickets(t, cli, confSemQ(prefix, "m"), 0)
		require.False(t, confGuardHolds(t, cli, p), "held after the session's retry")
		given = append(given, p, q)
	}
	locked, err := l.Locked(confCtx(t))
	require.NoError(t, err)
	require.False(t, locked)
	require.Equal(t, 2, confInt(t, m.Available))

	for _, x := range given {
		confRelease(t, x)
	}
	// Released, so not lost: the session closing later leaves Lost open.
	require.NoError(t, s.Close(confCtx(t)))
	for _, x := range given {
		require.False(t, confClosed(x.Lost()))
	}
}

// A Release whose ctx ends while the RPC is in flight: exactly ctx.Err(),
// and then the permit is either still held (a retry releases it) or
// released (a retry returns nil) — never lost, never ErrSessionLost.
func TestConfPermitReleaseContextEndsDuringRPC(t *testing.T) {
	prefix := testPrefix(t)
	cli := newClient(t)
	s := newSession(t, cli)
	l := etcdsync.NewLock(s, "l")
	failed := 0
	defer func() { t.Logf("%d of 30 Releases ended on their ctx", failed) }()
	for i := range 30 {
		p, err := l.Lock(confCtx(t))
		require.NoError(t, err)
		d := time.Duration(i%15+1) * 100 * time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		err = p.Release(ctx)
		cancel()
		if err != nil {
			failed++
			confIsExactly(t, context.DeadlineExceeded, err, "Release")
			require.NoError(t, p.Release(confCtx(t)), "retry after %v", d)
		}
		require.False(t, confClosed(p.Lost()))
		confTickets(t, cli, confLockQ(prefix, "l"), 0)
	}
}

// Any number of goroutines share a Session, and every call has a ticket of
// its own: two Lock calls through one session exclude each other.
func TestConfSessionCallsHaveTicketsOfTheirOwn(t *testing.T) {
	prefix := testPrefix(t)
	cli := newClient(t)
	s := newSession(t, cli)
	l1, l2 := etcdsync.NewLock(s, "l"), etcdsync.NewLock(s, "l")
	a, err := l1.Lock(confCtx(t))
	require.NoError(t, err)
	_, err = l2.TryLock(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock, "a second call through the same session")
	ch := confGo(func() (*etcdsync.Permit, error) { return l2.Lock(context.Background()) })
	confAwait(t, "Waiting", l1.Waiting, 1)
	confTickets(t, cli, confLockQ(prefix, "l"), 2)
	confRelease(t, a)
	r := confRecv(t, ch, "Lock")
	require.NoError(t, r.err)
	require.NotEqual(t, a.Token(), r.p.Token())
	// The first permit's release did not release the second.
	require.True(t, confGuardHolds(t, cli, r.p))
	confRelease(t, r.p)
	require.False(t, errors.Is(r.err, etcdsync.ErrWouldBlock))
}

// confSlowRevokeClient is newClient whose lease revocations take delay
// longer to reach etcd: a slow network, nothing worse.
func confSlowRevokeClient(t testing.TB, delay time.Duration) *clientv3.Client {
	t.Helper()
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/LeaseRevoke") {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli := dialWith(t, nil, unary, nil)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// D3 and Close: a call that Close fails with ErrSessionLost has left
// nothing in etcd when it returns, provided etcd can be reached (here it
// can: the revocation is only slow). If Close returns ErrSessionLost to the
// blocked calls first and revokes the lease after, their tickets stay in
// the line, seen by every other process (Waiting, TryLock), until the
// revocation lands — or, if it never does, for a whole TTL.
func TestRuleD3CloseFailsCallsOnlyAfterTheirTicketsAreGone(t *testing.T) {
	prefix := testPrefix(t)
	cli := newClient(t)
	a, err := etcdsync.NewLock(newSession(t, cli), "l").Lock(confCtx(t))
	require.NoError(t, err)
	slow := newSession(t, confSlowRevokeClient(t, 300*time.Millisecond))
	lb := etcdsync.NewLock(slow, "l")
	ch := confGo(func() (*etcdsync.Permit, error) { return lb.Lock(context.Background()) })
	confAwait(t, "Waiting", lb.Waiting, 1)

	closed := make(chan error, 1)
	go func() { closed <- slow.Close(confCtx(t)) }()
	r := confRecv(t, ch, "Lock blocked at Close")
	require.ErrorIs(t, r.err, etcdsync.ErrSessionLost)
	tickets := keysUnder(t, cli, confLockQ(prefix, "l"))
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(confWait):
		t.Fatal("Close did not return")
	}
	require.Equal(t, int64(1), tickets,
		"when Lock returned ErrSessionLost its ticket was still in the line (only the holder's may be)")
	confTickets(t, cli, confLockQ(prefix, "l"), 1)
	confRelease(t, a)
}

// A permit whose Lost and Context are watched while it is held (so that a
// ticket removed from outside closes Lost) is never taken for lost by its
// own Release, nor by the delete of an earlier ticket that had the same id
// (a session reuses the ids of released tickets), however Release and the
// process's watch of the line interleave.
func TestConfPermitOwnReleaseIsNotALoss(t *testing.T) {
	_, ss := confReplicas(t, 2)
	ls := []*etcdsync.Lock{etcdsync.NewLock(ss[0], "l"), etcdsync.NewLock(ss[1], "l")}
	m, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 2)
	require.NoError(t, err)
	type watched struct {
		p   *etcdsync.Permit
		ctx context.Context
	}
	var all []watched
	watch := func(p *etcdsync.Permit) {
		ctx, cancel := p.Context(context.Background())
		t.Cleanup(cancel)
		all = append(all, watched{p, ctx})
	}
	for i := range 30 {
		p, err := ls[i%2].Lock(confCtx(t))
		require.NoError(t, err)
		watch(p)
		a, err := m.Acquire(confCtx(t))
		require.NoError(t, err)
		watch(a)
		b, err := m.TryAcquire(confCtx(t))
		require.NoError(t, err)
		watch(b)
		for _, x := range []*etcdsync.Permit{a, p, b} {
			confRelease(t, x)
		}
	}
	// A last grant through the line's view: the view has applied every
	// delete above by the time it is granted.
	p, err := ls[1].Lock(confCtx(t))
	require.NoError(t, err)
	q := confGo(func() (*etcdsync.Permit, error) { return ls[0].Lock(context.Background()) })
	confAwait(t, "Waiting", ls[0].Waiting, 1)
	confRelease(t, p)
	r := confRecv(t, q, "Lock through the view")
	require.NoError(t, r.err)
	confRelease(t, r.p)
	for i, w := range all {
		require.False(t, confClosed(w.p.Lost()), "permit %d lost by its own Release", i)
		require.NoError(t, w.ctx.Err(), "permit %d", i)
	}
}
