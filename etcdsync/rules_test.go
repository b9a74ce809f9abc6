package etcdsync_test

// Contract-conformance tests for Lock and Semaphore, written from
// ETCDSYNC.md rule by rule (D1–D5, D8 and the Lock and Semaphore sections).
// Session and Permit are in permit_test.go, misuse (D7) in misuse_test.go.
//
// Helpers of these files start with "conf" so that they never collide with
// the helpers of other test files of the package.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync"
	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// confWait bounds every wait of these tests.
const confWait = 10 * time.Second

// ---------------------------------------------------------------------------
// Helpers

// confResult is what an acquiring call run in a goroutine returned.
type confResult struct {
	p   *etcdsync.Permit
	err error
}

// confGo runs an acquiring call in a goroutine.
func confGo(f func() (*etcdsync.Permit, error)) <-chan confResult {
	ch := make(chan confResult, 1)
	go func() {
		p, err := f()
		ch <- confResult{p, err}
	}()
	return ch
}

// confRecv waits, bounded, for the result of a call started by confGo.
func confRecv(t testing.TB, ch <-chan confResult, what string) confResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(confWait):
		t.Fatalf("%s: no result within %v", what, confWait)
		return confResult{}
	}
}

// confNotYet checks that a call started by confGo has not returned. It can
// only look for a while: the window is short, since what it guards against
// (a call granted too early) would show up at once in practice, and the
// etcd state is checked besides by the callers.
func confNotYet(t testing.TB, ch <-chan confResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned too early: permit %v, err %v", what, r.p != nil, r.err)
	case <-time.After(100 * time.Millisecond):
	}
}

// confAwait polls f (Waiting, Available, ...) until it reports want.
func confAwait(t testing.TB, what string, f func(context.Context) (int, error), want int) {
	t.Helper()
	var last int
	var lastErr error
	ok := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		last, lastErr = f(ctx)
		return lastErr == nil && last == want
	}
	require.Eventually(t, ok, confWait, 5*time.Millisecond, "%s: want %d, last %d (err %v)", what, want, last, lastErr)
}

// confInt calls f once and returns its answer.
func confInt(t testing.TB, f func(context.Context) (int, error)) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	defer cancel()
	n, err := f(ctx)
	require.NoError(t, err)
	return n
}

// confReplicas makes n "processes": each has a client and a session of its
// own, all under the test's prefix.
func confReplicas(t testing.TB, n int, opts ...etcdsync.Option) ([]*clientv3.Client, []*etcdsync.Session) {
	t.Helper()
	clis := make([]*clientv3.Client, n)
	ss := make([]*etcdsync.Session, n)
	for i := range n {
		clis[i] = newClient(t)
		ss[i] = newSession(t, clis[i], opts...)
	}
	return clis, ss
}

// confLockQ and confSemQ are the key prefixes of the tickets of a Lock or
// Semaphore named name (a plain name: no escaping needed) made by sessions
// of prefix. Tombstones (".../x/") and the size key are not under them.
func confLockQ(prefix, name string) string { return prefix + "lock/" + name + "/q/" }
func confSemQ(prefix, name string) string  { return prefix + "sem/" + name + "/q/" }

// confTickets requires that exactly want tickets are under q.
func confTickets(t testing.TB, cli *clientv3.Client, q string, want int) {
	t.Helper()
	require.Equal(t, int64(want), keysUnder(t, cli, q), "tickets under %s", q)
}

// confRevision is the etcd store's revision now.
func confRevision(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	defer cancel()
	resp, err := cli.Get(ctx, "x")
	require.NoError(t, err)
	return resp.Header.Revision
}

// confNoWritesUnder requires that no write between revisions before and
// after touched a key under prefix. The revision is global to the etcd
// server that every test of the package shares, so a lease of an earlier
// test expiring may move it: then every change in between is looked at.
func confNoWritesUnder(t testing.TB, cli *clientv3.Client, prefix string, before, after int64) {
	t.Helper()
	if after == before {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	defer cancel()
	wch := cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(before+1))
	for seen := before; seen < after; {
		select {
		case wr, ok := <-wch:
			require.True(t, ok, "watch closed")
			require.NoError(t, wr.Err())
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision > after {
					continue
				}
				require.False(t, strings.HasPrefix(string(ev.Kv.Key), prefix),
					"revision %d wrote %q under %q", ev.Kv.ModRevision, ev.Kv.Key, prefix)
				seen = max(seen, ev.Kv.ModRevision)
			}
		case <-ctx.Done():
			t.Fatalf("watch of revisions %d..%d did not finish", before+1, after)
		}
	}
}

// confRPCs counts the RPCs a client sends: every unary call and every
// stream it opens, except those a session sends in the background: the
// lease keeper's (one stream per keep-alive), and its feeds' (watch.go)
// watch streams and reads. A feed reads after its watch is created, on its
// own goroutine, so the read may land a moment after the call that made
// the feed returned, after a test's reset. A feed's read is told apart by
// its require-leader metadata, which only feeds send. A call that sends
// nothing itself but starts a feed is therefore not seen here; the tests
// of D1 also check that no write happened.
type confRPCs struct {
	mu      sync.Mutex
	methods []string
}

func (c *confRPCs) add(method string) {
	c.mu.Lock()
	c.methods = append(c.methods, method)
	c.mu.Unlock()
}

func (c *confRPCs) reset() {
	c.mu.Lock()
	c.methods = nil
	c.mu.Unlock()
}

func (c *confRPCs) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.methods...)
}

// confCountingClient is newClient with an RPC counter.
func confCountingClient(t testing.TB) (*clientv3.Client, *confRPCs) {
	t.Helper()
	c := &confRPCs{}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get(rpctypes.MetadataRequireLeaderKey)) == 0 {
			c.add(method)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if !strings.HasSuffix(method, "/LeaseKeepAlive") && !strings.HasSuffix(method, "/Watch") {
			c.add(method)
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	cli := dialWith(t, nil, unary, stream)
	t.Cleanup(func() { _ = cli.Close() })
	return cli, c
}

// confLateDeadline is a context whose deadline has passed while its Err
// still says nil: the moment before the context's timer fires, which D2
// says counts as done.
type confLateDeadline struct{ context.Context }

func (confLateDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Second), true }

// confDoneCtx is one way for a context to be done, and the error a call
// given it must return.
type confDoneCtx struct {
	name string
	make func() context.Context
	want error
}

func confDoneCtxs() []confDoneCtx {
	return []confDoneCtx{
		{"cancelled", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, context.Canceled},
		{"cancelled-with-cause", func() context.Context {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(errors.New("some cause"))
			return ctx
		}, context.Canceled},
		{"deadline-passed", func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			_ = cancel // the context is done already; nothing to free
			return ctx
		}, context.DeadlineExceeded},
		{"deadline-passed-timer-not-fired", func() context.Context {
			return confLateDeadline{context.Background()}
		}, context.DeadlineExceeded},
	}
}

// confIsExactly requires err to be exactly want: the very value, not a
// wrapping of it.
func confIsExactly(t testing.TB, want, err error, what string) {
	t.Helper()
	require.ErrorIs(t, err, want, what)
	require.True(t, err == want, "%s: want exactly %v, got %T %v", what, want, err, err) //nolint:errorlint // D2 asks for the very value
}

// confGuardHolds runs a txn If(p.Guard()) and reports whether it held.
func confGuardHolds(t testing.TB, cli *clientv3.Client, p *etcdsync.Permit) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	defer cancel()
	resp, err := cli.Txn(ctx).If(p.Guard()).Commit()
	require.NoError(t, err)
	return resp.Succeeded
}

