package etcdsync_test

// D9: loss is told before it can happen. Session.Expiry is the send time of
// the latest acknowledged keep-alive plus the granted TTL; a session that
// hears no newer acknowledgement gives up a margin before it, so a holder
// cut off from etcd sees Lost close before anyone else is granted what it
// held.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// minTTL is the smallest TTL the test server grants (its minimum is 1.5
// election timeouts, rounded up to whole seconds): it keeps these tests
// fast.
const minTTL = time.Second

func TestSessionMinTTLIsGranted(t *testing.T) {
	skipIfExternal(t, "the minimum TTL is the embedded server's configuration (an etcd with default settings grants at least 2 s)")
	cli := newClient(t)
	s := newSession(t, cli, etcdsync.WithTTL(minTTL))
	require.EqualValues(t, minTTL/time.Second, confGrantedTTL(t, cli, s.Lease()))
}

func TestSessionExpiryMovesForward(t *testing.T) {
	cli := newClient(t)
	before := time.Now()
	// Not minTTL: a loaded machine may fail to keep a 1 s lease alive,
	// and a session that gives up has no newer keep-alive to show.
	s := newSession(t, cli, etcdsync.WithTTL(shortTTL))
	ttl := time.Duration(confGrantedTTL(t, cli, s.Lease())) * time.Second

	// Expiry is a send time plus the TTL: not before the session was
	// asked for, never later than now.
	prev := s.Expiry()
	require.False(t, prev.Before(before.Add(ttl)), "Expiry %v before the grant was sent", prev)
	require.False(t, prev.After(time.Now().Add(ttl)))
	for i := range 3 {
		require.Eventually(t, func() bool { return s.Expiry().After(prev) }, confWait, time.Millisecond,
			"Expiry did not move forward (keep-alive %d)", i+1)
		next := s.Expiry()
		require.False(t, next.After(time.Now().Add(ttl)), "Expiry after a send time still to come")
		prev = next
	}
	// etcd agrees: the lease lives (its remaining TTL, whole seconds
	// rounded down, is -1 once it is gone).
	require.GreaterOrEqual(t, leaseTTL(t, cli, s.Lease()), int64(0))
	require.False(t, confClosed(s.Done()))
}

// holderTrial is one holder behind a proxy, and another replica, with a
// client of its own and no proxy, waiting for the holder's lock.
type holderTrial struct {
	proxy  *etcdtest.Proxy
	s      *etcdsync.Session
	p      *etcdsync.Permit
	lostAt chan time.Time
	next   chan grantSeen
}

// grantSeen is what the waiting replica saw when its Lock returned.
type grantSeen struct {
	p           *etcdsync.Permit
	err         error
	at          time.Time
	holderLost  bool // the holder's Lost had closed when Lock returned
	holderAlive bool // the holder's session had not ended when Lock returned
}

// startHolderTrial sets a trial up: the holder holds the lock and the other
// waits for it. It returns nil when the holder's session ended before that
// (a machine too loaded to keep a 1 s lease alive): such a trial tells
// nothing about a cut.
func startHolderTrial(t *testing.T, name string) *holderTrial {
	t.Helper()
	proxy := newProxy(t)
	s, err := etcdsync.NewSession(confCtx(t), newClient(t, proxy.URL()),
		etcdsync.WithPrefix(testPrefix(t)), etcdsync.WithTTL(minTTL))
	require.NoError(t, err)
	t.Cleanup(func() {
		proxy.Restore()
		_ = s.Close(confCtx(t))
	})
	p, err := etcdsync.NewLock(s, name).Lock(confCtx(t))
	if errors.Is(err, etcdsync.ErrSessionLost) {
		return nil
	}
	require.NoError(t, err)
	other := newSession(t, newClient(t))
	lo := etcdsync.NewLock(other, name)
	tr := &holderTrial{proxy: proxy, s: s, p: p, lostAt: make(chan time.Time, 1), next: make(chan grantSeen, 1)}
	go func() {
		<-p.Lost()
		tr.lostAt <- time.Now()
	}()
	go func() {
		q, err := lo.Lock(context.Background())
		g := grantSeen{p: q, err: err, at: time.Now(), holderLost: confClosed(p.Lost()), holderAlive: !confClosed(s.Done())}
		tr.next <- g
	}()
	require.Eventually(t, func() bool {
		if confClosed(s.Done()) {
			return true
		}
		w, err := lo.Waiting(context.Background())
		return err == nil && w == 1
	}, confWait, 5*time.Millisecond)
	if confClosed(s.Done()) {
		return nil
	}
	return tr
}

