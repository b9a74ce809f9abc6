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
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