// confRelease releases p and requires nil.
func confRelease(t testing.TB, p *etcdsync.Permit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	defer cancel()
	require.NoError(t, p.Release(ctx))
}

func confCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// D1: a done context sends nothing.

func TestRuleD1DoneContextSendsNothing(t *testing.T) {
	prefix := testPrefix(t)
	cli, rpcs := confCountingClient(t)
	s := newSession(t, cli)
	observer := newClient(t)
	l := etcdsync.NewLock(s, "d1")
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "d1", 3)
	require.NoError(t, err)

	calls := []struct {
		name string
		f    func(context.Context) (*etcdsync.Permit, error)
	}{
		{"Lock", l.Lock},
		{"TryLock", l.TryLock},
		{"Acquire", m.Acquire},
		{"AcquireN-2", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 2) }},
		{"AcquireN-0", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 0) }},
		{"TryAcquireN-1", func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 1) }},
		{"TryAcquireN-0", func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 0) }},
		{"TryAcquire", m.TryAcquire},
	}
	run := func(state string, lockKeys, semKeys int64) {
		for _, dc := range confDoneCtxs() {
			for _, c := range calls {
				t.Run(state+"/"+dc.name+"/"+c.name, func(t *testing.T) {
					before := confRevision(t, observer)
					rpcs.reset()
					p, err := c.f(dc.make())
					sent := rpcs.sent()
					after := confRevision(t, observer)

					require.Nil(t, p)
					confIsExactly(t, dc.want, err, c.name)
					require.Empty(t, sent, "%s with a done ctx sent RPCs", c.name)
					confNoWritesUnder(t, observer, prefix, before, after)
					require.Equal(t, lockKeys, keysUnder(t, observer, prefix+"lock/"))
					// Besides the tickets, the size key is the only key.
					require.Equal(t, semKeys+1, keysUnder(t, observer, prefix+"sem/"))
				})
			}
		}
	}
	// The lock and the semaphore free: the calls would succeed at once if
	// they asked.
	run("free", 0, 0)

	// Held by another process, with a waiter: the calls would block or
	// fail with ErrWouldBlock if they asked.
	other := newSession(t, observer)
	ol := etcdsync.NewLock(other, "d1")
	om, err := etcdsync.NewSemaphore(confCtx(t), other, "d1", 3)
	require.NoError(t, err)
	lp, err := ol.Lock(confCtx(t))
	require.NoError(t, err)
	mp, err := om.AcquireN(confCtx(t), 3)
	require.NoError(t, err)
	wctx, wcancel := context.WithCancel(context.Background())
	chL := confGo(func() (*etcdsync.Permit, error) { return ol.Lock(wctx) })
	chM := confGo(func() (*etcdsync.Permit, error) { return om.Acquire(wctx) })
	confAwait(t, "Lock.Waiting", ol.Waiting, 1)
	confAwait(t, "Semaphore.Waiting", om.Waiting, 1)
	run("busy", 2, 2)
	wcancel()
	confIsExactly(t, context.Canceled, confRecv(t, chL, "Lock").err, "Lock")
	confIsExactly(t, context.Canceled, confRecv(t, chM, "Acquire").err, "Acquire")
	confRelease(t, lp)
	confRelease(t, mp)

	// The lock and semaphore work afterwards: nothing was left half done.
	// (And the counter does see what a live call sends.)
	rpcs.reset()
	p, err := l.TryLock(confCtx(t))
	require.NoError(t, err)
	require.NotEmpty(t, rpcs.sent(), "the RPC counter counts nothing")
	confRelease(t, p)
	q, err := m.TryAcquireN(confCtx(t), 3)
	require.NoError(t, err)
	confRelease(t, q)
}

// The calls that are not acquiring ones still fail with exactly ctx.Err()
// (D2) on a done context.
func TestRuleD2DoneContextOtherCalls(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli)
	l := etcdsync.NewLock(s, "d2")
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "d2", 3)
	require.NoError(t, err)
	for _, dc := range confDoneCtxs() {
		t.Run(dc.name, func(t *testing.T) {
			_, err := l.Locked(dc.make())
			confIsExactly(t, dc.want, err, "Locked")
			_, err = l.Waiting(dc.make())
			confIsExactly(t, dc.want, err, "Lock.Waiting")
			_, err = m.Waiting(dc.make())
			confIsExactly(t, dc.want, err, "Semaphore.Waiting")
			_, err = m.Available(dc.make())
			confIsExactly(t, dc.want, err, "Available")
			m2, err := etcdsync.NewSemaphore(dc.make(), s, "d2-other", 1)
			require.Nil(t, m2)
			confIsExactly(t, dc.want, err, "NewSemaphore")
			s2, err := etcdsync.NewSession(dc.make(), cli, etcdsync.WithPrefix(testPrefix(t)))
			require.Nil(t, s2)
			confIsExactly(t, dc.want, err, "NewSession")
		})
	}
}

// ---------------------------------------------------------------------------
// D2 and D3: a call that fails on its ctx returns exactly ctx.Err() and
// leaves no ticket.

func TestRuleD2TimeoutWhileWaiting(t *testing.T) {
	t.Run("Lock", func(t *testing.T) {
		prefix := testPrefix(t)
		clis, ss := confReplicas(t, 2)
		la, lb := etcdsync.NewLock(ss[0], "l"), etcdsync.NewLock(ss[1], "l")
		held, err := la.Lock(confCtx(t))
		require.NoError(t, err)

		for _, f := range []func(context.Context) (*etcdsync.Permit, error){lb.Lock, la.Lock} {
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			p, err := f(ctx)
			cancel()
			require.Nil(t, p)
			confIsExactly(t, context.DeadlineExceeded, err, "Lock that timed out")
			confTickets(t, clis[0], confLockQ(prefix, "l"), 1)
			require.Zero(t, confInt(t, lb.Waiting))
		}

		// Cancelled while parked in the line.
		ctx, cancel := context.WithCancel(context.Background())
		ch := confGo(func() (*etcdsync.Permit, error) { return lb.Lock(ctx) })
		confAwait(t, "Waiting", lb.Waiting, 1)
		cancel()
		r := confRecv(t, ch, "cancelled Lock")
		require.Nil(t, r.p)
		confIsExactly(t, context.Canceled, r.err, "cancelled Lock")
		confTickets(t, clis[0], confLockQ(prefix, "l"), 1)
		require.True(t, confGuardHolds(t, clis[1], held), "the holder is untouched")

		confRelease(t, held)
		confTickets(t, clis[0], confLockQ(prefix, "l"), 0)
		p, err := lb.TryLock(confCtx(t))
		require.NoError(t, err, "the withdrawn waiters left nothing in the way")
		confRelease(t, p)
	})

	t.Run("Semaphore", func(t *testing.T) {
		prefix := testPrefix(t)
		clis, ss := confReplicas(t, 2)
		ma, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 2)
		require.NoError(t, err)
		mb, err := etcdsync.NewSemaphore(confCtx(t), ss[1], "m", 2)
		require.NoError(t, err)
		held, err := ma.AcquireN(confCtx(t), 2)
		require.NoError(t, err)

		for _, n := range []int{1, 2} {
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			p, err := mb.AcquireN(ctx, n)
			cancel()
			require.Nil(t, p)
			confIsExactly(t, context.DeadlineExceeded, err, fmt.Sprintf("AcquireN(%d) that timed out", n))
			confTickets(t, clis[0], confSemQ(prefix, "m"), 1)
			require.Zero(t, confInt(t, mb.Waiting))
			require.Zero(t, confInt(t, mb.Available))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		p, err := mb.Acquire(ctx)
		cancel()
		require.Nil(t, p)
		confIsExactly(t, context.DeadlineExceeded, err, "Acquire that timed out")
		confTickets(t, clis[0], confSemQ(prefix, "m"), 1)
		confRelease(t, held)
		require.Equal(t, 2, confInt(t, mb.Available))
	})
}