// TestSessionGivesUpBeforeOthersAreGranted: in every trial, the cut-off
// holder's Lost closes before the other replica's Lock returns, and the
// other is granted only after the holder's Expiry.
func TestSessionGivesUpBeforeOthersAreGranted(t *testing.T) {
	const trials, batch = 20, 5
	done, redone := 0, 0
	for done < trials {
		require.Less(t, redone, 2*trials, "too many trials where the holder gave up before the cut")
		var trs, valid []*holderTrial
		for i := range batch {
			if tr := startHolderTrial(t, fmt.Sprintf("l%d-%d", done+redone, i)); tr != nil {
				trs = append(trs, tr)
			} else {
				redone++
			}
		}
		for _, tr := range trs {
			// A holder that already gave up (a machine too loaded to
			// keep a 1 s lease alive) tells nothing about a cut.
			if confClosed(tr.s.Done()) {
				redone++
				continue
			}
			valid = append(valid, tr)
			tr.proxy.Cut()
		}
		for _, tr := range valid {
			var g grantSeen
			select {
			case g = <-tr.next:
			case <-time.After(confWait):
				t.Fatal("the other replica was not granted the lock")
			}
			require.NoError(t, g.err)
			lostAt := <-tr.lostAt
			t.Logf("trial %d: Lost closed %v before the other's Lock returned; Expiry %v before it",
				done+1, g.at.Sub(lostAt), g.at.Sub(tr.s.Expiry()))
			assert.True(t, g.holderLost, "trial %d: the other's Lock returned before the holder's Lost closed", done+1)
			assert.False(t, g.holderAlive, "trial %d: the holder's session still alive at the other's grant", done+1)
			assert.True(t, g.at.After(tr.s.Expiry()), "trial %d: granted before the holder's Expiry", done+1)
			assert.Greater(t, g.p.Token(), tr.p.Token())
			pctx, cancel := tr.p.Context(context.Background())
			<-pctx.Done()
			assert.ErrorIs(t, context.Cause(pctx), etcdsync.ErrSessionLost)
			cancel()
			assert.ErrorIs(t, tr.p.Release(confCtx(t)), etcdsync.ErrSessionLost)
			confRelease(t, g.p)
			done++
		}
		for _, tr := range trs {
			tr.proxy.Restore()
			require.NoError(t, tr.s.Close(confCtx(t)))
		}
	}
	t.Logf("%d trials, %d redone", done, redone)
}

// A session that gives up ends as if lost: Done closes, blocked calls
// return ErrSessionLost, every permit is lost with cause ErrSessionLost;
// and no goroutine of it outlives Close.
func TestSessionGiveUpEndsEverything(t *testing.T) {
	base := sessionGoroutines()
	proxy := newProxy(t)
	admin := newClient(t)
	// Not minTTL: a loaded machine may fail to keep a 1 s lease alive
	// while the test sets up.
	s, err := etcdsync.NewSession(confCtx(t), newClient(t, proxy.URL()),
		etcdsync.WithPrefix(testPrefix(t)), etcdsync.WithTTL(shortTTL))
	require.NoError(t, err)
	other := newSession(t, admin)
	held, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
	require.NoError(t, err)
	_, err = etcdsync.NewLock(other, "m").Lock(confCtx(t)) // kept until the other session closes
	require.NoError(t, err)
	blocked := lockAsync(etcdsync.NewLock(s, "m"), context.Background())
	waitWaiting(t, etcdsync.NewLock(other, "m"), 1)
	pctx, cancel := held.Context(context.Background())
	defer cancel()

	proxy.Cut()
	waitClosed(t, s.Done(), confWait, "Done")
	waitClosed(t, held.Lost(), confWait, "Lost")
	<-pctx.Done()
	require.ErrorIs(t, context.Cause(pctx), etcdsync.ErrSessionLost)
	require.ErrorIs(t, waitResult(t, blocked, confWait).err, etcdsync.ErrSessionLost)
	_, err = etcdsync.NewLock(s, "n").Lock(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrSessionLost)
	require.ErrorIs(t, held.Release(confCtx(t)), etcdsync.ErrSessionLost)

	proxy.Restore()
	require.NoError(t, s.Close(confCtx(t)))
	require.NoError(t, other.Close(confCtx(t)))
	require.LessOrEqual(t, sessionGoroutines(), base, "goroutines outlived Close")
	ttl, err := admin.TimeToLive(confCtx(t), s.Lease())
	require.NoError(t, err)
	require.EqualValues(t, -1, ttl.TTL)
}

// D7: a zero Session has no lease to tell the expiry of.
func TestSessionExpiryMisusePanics(t *testing.T) {
	cases := []struct {
		name, msg string
		call      func()
	}{
		{"Session.Expiry", "etcdsync: zero Session; make one with NewSession", func() { _ = new(etcdsync.Session).Expiry() }},
		{"Session.Lease", "etcdsync: zero Session; make one with NewSession", func() { _ = new(etcdsync.Session).Lease() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.PanicsWithValue(t, c.msg, c.call)
		})
	}
}