// A weighted head that withdraws lets those behind it go on at once.
func TestRuleD3WithdrawnHeadUnblocksLine(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	ms := make([]*etcdsync.Semaphore, 3)
	for i, s := range ss {
		var err error
		ms[i], err = etcdsync.NewSemaphore(confCtx(t), s, "m", 3)
		require.NoError(t, err)
	}
	a, err := ms[0].AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chB := confGo(func() (*etcdsync.Permit, error) { return ms[1].AcquireN(ctx, 3) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	chC := confGo(func() (*etcdsync.Permit, error) { return ms[2].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 2)
	confNotYet(t, chC, "Acquire behind a blocked weighted head")

	cancel()
	rb := confRecv(t, chB, "cancelled AcquireN(3)")
	confIsExactly(t, context.Canceled, rb.err, "cancelled AcquireN(3)")
	rc := confRecv(t, chC, "Acquire behind the withdrawn head")
	require.NoError(t, rc.err)
	require.Zero(t, confInt(t, ms[0].Available))
	confTickets(t, clis[0], confSemQ(prefix, "m"), 2)
	confRelease(t, a)
	confRelease(t, rc.p)
	confTickets(t, clis[0], confSemQ(prefix, "m"), 0)
}

// A context that ends while an RPC is in flight: the call either succeeds
// or returns exactly ctx.Err() (never the etcd client's or server's own
// words for it), and a failed call leaves no ticket (D2, D3).
func TestRuleD2ContextEndsDuringRPC(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 2)
	cli, s := clis[0], ss[0]
	free := etcdsync.NewLock(s, "free")
	held := etcdsync.NewLock(s, "held")
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
	require.NoError(t, err)
	full, err := etcdsync.NewSemaphore(confCtx(t), s, "full", 1)
	require.NoError(t, err)
	holder, err := etcdsync.NewLock(ss[1], "held").Lock(confCtx(t))
	require.NoError(t, err)
	fullHolder, err := etcdsync.NewSemaphore(confCtx(t), ss[1], "full", 1)
	require.NoError(t, err)
	fh, err := fullHolder.Acquire(confCtx(t))
	require.NoError(t, err)

	type call struct {
		name    string
		q       string // ticket prefix
		base    int    // tickets of others
		f       func(context.Context) (*etcdsync.Permit, error)
		mustErr bool // it can only fail (the line is held by another)
	}
	calls := []call{
		{"Lock-free", confLockQ(prefix, "free"), 0, free.Lock, false},
		{"TryLock-free", confLockQ(prefix, "free"), 0, free.TryLock, false},
		{"AcquireN-free", confSemQ(prefix, "m"), 0, func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 2) }, false},
		{"TryAcquireN-free", confSemQ(prefix, "m"), 0, func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 1) }, false},
		{"Lock-held", confLockQ(prefix, "held"), 1, held.Lock, true},
		{"Acquire-full", confSemQ(prefix, "full"), 1, full.Acquire, true},
	}
	reads := []struct {
		name string
		f    func(context.Context) (int, error)
	}{
		{"Lock.Waiting", free.Waiting},
		{"Semaphore.Waiting", m.Waiting},
		{"Available", m.Available},
		{"Locked", func(ctx context.Context) (int, error) { _, err := held.Locked(ctx); return 0, err }},
	}
	ends := []struct {
		name string
		want error
		make func(d time.Duration) (context.Context, context.CancelFunc)
	}{
		{"deadline", context.DeadlineExceeded, func(d time.Duration) (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), d)
		}},
		{"cancel", context.Canceled, func(d time.Duration) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			tm := time.AfterFunc(d, cancel)
			return ctx, func() { tm.Stop(); cancel() }
		}},
	}
	outcomes := map[string]int{}
	for _, end := range ends {
		// Fine steps where a local round trip ends (100µs to 1ms, more
		// under -race), then a few longer ones.
		var ds []time.Duration
		for d := 10 * time.Microsecond; d < 1500*time.Microsecond; d += 25 * time.Microsecond {
			ds = append(ds, d)
		}
		ds = append(ds, 2*time.Millisecond, 3*time.Millisecond, 5*time.Millisecond, 10*time.Millisecond)
		for _, d := range ds {
			for _, c := range calls {
				ctx, cancel := end.make(d)
				p, err := c.f(ctx)
				cancel()
				outcomes[fmt.Sprintf("%s %s ok=%v", end.name, c.name, err == nil)]++
				if err == nil {
					require.False(t, c.mustErr, "%s granted though held by another", c.name)
					confRelease(t, p)
				} else {
					confIsExactly(t, end.want, err, fmt.Sprintf("%s, %s after %v", c.name, end.name, d))
				}
				confTickets(t, cli, c.q, c.base)
			}
			for _, r := range reads {
				ctx, cancel := end.make(d)
				_, err := r.f(ctx)
				cancel()
				if err != nil {
					confIsExactly(t, end.want, err, fmt.Sprintf("%s, %s after %v", r.name, end.name, d))
				}
			}
		}
	}
	confRelease(t, holder)
	confRelease(t, fh)
	// Tombstones of abandoned tickets may stay while the session lives,
	// but they are the session's: they go with it.
	for _, s := range ss {
		require.NoError(t, s.Close(confCtx(t)))
	}
	require.Zero(t, keysUnder(t, cli, prefix+"lock/"), "keys left after the sessions ended")
	require.EqualValues(t, 2, keysUnder(t, cli, prefix+"sem/"), "only the two size keys may outlive the sessions")
	t.Logf("outcomes: %v", outcomes)
}

// Other etcd failures are wrapped: errors.Is/As reach the etcd error, and
// the message begins "etcdsync: ". A name too long for one etcd request
// makes etcd (the client's size check, or the server's) refuse the ticket.
func TestRuleD2OtherFailuresWrapped(t *testing.T) {
	prefix := testPrefix(t)
	cli := newClient(t)
	s := newSession(t, cli)
	name := strings.Repeat("n", 450<<10)
	l := etcdsync.NewLock(s, name)
	short := func(err error) string { // the message repeats the name
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:100] + " … " + msg[len(msg)-200:]
		}
		return msg
	}
	for _, c := range []struct {
		name string
		f    func(context.Context) (*etcdsync.Permit, error)
	}{{"Lock", l.Lock}, {"TryLock", l.TryLock}} {
		p, err := c.f(confCtx(t))
		require.Nil(t, p)
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(), "etcdsync: "), "%s: message %q", c.name, short(err))
		var etcdErr rpctypes.EtcdError
		st, isStatus := status.FromError(err)
		reached := errors.As(err, &etcdErr) || (isStatus && st.Code() != codes.OK && st.Code() != codes.Unknown)
		require.True(t, reached, "%s: the etcd error is not reachable through %T: %s", c.name, err, short(err))
		require.False(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
			errors.Is(err, etcdsync.ErrSessionLost) || errors.Is(err, etcdsync.ErrWouldBlock), "%s: %s", c.name, short(err))
		require.Zero(t, keysUnder(t, cli, prefix+"lock/"+name+"/q/"), c.name)
	}
}

// ---------------------------------------------------------------------------
// D4: FIFO, no barging.

func TestRuleD4LockFIFOAcrossReplicas(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	ls := make([]*etcdsync.Lock, 3)
	for i, s := range ss {
		ls[i] = etcdsync.NewLock(s, "fifo")
	}
	a, err := ls[0].Lock(confCtx(t))
	require.NoError(t, err)

	// B (replica 1), C (replica 2), then D (replica 0 again: a second
	// request through the holder's own session is a request of its own).
	var chs []<-chan confResult
	for i, who := range []int{1, 2, 0} {
		chs = append(chs, confGo(func() (*etcdsync.Permit, error) { return ls[who].Lock(context.Background()) }))
		confAwait(t, "Waiting", ls[0].Waiting, i+1)
	}
	_, err = ls[1].TryLock(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	confTickets(t, clis[0], confLockQ(prefix, "fifo"), 4)

	prev := a
	for i, ch := range chs {
		for _, later := range chs[i:] {
			confNotYet(t, later, fmt.Sprintf("waiter %d", i))
		}
		confRelease(t, prev)
		r := confRecv(t, ch, fmt.Sprintf("waiter %d", i))
		require.NoError(t, r.err)
		require.Greater(t, r.p.Token(), prev.Token(), "D5: tokens increase from holder to holder")
		require.Equal(t, len(chs)-i-1, confInt(t, ls[2].Waiting))
		prev = r.p
	}
	confRelease(t, prev)
	confTickets(t, clis[0], confLockQ(prefix, "fifo"), 0)
}

func TestRuleD4WeightedHeadBlocksSmallerOnes(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	ms := make([]*etcdsync.Semaphore, 3)
	for i, s := range ss {
		var err error
		ms[i], err = etcdsync.NewSemaphore(confCtx(t), s, "w", 3)
		require.NoError(t, err)
	}
	a, err := ms[0].AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	require.Equal(t, 1, confInt(t, ms[0].Available))

	chB := confGo(func() (*etcdsync.Permit, error) { return ms[1].AcquireN(context.Background(), 3) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	chC := confGo(func() (*etcdsync.Permit, error) { return ms[2].AcquireN(context.Background(), 1) })
	confAwait(t, "Waiting", ms[0].Waiting, 2)

	// C would fit (one permit is free) but must not pass B.
	confNotYet(t, chC, "AcquireN(1) behind a waiting AcquireN(3)")
	require.Equal(t, 1, confInt(t, ms[2].Available))
	for _, n := range []int{0, 1} {
		p, err := ms[0].TryAcquireN(confCtx(t), n)
		require.Nil(t, p)
		require.ErrorIs(t, err, etcdsync.ErrWouldBlock, "TryAcquireN(%d) while others wait", n)
	}
	confTickets(t, clis[0], confSemQ(prefix, "w"), 3)

	confRelease(t, a)
	rb := confRecv(t, chB, "AcquireN(3)")
	require.NoError(t, rb.err)
	require.Equal(t, 3, rb.p.N())
	confNotYet(t, chC, "AcquireN(1) while AcquireN(3) holds everything")
	require.Equal(t, 1, confInt(t, ms[0].Waiting))
	require.Zero(t, confInt(t, ms[0].Available))

	confRelease(t, rb.p)
	rc := confRecv(t, chC, "AcquireN(1)")
	require.NoError(t, rc.err)
	require.Greater(t, rc.p.Token(), rb.p.Token())
	require.Equal(t, 2, confInt(t, ms[1].Available))
	confRelease(t, rc.p)
	confTickets(t, clis[0], confSemQ(prefix, "w"), 0)
}

func TestRuleD4SemaphoreFIFOAcrossReplicas(t *testing.T) {
	clis, ss := confReplicas(t, 3)
	ms := make([]*etcdsync.Semaphore, 3)
	for i, s := range ss {
		var err error
		ms[i], err = etcdsync.NewSemaphore(confCtx(t), s, "f", 2)
		require.NoError(t, err)
	}
	full, err := ms[0].AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	// Waiters of weight 1 from replicas 1, 2, 0, 1 in that order.
	order := []int{1, 2, 0, 1}
	var chs []<-chan confResult
	for i, who := range order {
		chs = append(chs, confGo(func() (*etcdsync.Permit, error) { return ms[who].Acquire(context.Background()) }))
		confAwait(t, "Waiting", ms[0].Waiting, i+1)
	}
	confRelease(t, full)
	// Two permits free: the first two waiters, and only they.
	r0 := confRecv(t, chs[0], "waiter 0")
	r1 := confRecv(t, chs[1], "waiter 1")
	require.NoError(t, r0.err)
	require.NoError(t, r1.err)
	confNotYet(t, chs[2], "waiter 2")
	confNotYet(t, chs[3], "waiter 3")
	require.Equal(t, 2, confInt(t, ms[2].Waiting))
	// Releasing waiter 1 lets waiter 2 in, not waiter 3.
	confRelease(t, r1.p)
	r2 := confRecv(t, chs[2], "waiter 2")
	require.NoError(t, r2.err)
	confNotYet(t, chs[3], "waiter 3")
	confRelease(t, r0.p)
	r3 := confRecv(t, chs[3], "waiter 3")
	require.NoError(t, r3.err)
	require.Less(t, r2.p.Token(), r3.p.Token())
	confRelease(t, r2.p)
	confRelease(t, r3.p)
	confTickets(t, clis[0], confSemQ(testPrefix(t), "f"), 0)
}

func TestRuleD4TryFailsWhileOthersWait(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 2)
	la, lb := etcdsync.NewLock(ss[0], "t"), etcdsync.NewLock(ss[1], "t")
	ma, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "t", 3)
	require.NoError(t, err)
	mb, err := etcdsync.NewSemaphore(confCtx(t), ss[1], "t", 3)
	require.NoError(t, err)

	// Lock: held, then held with a waiter.
	a, err := la.Lock(confCtx(t))
	require.NoError(t, err)
	p, err := lb.TryLock(confCtx(t))
	require.Nil(t, p)
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	confTickets(t, clis[0], confLockQ(prefix, "t"), 1)
	ch := confGo(func() (*etcdsync.Permit, error) { return lb.Lock(context.Background()) })
	confAwait(t, "Waiting", la.Waiting, 1)
	for _, l := range []*etcdsync.Lock{la, lb} {
		p, err := l.TryLock(confCtx(t))
		require.Nil(t, p)
		require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	}
	confTickets(t, clis[0], confLockQ(prefix, "t"), 2)
	confRelease(t, a)
	r := confRecv(t, ch, "Lock")
	require.NoError(t, r.err)
	confRelease(t, r.p)

	// Semaphore: a waiter that does not fit makes TryAcquireN fail even
	// for what would fit.
	h, err := ma.AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	ch = confGo(func() (*etcdsync.Permit, error) { return mb.AcquireN(context.Background(), 2) })
	confAwait(t, "Waiting", ma.Waiting, 1)
	for _, m := range []*etcdsync.Semaphore{ma, mb} {
		for _, n := range []int{0, 1} {
			p, err := m.TryAcquireN(confCtx(t), n)
			require.Nil(t, p)
			require.ErrorIs(t, err, etcdsync.ErrWouldBlock, "TryAcquireN(%d)", n)
		}
	}
	confTickets(t, clis[0], confSemQ(prefix, "t"), 2)
	confRelease(t, h)
	r = confRecv(t, ch, "AcquireN(2)")
	require.NoError(t, r.err)
	// Nobody waits now: what fits is taken.
	p, err = ma.TryAcquireN(confCtx(t), 1)
	require.NoError(t, err)
	_, err = ma.TryAcquireN(confCtx(t), 1)
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock, "full")
	confRelease(t, p)
	confRelease(t, r.p)
	confTickets(t, clis[0], confSemQ(prefix, "t"), 0)
}