// keepAliveFaults makes a client's keep-alives go unanswered while armed,
// as a cut does, while every other RPC goes through; it counts the lease
// revokes the client sends.
type keepAliveFaults struct {
	armed   atomic.Bool
	revokes atomic.Int32
}

func keepAliveFaultyClient(t testing.TB) (*clientv3.Client, *keepAliveFaults) {
	t.Helper()
	f := &keepAliveFaults{}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/LeaseRevoke") {
			f.revokes.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if f.armed.Load() && strings.HasSuffix(method, "/LeaseKeepAlive") {
			// Unanswered: the keep-alive waits as long as its answer
			// could matter, as behind a cut.
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	cli := dialWith(t, nil, unary, stream)
	t.Cleanup(func() { _ = cli.Close() })
	return cli, f
}

// D9, sentence by sentence, with only the keep-alives going unanswered:
// the session gives up no earlier than Expiry minus the margin (a tenth of
// the TTL, at least 500 ms), ends as if lost (Done, Lost, Context with
// cause ErrSessionLost, blocked Lock, Event.Wait and Barrier.Wait return
// ErrSessionLost), leaves a permit it gave back alone, and asks etcd to
// revoke the lease, so what it held passes on at once rather than a TTL
// later.
func TestSessionGiveUpRevokesLease(t *testing.T) {
	evFresh(t) // barrier sizes outlive sessions: start from none (-count)
	base := sessionGoroutines()
	prefix := testPrefix(t)
	cli, f := keepAliveFaultyClient(t)
	admin := newClient(t)
	s, err := etcdsync.NewSession(confCtx(t), cli, etcdsync.WithPrefix(prefix), etcdsync.WithTTL(3*time.Second))
	require.NoError(t, err)
	ttl := time.Duration(confGrantedTTL(t, admin, s.Lease())) * time.Second
	margin := max(ttl/10, 500*time.Millisecond)
	other := newSession(t, admin)

	held, err := etcdsync.NewLock(s, "l").Lock(confCtx(t))
	require.NoError(t, err)
	pctx, cancel := held.Context(context.Background())
	defer cancel()
	// A permit given back by a Release that failed on its ctx: the
	// session's cleaner deletes its ticket; it is not lost at the end.
	given, err := etcdsync.NewLock(s, "g").Lock(confCtx(t))
	require.NoError(t, err)
	done, dcancel := context.WithCancel(context.Background())
	dcancel()
	confIsExactly(t, context.Canceled, given.Release(done), "Release")
	awaitTickets(t, admin, confLockQ(prefix, "g"), 0)
	gctx, gcancel := given.Context(context.Background())
	defer gcancel()

	// Calls blocked through the session.
	om, err := etcdsync.NewLock(other, "m").Lock(confCtx(t))
	require.NoError(t, err)
	blockedLock := lockAsync(etcdsync.NewLock(s, "m"), context.Background())
	waitWaiting(t, etcdsync.NewLock(other, "m"), 1)
	blockedEvent := make(chan error, 1)
	go func() { blockedEvent <- etcdsync.NewEvent(s, "e").Wait(context.Background()) }()
	b, err := etcdsync.NewBarrier(confCtx(t), s, "b", 2)
	require.NoError(t, err)
	blockedBarrier := make(chan error, 1)
	go func() {
		_, err := b.Wait(context.Background())
		blockedBarrier <- err
	}()
	ob, err := etcdsync.NewBarrier(confCtx(t), other, "b", 2)
	require.NoError(t, err)
	confAwait(t, "Barrier.Waiting", ob.Waiting, 1)
	// Another replica waits for what the session holds.
	next := lockAsync(etcdsync.NewLock(other, "l"), context.Background())
	waitWaiting(t, etcdsync.NewLock(other, "l"), 1)

	doneAt := make(chan time.Time, 1)
	go func() {
		<-s.Done()
		doneAt <- time.Now()
	}()
	f.armed.Store(true)
	var at time.Time
	select {
	case at = <-doneAt:
	case <-time.After(ttl + confWait):
		t.Fatal("the session did not give up")
	}
	// Expiry is final now: no keep-alive is answered any more.
	exp := s.Expiry()
	require.False(t, at.Before(exp.Add(-margin)), "gave up %v before Expiry, more than the margin %v", exp.Sub(at), margin)

	waitClosed(t, held.Lost(), confWait, "Lost of the held permit")
	<-pctx.Done()
	require.ErrorIs(t, context.Cause(pctx), etcdsync.ErrSessionLost)
	require.ErrorIs(t, waitResult(t, blockedLock, confWait).err, etcdsync.ErrSessionLost, "blocked Lock")
	for name, ch := range map[string]chan error{"Event.Wait": blockedEvent, "Barrier.Wait": blockedBarrier} {
		select {
		case err := <-ch:
			require.ErrorIs(t, err, etcdsync.ErrSessionLost, name)
		case <-time.After(confWait):
			t.Fatalf("blocked %s did not return", name)
		}
	}
	require.False(t, confClosed(given.Lost()), "a permit given back is not lost")
	require.NoError(t, gctx.Err())

	// The revoke: the lease ends at once, not at its expiry, and the other
	// replica is granted the lock.
	require.Eventually(t, func() bool { return f.revokes.Load() > 0 }, confWait, 5*time.Millisecond, "no revoke sent")
	require.Eventually(t, func() bool { return leaseTTL(t, admin, s.Lease()) == -1 }, confWait, 5*time.Millisecond)
	r := waitResult(t, next, confWait)
	require.NoError(t, r.err)
	require.Greater(t, r.p.Token(), held.Token())
	confAwait(t, "Barrier.Waiting", ob.Waiting, 0)

	require.ErrorIs(t, held.Release(confCtx(t)), etcdsync.ErrSessionLost)
	require.NoError(t, given.Release(confCtx(t)), "the session's cleaner removed the ticket")
	require.NoError(t, s.Close(confCtx(t)))
	require.NoError(t, s.Close(confCtx(t)))
	confRelease(t, r.p)
	confRelease(t, om)
	require.NoError(t, other.Close(confCtx(t)))
	require.LessOrEqual(t, sessionGoroutines(), base, "goroutines outlived Close")
}

// D9's last sentence: a loss from outside is told late, but it is told.
// An operator deletes the keys of the lines: every permit whose ticket went
// sees its Lost close and its Context cancelled with cause ErrSessionLost,
// while the session lives on; its Release returns ErrSessionLost. A permit
// the process released itself, or gave back by a Release that failed, is
// not lost, also when its Lost was watched before.
func TestPermitLostWhenKeysDeletedFromOutside(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	prefix := testPrefix(t)
	admin := newClient(t)
	s := newSession(t, newClient(t), etcdsync.WithTTL(5*time.Second))
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 3)
	require.NoError(t, err)
	l := etcdsync.NewLock(s, "l")
	t2 := etcdsync.NewLock(s, "t")

	lp, err := l.Lock(confCtx(t))
	require.NoError(t, err)
	tp, err := t2.TryLock(confCtx(t))
	require.NoError(t, err)
	mp, err := m.AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	released, err := m.TryAcquire(confCtx(t))
	require.NoError(t, err)
	given, err := etcdsync.NewLock(s, "g").Lock(confCtx(t))
	require.NoError(t, err)
	unwatched, err := etcdsync.NewLock(s, "u").Lock(confCtx(t)) // Lost asked for only after the delete
	require.NoError(t, err)
	// Permits whose Lost is watched before anything happens (the usual
	// pattern: select on Lost while working), and one watched only after.
	ctxs := map[string]context.Context{}
	for name, p := range map[string]*etcdsync.Permit{"Lock": lp, "TryLock": tp, "AcquireN": mp} {
		ctx, cancel := p.Context(context.Background())
		t.Cleanup(cancel)
		ctxs[name] = ctx
	}
	_ = released.Lost()
	confRelease(t, released)
	_ = given.Lost()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	confIsExactly(t, context.Canceled, given.Release(done), "Release")
	awaitTickets(t, admin, confLockQ(prefix, "g"), 0)

	_, err = admin.Delete(confCtx(t), prefix+"lock/", clientv3.WithPrefix())
	require.NoError(t, err)
	_, err = admin.Delete(confCtx(t), confSemQ(prefix, "m"), clientv3.WithPrefix())
	require.NoError(t, err)
	for name, ctx := range ctxs {
		waitClosed(t, ctx.Done(), confWait, "Context of the "+name+" permit")
		require.ErrorIs(t, context.Cause(ctx), etcdsync.ErrSessionLost, name)
	}
	waitClosed(t, unwatched.Lost(), confWait, "Lost asked for after the delete")
	for _, p := range []*etcdsync.Permit{lp, tp, mp, unwatched} {
		require.True(t, confClosed(p.Lost()))
		// Known without asking etcd: also on a done ctx (D8).
		require.ErrorIs(t, p.Release(done), etcdsync.ErrSessionLost)
		require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
	}
	require.False(t, confClosed(released.Lost()), "a permit released by its holder is not lost")
	require.False(t, confClosed(given.Lost()), "a permit given back is not lost")
	require.NoError(t, given.Release(confCtx(t)))
	require.False(t, confClosed(s.Done()), "the session lives on")
}