// TryLock never leaves a transient key that could make another's call
// fail: of many simultaneous TryLocks on a free lock, exactly one succeeds
// (none at all would mean they tripped over each other's keys).
func TestRuleD4SimultaneousTriesExactlyOneWins(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	const per = 4
	for round := range 3 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []*etcdsync.Permit
		var errs []error
		for _, s := range ss {
			l := etcdsync.NewLock(s, "race")
			for range per {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), confWait)
					defer cancel()
					p, err := l.TryLock(ctx)
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						won = append(won, p)
					} else {
						errs = append(errs, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		require.Len(t, won, 1, "round %d", round)
		for _, err := range errs {
			require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
		}
		confTickets(t, clis[0], confLockQ(prefix, "race"), 1)
		confRelease(t, won[0])
	}

	// The same for a Semaphore of size 2 and tries of 1: exactly two win.
	start := make(chan struct{})
	var wg sync.WaitGroup
	var wins atomic.Int32
	var mu sync.Mutex
	var won []*etcdsync.Permit
	for _, s := range ss {
		m, err := etcdsync.NewSemaphore(confCtx(t), s, "race", 2)
		require.NoError(t, err)
		for range per {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), confWait)
				defer cancel()
				p, err := m.TryAcquireN(ctx, 1)
				if err == nil {
					wins.Add(1)
					mu.Lock()
					won = append(won, p)
					mu.Unlock()
				} else if !errors.Is(err, etcdsync.ErrWouldBlock) {
					t.Errorf("TryAcquireN: %v", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	require.EqualValues(t, 2, wins.Load())
	for _, p := range won {
		confRelease(t, p)
	}
	confTickets(t, clis[0], confSemQ(prefix, "race"), 0)
}

func TestRuleD4AcquireZero(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	ms := make([]*etcdsync.Semaphore, 3)
	for i, s := range ss {
		var err error
		ms[i], err = etcdsync.NewSemaphore(confCtx(t), s, "z", 1)
		require.NoError(t, err)
	}
	// Free, or full with nobody waiting: granted at once.
	z, err := ms[1].AcquireN(confCtx(t), 0)
	require.NoError(t, err)
	require.Zero(t, z.N())
	require.Equal(t, 1, confInt(t, ms[0].Available))
	a, err := ms[0].Acquire(confCtx(t))
	require.NoError(t, err)
	z2, err := ms[1].AcquireN(confCtx(t), 0)
	require.NoError(t, err)
	z3, err := ms[1].TryAcquireN(confCtx(t), 0)
	require.NoError(t, err)
	require.Zero(t, confInt(t, ms[0].Available))
	for _, p := range []*etcdsync.Permit{z, z2, z3} {
		confRelease(t, p)
	}

	// With someone waiting, AcquireN(0) queues behind them.
	chB := confGo(func() (*etcdsync.Permit, error) { return ms[1].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	chZ := confGo(func() (*etcdsync.Permit, error) { return ms[2].AcquireN(context.Background(), 0) })
	confAwait(t, "Waiting", ms[0].Waiting, 2)
	confNotYet(t, chZ, "AcquireN(0) behind a waiter")
	_, err = ms[2].TryAcquireN(confCtx(t), 0)
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock, "TryAcquireN(0) while others wait")

	confRelease(t, a)
	rb := confRecv(t, chB, "Acquire")
	require.NoError(t, rb.err)
	rz := confRecv(t, chZ, "AcquireN(0)")
	require.NoError(t, rz.err)
	require.Zero(t, rz.p.N())
	require.Greater(t, rz.p.Token(), rb.p.Token())
	confRelease(t, rb.p)
	confRelease(t, rz.p)
	confTickets(t, clis[0], confSemQ(prefix, "z"), 0)
}

func TestRuleD4ExceedsBoundAtOnce(t *testing.T) {
	prefix := testPrefix(t)
	cli, rpcs := confCountingClient(t)
	s := newSession(t, cli)
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "b", 2)
	require.NoError(t, err)
	m0, err := etcdsync.NewSemaphore(confCtx(t), s, "b0", 0)
	require.NoError(t, err)
	calls := []struct {
		name string
		f    func(context.Context) (*etcdsync.Permit, error)
	}{
		{"AcquireN(3) size 2", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 3) }},
		{"TryAcquireN(3) size 2", func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 3) }},
		{"Acquire size 0", m0.Acquire},
		{"TryAcquireN(1) size 0", func(ctx context.Context) (*etcdsync.Permit, error) { return m0.TryAcquireN(ctx, 1) }},
	}
	for _, c := range calls {
		rpcs.reset()
		start := time.Now()
		// A live ctx with a generous bound: "at once" must not need it, and
		// a call that queued instead would fail on it, not hang.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		p, err := c.f(ctx)
		cancel()
		require.Nil(t, p, c.name)
		require.ErrorIs(t, err, ctxsync.ErrExceedsBound, c.name)
		require.Less(t, time.Since(start), time.Second, c.name)
		require.Empty(t, rpcs.sent(), "%s sent RPCs", c.name)
	}
	require.Zero(t, keysUnder(t, cli, confSemQ(prefix, "b")))
	require.Zero(t, keysUnder(t, cli, confSemQ(prefix, "b0")))
	// Size 0: AcquireN(0) still works.
	p, err := m0.AcquireN(confCtx(t), 0)
	require.NoError(t, err)
	confRelease(t, p)
}

// ---------------------------------------------------------------------------
// D5: fencing tokens.

func TestRuleD5LockTokensIncreaseAcrossReplicas(t *testing.T) {
	_, ss := confReplicas(t, 3)
	var mu sync.Mutex
	var tokens []int64
	var holders atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 3*4)
	for _, s := range ss {
		l := etcdsync.NewLock(s, "fence")
		wg.Go(func() {
			for range 4 {
				ctx, cancel := context.WithTimeout(context.Background(), confWait)
				p, err := l.Lock(ctx)
				if err != nil {
					cancel()
					errs <- err
					return
				}
				if holders.Add(1) != 1 {
					errs <- errors.New("two holders at once")
				}
				mu.Lock()
				tokens = append(tokens, p.Token()) // in holder order: appended while held
				mu.Unlock()
				holders.Add(-1)
				if err := p.Release(ctx); err != nil {
					errs <- err
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, tokens, 12)
	for i := 1; i < len(tokens); i++ {
		require.Greater(t, tokens[i], tokens[i-1], "holder %d after %d: %v", i, i-1, tokens)
	}
}

// The token is the etcd revision of the permit's ticket, tickets are
// attached to the session's lease, and tokens are unique among permits
// held together.
func TestRuleD5TokenIsTicketRevision(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	var permits []*etcdsync.Permit
	for _, s := range ss {
		m, err := etcdsync.NewSemaphore(confCtx(t), s, "tok", 3)
		require.NoError(t, err)
		p, err := m.Acquire(confCtx(t))
		require.NoError(t, err)
		permits = append(permits, p)
	}
	resp, err := clis[0].Get(confCtx(t), confSemQ(prefix, "tok"), clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 3)
	seen := map[int64]bool{}
	for i, p := range permits {
		require.False(t, seen[p.Token()], "token %d twice", p.Token())
		seen[p.Token()] = true
		found := false
		for _, kv := range resp.Kvs {
			if kv.CreateRevision == p.Token() {
				found = true
				require.Equal(t, int64(ss[i].Lease()), kv.Lease, "ticket on the session's lease")
			}
		}
		require.True(t, found, "no ticket created at revision %d", p.Token())
		require.True(t, confGuardHolds(t, clis[0], p))
	}
	for _, p := range permits {
		confRelease(t, p)
	}
}

// ---------------------------------------------------------------------------
// D8: which outcome wins.

func TestRuleD8Ordering(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli)
	l := etcdsync.NewLock(s, "o")
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "o", 2)
	require.NoError(t, err)
	held, err := l.Lock(confCtx(t))
	require.NoError(t, err)

	for _, dc := range confDoneCtxs() {
		// ErrExceedsBound beats a done ctx.
		_, err := m.AcquireN(dc.make(), 3)
		require.ErrorIs(t, err, ctxsync.ErrExceedsBound, dc.name)
		_, err = m.TryAcquireN(dc.make(), 3)
		require.ErrorIs(t, err, ctxsync.ErrExceedsBound, dc.name)
	}

	require.NoError(t, s.Close(confCtx(t)))
	// A closed session beats a done ctx (and a live one).
	calls := []struct {
		name string
		f    func(context.Context) (*etcdsync.Permit, error)
	}{
		{"Lock", l.Lock},
		{"TryLock", l.TryLock},
		{"Acquire", m.Acquire},
		{"AcquireN(2)", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 2) }},
		{"AcquireN(0)", func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 0) }},
		{"TryAcquireN(1)", func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 1) }},
		{"TryAcquire", m.TryAcquire},
		{"SetSize", func(ctx context.Context) (*etcdsync.Permit, error) { return nil, m.SetSize(ctx, 1) }},
		{"NewSemaphore", func(ctx context.Context) (*etcdsync.Permit, error) {
			_, err := etcdsync.NewSemaphore(ctx, s, "o2", 1)
			return nil, err
		}},
	}
	for _, c := range calls {
		for _, dc := range append(confDoneCtxs(), confDoneCtx{"live", context.Background, nil}) {
			p, err := c.f(dc.make())
			require.Nil(t, p)
			require.ErrorIs(t, err, etcdsync.ErrSessionLost, "%s, %s ctx", c.name, dc.name)
		}
	}
	// The permit was lost with the session: its Release says so, also on a
	// done ctx, since that is known without asking etcd.
	for _, dc := range confDoneCtxs() {
		require.ErrorIs(t, held.Release(dc.make()), etcdsync.ErrSessionLost, dc.name)
	}
	require.ErrorIs(t, held.Release(confCtx(t)), etcdsync.ErrSessionLost)
}

// ---------------------------------------------------------------------------
// Lock and Semaphore sections.

func TestConfSemaphoreSizeFixedByFirst(t *testing.T) {
	_, ss := confReplicas(t, 2)
	m, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "sz", 3)
	require.NoError(t, err)
	require.Equal(t, 3, m.Size())
	for _, s := range ss {
		again, err := etcdsync.NewSemaphore(confCtx(t), s, "sz", 3)
		require.NoError(t, err)
		require.Equal(t, 3, again.Size())
		for _, other := range []int{0, 2, 4} {
			bad, err := etcdsync.NewSemaphore(confCtx(t), s, "sz", other)
			require.Nil(t, bad)
			require.ErrorIs(t, err, etcdsync.ErrSizeMismatch, "size %d", other)
		}
	}
	// The existing object still works at its size.
	p, err := m.AcquireN(confCtx(t), 3)
	require.NoError(t, err)
	confRelease(t, p)
	// Size 0 is a size like any other.
	z, err := etcdsync.NewSemaphore(confCtx(t), ss[1], "zero", 0)
	require.NoError(t, err)
	require.Zero(t, z.Size())
	_, err = etcdsync.NewSemaphore(confCtx(t), ss[0], "zero", 1)
	require.ErrorIs(t, err, etcdsync.ErrSizeMismatch)
}

func TestConfSemaphoreAvailableAndWaiting(t *testing.T) {
	_, ss := confReplicas(t, 3)
	ms := make([]*etcdsync.Semaphore, 3)
	for i, s := range ss {
		var err error
		ms[i], err = etcdsync.NewSemaphore(confCtx(t), s, "aw", 5)
		require.NoError(t, err)
	}
	require.Equal(t, 5, confInt(t, ms[0].Available))
	require.Zero(t, confInt(t, ms[0].Waiting))
	a, err := ms[0].AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	b, err := ms[1].Acquire(confCtx(t))
	require.NoError(t, err)
	for _, m := range ms {
		require.Equal(t, 2, confInt(t, m.Available))
		require.Zero(t, confInt(t, m.Waiting))
	}
	chC := confGo(func() (*etcdsync.Permit, error) { return ms[2].AcquireN(context.Background(), 3) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	require.Equal(t, 2, confInt(t, ms[1].Available), "a waiter holds nothing")
	chD := confGo(func() (*etcdsync.Permit, error) { return ms[0].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[1].Waiting, 2)
	require.Equal(t, 2, confInt(t, ms[2].Available))

	confRelease(t, a) // 1 held; C (3) and D (1) both fit now
	rc := confRecv(t, chC, "AcquireN(3)")
	require.NoError(t, rc.err)
	rd := confRecv(t, chD, "Acquire")
	require.NoError(t, rd.err)
	require.Zero(t, confInt(t, ms[0].Available))
	require.Zero(t, confInt(t, ms[0].Waiting))
	confRelease(t, b)
	require.Equal(t, 1, confInt(t, ms[1].Available))
	confRelease(t, rc.p)
	confRelease(t, rd.p)
	require.Equal(t, 5, confInt(t, ms[2].Available))
}

func TestConfLockLocked(t *testing.T) {
	_, ss := confReplicas(t, 2)
	la, lb := etcdsync.NewLock(ss[0], "k"), etcdsync.NewLock(ss[1], "k")
	locked := func(l *etcdsync.Lock) bool {
		b, err := l.Locked(confCtx(t))
		require.NoError(t, err)
		return b
	}
	require.False(t, locked(la))
	p, err := la.Lock(confCtx(t))
	require.NoError(t, err)
	require.True(t, locked(la))
	require.True(t, locked(lb), "seen from another replica")
	ch := confGo(func() (*etcdsync.Permit, error) { return lb.Lock(context.Background()) })
	confAwait(t, "Waiting", la.Waiting, 1)
	require.True(t, locked(lb))
	confRelease(t, p)
	r := confRecv(t, ch, "Lock")
	require.NoError(t, r.err)
	require.True(t, locked(la))
	require.Zero(t, confInt(t, la.Waiting))
	confRelease(t, r.p)
	require.False(t, locked(la))
	require.False(t, locked(lb))
}

func TestConfLockAndSemaphoreOfOneNameAreIndependent(t *testing.T) {
	_, ss := confReplicas(t, 2)
	l := etcdsync.NewLock(ss[0], "same")
	m, err := etcdsync.NewSemaphore(confCtx(t), ss[1], "same", 1)
	require.NoError(t, err)
	lp, err := l.Lock(confCtx(t))
	require.NoError(t, err)
	require.Equal(t, 1, confInt(t, m.Available), "the Lock holds nothing of the Semaphore")
	mp, err := m.TryAcquireN(confCtx(t), 1)
	require.NoError(t, err)
	locked, err := l.Locked(confCtx(t))
	require.NoError(t, err)
	require.True(t, locked)

	// Waiters of one are not waiters of the other.
	ch := confGo(func() (*etcdsync.Permit, error) { return etcdsync.NewLock(ss[1], "same").Lock(context.Background()) })
	confAwait(t, "Lock.Waiting", l.Waiting, 1)
	require.Zero(t, confInt(t, m.Waiting))
	confRelease(t, mp)
	confNotYet(t, ch, "Lock, when the Semaphore was released")
	confRelease(t, lp)
	r := confRecv(t, ch, "Lock")
	require.NoError(t, r.err)
	require.Equal(t, 1, confInt(t, m.Available))
	confRelease(t, r.p)
}

func TestConfNamesDoNotCollide(t *testing.T) {
	_, ss := confReplicas(t, 2)
	names := []string{"a", "a/q", "a/q/", "a/x", "a/size", "a%2Fq", "a/q/b", "", "/"}
	var held []*etcdsync.Permit
	for _, name := range names {
		p, err := etcdsync.NewLock(ss[0], name).TryLock(confCtx(t))
		require.NoError(t, err, "TryLock %q while the others are held", name)
		held = append(held, p)
	}
	// A waiter on "a/q" is no waiter on "a".
	ch := confGo(func() (*etcdsync.Permit, error) { return etcdsync.NewLock(ss[1], "a/q").Lock(context.Background()) })
	confAwait(t, "Waiting a/q", etcdsync.NewLock(ss[1], "a/q").Waiting, 1)
	for _, name := range names {
		if name != "a/q" {
			require.Zero(t, confInt(t, etcdsync.NewLock(ss[1], name).Waiting), "Waiting %q", name)
		}
	}
	for i, p := range held {
		confRelease(t, p)
		if names[i] == "a/q" {
			r := confRecv(t, ch, "Lock a/q")
			require.NoError(t, r.err)
			held[i] = r.p
		} else {
			held[i] = nil
		}
	}
	for _, p := range held {
		if p != nil {
			confRelease(t, p)
		}
	}

	// Semaphores: each name keeps a size and a line of its own.
	held = held[:0]
	for i, name := range names {
		m, err := etcdsync.NewSemaphore(confCtx(t), ss[0], name, i+1)
		require.NoError(t, err, "NewSemaphore %q", name)
		p, err := m.TryAcquireN(confCtx(t), i+1)
		require.NoError(t, err, "TryAcquireN(%d) %q while the others are full", i+1, name)
		held = append(held, p)
	}
	sems := make([]*etcdsync.Semaphore, len(names))
	for i, name := range names {
		var err error
		sems[i], err = etcdsync.NewSemaphore(confCtx(t), ss[1], name, i+1)
		require.NoError(t, err, "NewSemaphore %q again", name)
		require.Zero(t, confInt(t, sems[i].Available), "Available %q", name)
		require.Zero(t, confInt(t, sems[i].Waiting), "Waiting %q", name)
	}
	for _, p := range held {
		confRelease(t, p)
	}
	for i, m := range sems {
		require.Equal(t, i+1, confInt(t, m.Available), "Available %q", names[i])
	}
	for _, kind := range []string{"lock/", "sem/"} {
		resp, err := newClient(t).Get(confCtx(t), testPrefix(t)+kind, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		require.NoError(t, err)
		for _, kv := range resp.Kvs {
			require.NotContains(t, string(kv.Key), "/q/", "ticket left: %q", kv.Key)
		}
	}
}

// When the context of a waiting call ends at the moment of its grant, the
// call returns the permit or ctx.Err() and the permit passes on: never
// both, never neither.
func TestConfGrantAtCancelNeverBothNeverNeither(t *testing.T) {
	prefix := testPrefix(t)
	clis, ss := confReplicas(t, 3)
	la, lb, lc := etcdsync.NewLock(ss[0], "g"), etcdsync.NewLock(ss[1], "g"), etcdsync.NewLock(ss[2], "g")
	granted, withdrawn := 0, 0
	for range 15 {
		a, err := la.Lock(confCtx(t))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ch := confGo(func() (*etcdsync.Permit, error) { return lb.Lock(ctx) })
		confAwait(t, "Waiting", la.Waiting, 1)
		released := make(chan error, 1)
		go func() { released <- a.Release(context.Background()) }()
		cancel()
		r := confRecv(t, ch, "Lock")
		require.NoError(t, <-released)
		if r.err == nil {
			granted++
			_, err := lc.TryLock(confCtx(t))
			require.ErrorIs(t, err, etcdsync.ErrWouldBlock, "B holds it")
			confRelease(t, r.p)
		} else {
			withdrawn++
			confIsExactly(t, context.Canceled, r.err, "Lock")
			p, err := lc.TryLock(confCtx(t))
			require.NoError(t, err, "B withdrew: the lock must be free")
			confRelease(t, p)
		}
		confTickets(t, clis[0], confLockQ(prefix, "g"), 0)
	}
	t.Logf("granted %d, withdrawn %d", granted, withdrawn)
}

// ---------------------------------------------------------------------------
// D3 and Release: RPCs whose outcome the caller cannot know.

// confFaults makes one chosen RPC of a client have an unknown outcome: its
// reply is lost (it was applied, the caller hears nothing until its ctx
// ends), or its request is held back and applied only when the test says
// (after the caller gave up and cleaned up). It is armed for one RPC at a
// time.
type confFaults struct {
	mu     sync.Mutex
	mode   string // "", "lose-reply", "hold-request"
	method string // suffix of the method, e.g. "/Txn"
	held   chan func() error
}

func (f *confFaults) arm(mode, method string) {
	f.mu.Lock()
	f.mode, f.method = mode, method
	f.mu.Unlock()
}

func (f *confFaults) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	f.mu.Lock()
	mode := ""
	if f.mode != "" && strings.HasSuffix(method, f.method) {
		mode, f.mode = f.mode, ""
	}
	f.mu.Unlock()
	switch mode {
	case "lose-reply":
		if err := invoker(context.WithoutCancel(ctx), method, req, reply, cc, opts...); err != nil {
			return err
		}
		<-ctx.Done() // the tests always give these calls a deadline
		return ctx.Err()
	case "hold-request":
		f.held <- func() error { return invoker(context.Background(), method, req, reply, cc, opts...) }
		<-ctx.Done()
		return ctx.Err()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func confFaultyClient(t testing.TB) (*clientv3.Client, *confFaults) {
	t.Helper()
	f := &confFaults{held: make(chan func() error, 1)}
	cli := dialWith(t, nil, f.intercept, nil)
	t.Cleanup(func() { _ = cli.Close() })
	return cli, f
}

func confShort() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 150*time.Millisecond)
}

func TestRuleD3UnknownOutcome(t *testing.T) {
	// The ticket was written, the reply lost: the call returns exactly
	// ctx.Err() and has removed its ticket.
	t.Run("acquire-reply-lost", func(t *testing.T) {
		prefix := testPrefix(t)
		cli, f := confFaultyClient(t)
		s := newSession(t, cli)
		other := newSession(t, newClient(t))
		m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
		require.NoError(t, err)
		calls := []struct {
			name string
			q    string
			f    func(context.Context) (*etcdsync.Permit, error)
		}{
			{"Lock", confLockQ(prefix, "l"), etcdsync.NewLock(s, "l").Lock},
			{"TryLock", confLockQ(prefix, "l"), etcdsync.NewLock(s, "l").TryLock},
			{"AcquireN", confSemQ(prefix, "m"), func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 2) }},
			{"TryAcquireN", confSemQ(prefix, "m"), func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 2) }},
		}
		for _, c := range calls {
			f.arm("lose-reply", "/Txn")
			ctx, cancel := confShort()
			p, err := c.f(ctx)
			cancel()
			require.Nil(t, p, c.name)
			confIsExactly(t, context.DeadlineExceeded, err, c.name)
			confTickets(t, cli, c.q, 0)
		}
		// Nothing stands in another process's way.
		p, err := etcdsync.NewLock(other, "l").TryLock(confCtx(t))
		require.NoError(t, err)
		confRelease(t, p)
		om, err := etcdsync.NewSemaphore(confCtx(t), other, "m", 2)
		require.NoError(t, err)
		p, err = om.TryAcquireN(confCtx(t), 2)
		require.NoError(t, err)
		confRelease(t, p)
	})

	// The ticket's request reaches etcd only after the call gave up and
	// cleaned up: it must land nowhere.
	t.Run("acquire-applied-late", func(t *testing.T) {
		prefix := testPrefix(t)
		cli, f := confFaultyClient(t)
		s := newSession(t, cli)
		other := newSession(t, newClient(t))
		m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
		require.NoError(t, err)
		calls := []struct {
			name string
			q    string
			f    func(context.Context) (*etcdsync.Permit, error)
		}{
			{"Lock", confLockQ(prefix, "l"), etcdsync.NewLock(s, "l").Lock},
			{"TryLock", confLockQ(prefix, "l"), etcdsync.NewLock(s, "l").TryLock},
			{"AcquireN", confSemQ(prefix, "m"), func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 2) }},
			{"TryAcquireN", confSemQ(prefix, "m"), func(ctx context.Context) (*etcdsync.Permit, error) { return m.TryAcquireN(ctx, 1) }},
		}
		for _, c := range calls {
			f.arm("hold-request", "/Txn")
			ctx, cancel := confShort()
			p, err := c.f(ctx)
			cancel()
			require.Nil(t, p, c.name)
			confIsExactly(t, context.DeadlineExceeded, err, c.name)
			var late func() error
			select {
			case late = <-f.held:
			default:
				t.Fatalf("%s: no request was held", c.name)
			}
			require.NoError(t, late(), "%s: the late request", c.name)
			confTickets(t, cli, c.q, 0)
		}
		p, err := etcdsync.NewLock(other, "l").TryLock(confCtx(t))
		require.NoError(t, err, "a late ticket blocks the lock")
		confRelease(t, p)
		om, err := etcdsync.NewSemaphore(confCtx(t), other, "m", 2)
		require.NoError(t, err)
		p, err = om.TryAcquireN(confCtx(t), 2)
		require.NoError(t, err, "a late ticket holds permits")
		confRelease(t, p)
	})

	// The same two faults for a join behind a holder, when the process
	// already follows the line and its join is the ticket's put alone
	// (issue 22's flat join): nothing is left either way.
	t.Run("join-behind-holder", func(t *testing.T) {
		prefix := testPrefix(t)
		cli, f := confFaultyClient(t)
		s := newSession(t, cli)
		other := newSession(t, newClient(t))
		m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
		require.NoError(t, err)
		om, err := etcdsync.NewSemaphore(confCtx(t), other, "m", 2)
		require.NoError(t, err)
		heldLock, err := etcdsync.NewLock(other, "l").Lock(confCtx(t))
		require.NoError(t, err)
		heldSem, err := om.AcquireN(confCtx(t), 2)
		require.NoError(t, err)
		calls := []struct {
			name string
			q    string
			f    func(context.Context) (*etcdsync.Permit, error)
		}{
			{"Lock", confLockQ(prefix, "l"), etcdsync.NewLock(s, "l").Lock},
			{"AcquireN", confSemQ(prefix, "m"), func(ctx context.Context) (*etcdsync.Permit, error) { return m.AcquireN(ctx, 1) }},
		}
		for _, mode := range []string{"lose-reply", "hold-request"} {
			for _, c := range calls {
				// A call that waits until its ctx ends: the process's
				// view of the line then shows the holder.
				ctx, cancel := confShort()
				_, err := c.f(ctx)
				cancel()
				confIsExactly(t, context.DeadlineExceeded, err, c.name+" behind the holder")

				f.arm(mode, "/Txn")
				ctx, cancel = confShort()
				p, err := c.f(ctx)
				cancel()
				require.Nil(t, p, c.name)
				confIsExactly(t, context.DeadlineExceeded, err, mode+" "+c.name)
				if mode == "hold-request" {
					select {
					case late := <-f.held:
						require.NoError(t, late(), "%s: the late request", c.name)
					default:
						t.Fatalf("%s: no request was held", c.name)
					}
				}
				confTickets(t, cli, c.q, 1) // the holder's alone
			}
		}
		confRelease(t, heldLock)
		confRelease(t, heldSem)
		p, err := etcdsync.NewLock(other, "l").TryLock(confCtx(t))
		require.NoError(t, err, "a ticket was left in the lock's line")
		confRelease(t, p)
		p, err = om.TryAcquireN(confCtx(t), 2)
		require.NoError(t, err, "a ticket was left in the semaphore's line")
		confRelease(t, p)
	})

	// A Release whose delete was applied but whose reply was lost: exactly
	// ctx.Err(), and a later Release returns nil (this permit's own earlier
	// Release removed it); a Release after that panics.
	t.Run("release-reply-lost", func(t *testing.T) {
		prefix := testPrefix(t)
		cli, f := confFaultyClient(t)
		s := newSession(t, cli)
		l := etcdsync.NewLock(s, "l")
		p, err := l.Lock(confCtx(t))
		require.NoError(t, err)
		f.arm("lose-reply", "/Txn")
		ctx, cancel := confShort()
		err = p.Release(ctx)
		cancel()
		confIsExactly(t, context.DeadlineExceeded, err, "Release")
		confTickets(t, cli, confLockQ(prefix, "l"), 0)
		require.NoError(t, p.Release(confCtx(t)), "retry of a Release that was applied")
		require.False(t, confClosed(p.Lost()), "a released permit is not lost")
		v, panicked := confPanicValue(func() { _ = p.Release(confCtx(t)) })
		require.True(t, panicked, "Release after a successful Release")
		require.True(t, strings.HasPrefix(fmt.Sprint(v), "etcdsync: "))
	})

	// The same, but the session ends before the retry: etcd can no longer
	// tell a Release from the lease's end, and the retry says
	// ErrSessionLost.
	t.Run("release-reply-lost-then-session-ends", func(t *testing.T) {
		cli, f := confFaultyClient(t)
		s := newSession(t, cli)
		p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
		require.NoError(t, err)
		f.arm("lose-reply", "/Txn")
		ctx, cancel := confShort()
		err = p.Release(ctx)
		cancel()
		confIsExactly(t, context.DeadlineExceeded, err, "Release")
		require.NoError(t, s.Close(confCtx(t)))
		require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
	})

	// The same, but the lease ends (as by expiry) before the retry, and
	// the session has not noticed yet: the retry must not claim it was
	// its Release.
	t.Run("release-reply-lost-then-lease-ends", func(t *testing.T) {
		cli, f := confFaultyClient(t)
		s := newSession(t, cli) // default TTL: it notices the end seconds later
		p, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
		require.NoError(t, err)
		f.arm("lose-reply", "/Txn")
		ctx, cancel := confShort()
		err = p.Release(ctx)
		cancel()
		confIsExactly(t, context.DeadlineExceeded, err, "Release")
		_, err = newClient(t).Revoke(confCtx(t), s.Lease())
		require.NoError(t, err)
		require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
	})

	// A Release that never reached etcd: exactly ctx.Err(); the session
	// retries the delete in the background, and a later Release returns
	// nil.
	t.Run("release-request-lost", func(t *testing.T) {
		prefix := testPrefix(t)
		cli, f := confFaultyClient(t)
		s := newSession(t, cli)
		l := etcdsync.NewLock(s, "l")
		p, err := l.Lock(confCtx(t))
		require.NoError(t, err)
		f.arm("hold-request", "/Txn")
		ctx, cancel := confShort()
		err = p.Release(ctx)
		cancel()
		confIsExactly(t, context.DeadlineExceeded, err, "Release")
		<-f.held // dropped: never sent
		awaitTickets(t, cli, confLockQ(prefix, "l"), 0)
		require.NoError(t, p.Release(confCtx(t)))
		require.False(t, confClosed(p.Lost()), "a permit given back is not lost")
	})
}
