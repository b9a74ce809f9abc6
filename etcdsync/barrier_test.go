package etcdsync_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync"
	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// barParty is one process at a barrier: a client, a session and the Barrier
// value made through them.
type barParty struct {
	cli *clientv3.Client
	s   *etcdsync.Session
	b   *etcdsync.Barrier
	log *evRPCLog
}

func newBarParty(t testing.TB, name string, parties int, opts ...etcdsync.Option) *barParty {
	t.Helper()
	cli, log := evTracedClient(t)
	return barPartyOn(t, cli, log, name, parties, opts...)
}

func barPartyOn(t testing.TB, cli *clientv3.Client, log *evRPCLog, name string, parties int, opts ...etcdsync.Option) *barParty {
	t.Helper()
	s := newSession(t, cli, opts...)
	b, err := etcdsync.NewBarrier(context.Background(), s, name, parties)
	require.NoError(t, err)
	return &barParty{cli: cli, s: s, b: b, log: log}
}

type barResult struct {
	index int
	err   error
}

func barGo(ctx context.Context, b *etcdsync.Barrier) <-chan barResult {
	ch := make(chan barResult, 1)
	go func() {
		i, err := b.Wait(ctx)
		ch <- barResult{i, err}
	}()
	return ch
}

func barRecv(t testing.TB, ch <-chan barResult) barResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(evWaitFor):
		t.Fatal("Wait did not return")
		return barResult{}
	}
}

func barWaiting(t testing.TB, b *etcdsync.Barrier, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		got, err := b.Waiting(context.Background())
		return err == nil && got == n
	}, evWaitFor, evTick, "waiting %d", n)
}

// barArrive starts a Wait and returns once it is counted in the round: it is
// the n-th of the round to barArrive.
func barArrive(t testing.TB, p *barParty, n int) <-chan barResult {
	t.Helper()
	ch := barGo(context.Background(), p.b)
	barWaiting(t, p.b, n)
	return ch
}

func barMarkers(t testing.TB, cli *clientv3.Client, name string) int64 {
	t.Helper()
	return keysUnder(t, cli, testPrefix(t)+"barrier/"+name+"/p/")
}

func TestBarrierMisusePanics(t *testing.T) {
	evFresh(t)
	s := newSession(t, newClient(t))
	ctx := context.Background()
	for name, f := range map[string]func(){
		"NewBarrier nil Session": func() { _, _ = etcdsync.NewBarrier(ctx, nil, "b", 2) },
		"NewBarrier 0 parties":   func() { _, _ = etcdsync.NewBarrier(ctx, s, "b", 0) },
		"NewBarrier -1 parties":  func() { _, _ = etcdsync.NewBarrier(ctx, s, "b", -1) },
		"NewEvent nil Session":   func() { etcdsync.NewEvent(nil, "e") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "no panic")
				msg, ok := r.(string)
				require.True(t, ok, "panic value %v", r)
				require.True(t, strings.HasPrefix(msg, "etcdsync: "), msg)
			}()
			f()
		})
	}
	// Misuse is checked before anything else: a done ctx does not hide it.
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.Panics(t, func() { _, _ = etcdsync.NewBarrier(done, s, "b", 0) })
	require.Zero(t, keysUnder(t, newClient(t), testPrefix(t)+"barrier/"))
}

func TestBarrierSizeMismatch(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	a := newBarParty(t, "b", 3)
	require.Equal(t, 3, a.b.Parties())
	s2 := newSession(t, newClient(t))
	_, err := etcdsync.NewBarrier(ctx, s2, "b", 4)
	require.ErrorIs(t, err, etcdsync.ErrSizeMismatch)
	b2, err := etcdsync.NewBarrier(ctx, s2, "b", 3)
	require.NoError(t, err)
	require.Equal(t, 3, b2.Parties())
	// Another name is another barrier.
	_, err = etcdsync.NewBarrier(ctx, s2, "b/x", 4)
	require.NoError(t, err)
	// The size outlives every session.
	require.NoError(t, a.s.Close(ctx))
	require.NoError(t, s2.Close(ctx))
	_, err = etcdsync.NewBarrier(ctx, newSession(t, newClient(t)), "b", 2)
	require.ErrorIs(t, err, etcdsync.ErrSizeMismatch)
	// A done ctx or a closed session sends nothing.
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = etcdsync.NewBarrier(done, newSession(t, newClient(t)), "c", 2)
	require.Equal(t, context.Canceled, err)
	_, err = etcdsync.NewBarrier(ctx, a.s, "c", 2)
	require.ErrorIs(t, err, etcdsync.ErrSessionLost)
}

// Each released barParty gets a distinct index by etcd's commit order of
// the arrivals; the round is cyclic; the barrier leaves no marker behind.
func TestBarrierTripOrderAndCycles(t *testing.T) {
	evFresh(t)
	const n = 3
	ps := make([]*barParty, n)
	for i := range ps {
		ps[i] = newBarParty(t, "b", n)
	}
	for round := range 3 {
		// A different process arrives first in each round.
		order := []int{round % n, (round + 1) % n, (round + 2) % n}
		chs := make([]<-chan barResult, n)
		for k, who := range order[:n-1] {
			chs[who] = barArrive(t, ps[who], k+1)
		}
		last := order[n-1]
		i, err := ps[last].b.Wait(context.Background())
		require.NoError(t, err)
		require.Equal(t, n-1, i, "the last to barArrive gets parties-1")
		for k, who := range order[:n-1] {
			r := barRecv(t, chs[who])
			require.NoError(t, r.err)
			require.Equal(t, k, r.index, "round %d, arrival %d", round, k)
		}
		barWaiting(t, ps[0].b, 0)
	}
	broken, err := ps[0].b.Broken(context.Background())
	require.NoError(t, err)
	require.False(t, broken)
	require.Eventually(t, func() bool { return barMarkers(t, ps[0].cli, "b") == 0 }, evWaitFor, evTick)
}

func TestBarrierOneParty(t *testing.T) {
	evFresh(t)
	p := newBarParty(t, "b", 1)
	for range 3 {
		i, err := p.b.Wait(context.Background())
		require.NoError(t, err)
		require.Zero(t, i)
	}
	require.Zero(t, barMarkers(t, p.cli, "b"))
}

// A waiter whose ctx ends before its round trips withdraws: exactly
// ctx.Err(), index -1, not counted any more, the barrier not broken.
func TestBarrierWithdraw(t *testing.T) {
	evFresh(t)
	a, b, c := newBarParty(t, "b", 3), newBarParty(t, "b", 3), newBarParty(t, "b", 3)
	ctx, cancel := context.WithCancel(context.Background())
	chA := barGo(ctx, a.b)
	barWaiting(t, a.b, 1)
	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer dcancel()
	chB := barGo(dctx, b.b)
	r := barRecv(t, chB)
	require.Equal(t, -1, r.index)
	require.True(t, r.err == context.DeadlineExceeded, "%v", r.err)
	barWaiting(t, a.b, 1)
	cancel()
	r = barRecv(t, chA)
	require.Equal(t, -1, r.index)
	require.True(t, r.err == context.Canceled, "%v", r.err)
	barWaiting(t, c.b, 0)
	broken, err := c.b.Broken(context.Background())
	require.NoError(t, err)
	require.False(t, broken)
	require.Zero(t, barMarkers(t, c.cli, "b"))

	// The withdrawn parties leave no gap and no duplicate.
	chA = barArrive(t, a, 1)
	chB = barArrive(t, b, 2)
	i, err := c.b.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, i)
	require.Equal(t, 0, barRecv(t, chA).index)
	require.Equal(t, 1, barRecv(t, chB).index)
}

// D1: with a ctx already done, Wait sends nothing. D8: a value that aborted
// the barrier, or saw it broken in the last state it read, returns
// ErrBrokenBarrier first, also without asking etcd.
func TestBarrierDoneContext(t *testing.T) {
	evFresh(t)
	a, b := newBarParty(t, "b", 2), newBarParty(t, "b", 2)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	past, pcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer pcancel()

	before := a.log.sent()
	i, err := a.b.Wait(done)
	require.Equal(t, -1, i)
	require.True(t, err == context.Canceled, "%v", err)
	i, err = a.b.Wait(past)
	require.Equal(t, -1, i)
	require.True(t, err == context.DeadlineExceeded, "%v", err)
	require.Equal(t, before, a.log.sent(), "Wait with a done ctx sent an RPC")

	require.NoError(t, a.b.Abort(context.Background()))
	before = a.log.sent()
	i, err = a.b.Wait(done)
	require.Equal(t, -1, i)
	require.ErrorIs(t, err, ctxsync.ErrBrokenBarrier)
	require.Equal(t, before, a.log.sent())

	// b has not read the state since: it does not know.
	before = b.log.sent()
	_, err = b.b.Wait(done)
	require.True(t, err == context.Canceled, "%v", err)
	require.Equal(t, before, b.log.sent(), "a Wait with a done ctx sent a request")
	broken, err := b.b.Broken(context.Background())
	require.NoError(t, err)
	require.True(t, broken)
	before = b.log.sent()
	_, err = b.b.Wait(done)
	require.ErrorIs(t, err, ctxsync.ErrBrokenBarrier)
	require.Equal(t, before, b.log.sent())

	// After a Reset, a value that reads the state again waits again.
	require.NoError(t, b.b.Reset(context.Background()))
	_, err = b.b.Wait(done)
	require.True(t, err == context.Canceled, "%v", err)
	ch := barArrive(t, a, 1)
	i, err = b.b.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, i)
	require.Equal(t, barResult{0, nil}, barRecv(t, ch))

	// A closed session fails for good, before D1.
	require.NoError(t, a.s.Close(context.Background()))
	before = a.log.sent()
	_, err = a.b.Wait(done)
	require.ErrorIs(t, err, etcdsync.ErrSessionLost)
	require.Equal(t, before, a.log.sent())
}

// Abort and Reset by one process are seen by waiters in others.
func TestBarrierAbortResetAcrossProcesses(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	a, b, c := newBarParty(t, "b", 3), newBarParty(t, "b", 3), newBarParty(t, "b", 3)
	chA := barArrive(t, a, 1)
	chB := barArrive(t, b, 2)
	require.NoError(t, c.b.Abort(ctx))
	for _, ch := range []<-chan barResult{chA, chB} {
		r := barRecv(t, ch)
		require.Equal(t, -1, r.index)
		require.ErrorIs(t, r.err, ctxsync.ErrBrokenBarrier)
	}
	barWaiting(t, c.b, 0)
	for _, p := range []*barParty{a, b, c} {
		broken, err := p.b.Broken(ctx)
		require.NoError(t, err)
		require.True(t, broken)
		i, err := p.b.Wait(ctx)
		require.Equal(t, -1, i)
		require.ErrorIs(t, err, ctxsync.ErrBrokenBarrier)
	}
	// Abort breaks it until Reset, by any process.
	require.NoError(t, a.b.Reset(ctx))
	broken, err := c.b.Broken(ctx)
	require.NoError(t, err)
	require.False(t, broken)

	// Waiters at a Reset get ErrBrokenBarrier; the barrier is not broken.
	chA = barArrive(t, a, 1)
	chB = barArrive(t, b, 2)
	require.NoError(t, c.b.Reset(ctx))
	for _, ch := range []<-chan barResult{chA, chB} {
		r := barRecv(t, ch)
		require.Equal(t, -1, r.index)
		require.ErrorIs(t, r.err, ctxsync.ErrBrokenBarrier)
	}
	broken, err = a.b.Broken(ctx)
	require.NoError(t, err)
	require.False(t, broken)

	// And a full round trips afterwards.
	chA = barArrive(t, a, 1)
	chB = barArrive(t, b, 2)
	i, err := c.b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, i)
	require.Equal(t, barResult{0, nil}, barRecv(t, chA))
	require.Equal(t, barResult{1, nil}, barRecv(t, chB))
	require.Eventually(t, func() bool { return barMarkers(t, a.cli, "b") == 0 }, evWaitFor, evTick)
}

// A tripped round is final: a waiter that has not heard of its trip yet
// (its network is cut) still gets its index after a Reset and an Abort,
// and a barParty that arrives while the round is leaving waits for the next.
// Its watch comes back compacted, so it reads its outcome afresh.
func TestBarrierTrippedRoundIsFinal(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	proxy := evProxy(t)
	cliA, logA := evTracedClient(t, proxy.URL())
	a := barPartyOn(t, cliA, logA, "b", 2)
	b, c, d := newBarParty(t, "b", 2), newBarParty(t, "b", 2), newBarParty(t, "b", 2)

	chA := barArrive(t, a, 1)
	proxy.Cut()
	i, err := b.b.Wait(ctx) // trips the round with a
	require.NoError(t, err)
	require.Equal(t, 1, i)
	chC := barArrive(t, c, 1) // the next round
	barBlocked(t, chC)
	chD := barGo(ctx, d.b)
	require.Equal(t, barResult{0, nil}, barRecv(t, chC))
	require.Equal(t, barResult{1, nil}, barRecv(t, chD))

	require.NoError(t, b.b.Abort(ctx))
	require.NoError(t, b.b.Reset(ctx))
	resp, err := b.cli.Get(ctx, "/")
	require.NoError(t, err)
	_, err = b.cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	barBlocked(t, chA)
	proxy.Restore()
	require.Equal(t, barResult{0, nil}, barRecv(t, chA))
}

func barBlocked(t testing.TB, ch <-chan barResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Wait returned %+v while it should block", r)
	default:
	}
}

// A barParty whose lease is revoked while it waits is withdrawn: the others
// trip when a replacement arrives, with indexes 0..parties-1.
func TestBarrierLeaseRevoked(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	a, b, c, d := newBarParty(t, "b", 3), newBarParty(t, "b", 3), newBarParty(t, "b", 3), newBarParty(t, "b", 3)
	chA := barArrive(t, a, 1)
	chB := barArrive(t, b, 2)
	_, err := d.cli.Revoke(ctx, b.s.Lease()) // from another process
	require.NoError(t, err)
	r := barRecv(t, chB)
	require.Equal(t, -1, r.index)
	require.ErrorIs(t, r.err, etcdsync.ErrSessionLost)
	barWaiting(t, a.b, 1)
	barBlocked(t, chA)
	chC := barArrive(t, c, 2)
	i, err := d.b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, i)
	require.Equal(t, barResult{0, nil}, barRecv(t, chA))
	require.Equal(t, barResult{1, nil}, barRecv(t, chC))
}

// A barParty whose session is closed while it waits gets ErrSessionLost and
// is withdrawn.
func TestBarrierSessionClosed(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	a, b, c := newBarParty(t, "b", 2), newBarParty(t, "b", 2), newBarParty(t, "b", 2)
	chA := barArrive(t, a, 1)
	require.NoError(t, a.s.Close(ctx))
	r := barRecv(t, chA)
	require.Equal(t, -1, r.index)
	require.ErrorIs(t, r.err, etcdsync.ErrSessionLost)
	barWaiting(t, b.b, 0)
	chB := barArrive(t, b, 1)
	i, err := c.b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, i)
	require.Equal(t, barResult{0, nil}, barRecv(t, chB))
}

// Many rounds across 4 processes, each of them withdrawing now and then
// (with a ctx done at once, ending in the middle of its arrival, or while
// it waits): every trip releases exactly the 4 live parties, with indexes
// {0, 1, 2, 3}, and nothing is counted twice.
func TestBarrierRoundsAcrossReplicas(t *testing.T) {
	evFresh(t)
	const replicas = 4
	rounds := 25
	if testing.Short() {
		rounds = 8
	}
	ps := make([]*barParty, replicas)
	for i := range ps {
		ps[i] = newBarParty(t, "b", replicas)
	}
	got := make([][]int, replicas)
	withdrawals := make([]int, replicas)
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for r := range replicas {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(r)))
			for len(got[r]) < rounds && time.Now().Before(deadline) {
				timeout := waitForTimeout(rng)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				i, err := ps[r].b.Wait(ctx)
				cancel()
				if err != nil {
					if !assert.True(t, err == context.DeadlineExceeded, "replica %d: %v", r, err) ||
						!assert.Equal(t, -1, i) {
						return
					}
					withdrawals[r]++
					continue
				}
				got[r] = append(got[r], i)
			}
		})
	}
	wg.Wait()
	for r := range replicas {
		require.Len(t, got[r], rounds, "replica %d", r)
	}
	for k := range rounds {
		idx := make([]int, replicas)
		for r := range replicas {
			idx[r] = got[r][k]
		}
		slices.Sort(idx)
		require.Equal(t, []int{0, 1, 2, 3}, idx, "trip %d", k)
	}
	t.Logf("withdrawals per replica: %v", withdrawals)
	barWaiting(t, ps[0].b, 0)
	require.Eventually(t, func() bool { return barMarkers(t, ps[0].cli, "b") == 0 }, evWaitFor, evTick)
	broken, err := ps[0].b.Broken(context.Background())
	require.NoError(t, err)
	require.False(t, broken)
}

// More processes than parties, each withdrawing now and then, for a while;
// then every Wait still blocked is cancelled. Each trip released exactly
// parties Waits, one with each index: every index was handed out the same
// number of times, and none outside 0..parties-1.
func TestBarrierMoreReplicasThanParties(t *testing.T) {
	evFresh(t)
	const replicas, parties = 5, 3
	ps := make([]*barParty, replicas)
	for i := range ps {
		ps[i] = newBarParty(t, "b", parties)
	}
	stop, cancelAll := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancelAll)
	defer cancelAll()
	counts := make([][parties]int, replicas)
	var wg sync.WaitGroup
	for r := range replicas {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(r)))
			for stop.Err() == nil {
				timeout := waitForTimeout(rng)
				ctx, cancel := context.WithTimeout(stop, timeout)
				i, err := ps[r].b.Wait(ctx)
				cancel()
				if err != nil {
					if !assert.True(t, err == context.DeadlineExceeded || err == context.Canceled, "replica %d: %v", r, err) ||
						!assert.Equal(t, -1, i) {
						return
					}
					continue
				}
				if !assert.True(t, i >= 0 && i < parties, "index %d", i) {
					return
				}
				counts[r][i]++
			}
		})
	}
	wg.Wait()
	var total [parties]int
	for r := range replicas {
		for i := range parties {
			total[i] += counts[r][i]
		}
	}
	t.Logf("trips: %d", total[0])
	require.Positive(t, total[0])
	for i := range parties {
		require.Equal(t, total[0], total[i], "index %d handed out %d times, index 0 %d times", i, total[i], total[0])
	}
	barWaiting(t, ps[0].b, 0)
	require.Eventually(t, func() bool { return barMarkers(t, ps[0].cli, "b") == 0 }, evWaitFor, evTick)
}

// waitForTimeout picks a Wait's timeout: now and then done at once, ending
// in the middle of the arrival, or while it waits; mostly long.
func waitForTimeout(rng *rand.Rand) time.Duration {
	switch rng.IntN(6) {
	case 0:
		return 0 // done at once: D1
	case 1:
		return time.Duration(rng.IntN(3000)) * time.Microsecond // during the arrival
	case 2:
		return time.Duration(5+rng.IntN(30)) * time.Millisecond // while waiting
	}
	return evWaitFor
}

// A replica cut off from etcd for longer than its TTL while it waits gets
// ErrSessionLost; the others go on once a replacement arrives.
func TestBarrierNetworkCut(t *testing.T) {
	evFresh(t)
	if testing.Short() {
		t.Skip("waits for a lease to expire")
	}
	ctx := context.Background()
	proxy := evProxy(t)
	cliA, logA := evTracedClient(t, proxy.URL())
	a := barPartyOn(t, cliA, logA, "b", 3, etcdsync.WithTTL(time.Second))
	b, c, d := newBarParty(t, "b", 3), newBarParty(t, "b", 3), newBarParty(t, "b", 3)
	chA := barArrive(t, a, 1)
	chB := barArrive(t, b, 2)
	proxy.Cut()
	r := barRecv(t, chA)
	require.Equal(t, -1, r.index)
	require.ErrorIs(t, r.err, etcdsync.ErrSessionLost)
	barWaiting(t, b.b, 1) // the lease expired in etcd
	barBlocked(t, chB)
	chC := barArrive(t, c, 2)
	i, err := d.b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, i)
	require.Equal(t, barResult{0, nil}, barRecv(t, chB))
	require.Equal(t, barResult{1, nil}, barRecv(t, chC))
	proxy.Restore()
	_, err = a.b.Wait(ctx)
	require.ErrorIs(t, err, etcdsync.ErrSessionLost)
}

// Failures other than a context are wrapped, with the "etcdsync: " prefix.
func TestBarrierErrors(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	s := newSession(t, newClient(t))
	_, err := etcdsync.NewBarrier(ctx, s, strings.Repeat("n", 2<<20), 2)
	evWrapped(t, err, "NewBarrier")
	require.False(t, errors.Is(err, etcdsync.ErrSizeMismatch))

	b, err := etcdsync.NewBarrier(ctx, s, "b", 2)
	require.NoError(t, err)
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.Waiting(done)
	require.Equal(t, context.Canceled, err)
	_, err = b.Broken(done)
	require.Equal(t, context.Canceled, err)
	require.Equal(t, context.Canceled, b.Reset(done))
	require.Equal(t, context.Canceled, b.Abort(done))
	broken, err := b.Broken(ctx)
	require.NoError(t, err)
	require.False(t, broken)
}

// Across a leader failover in a cluster of three, waiters at a Barrier and
// an Event are released as they should be: their watches are
// re-established from a fresh read, and no pulse or arrival is lost.
func TestBarrierAndEventLeaderFailover(t *testing.T) {
	skipIfExternal(t, "it stops the leader of an embedded cluster of three, not the external server")
	if testing.Short() {
		t.Skip("starts a cluster of three")
	}
	evFresh(t)
	cluster, err := etcdtest.StartCluster(3)
	require.NoError(t, err)
	t.Cleanup(cluster.Close) // after the sessions and clients below
	var leader *etcdtest.Member
	require.Eventually(t, func() bool { leader = cluster.Leader(); return leader != nil }, evWaitFor, evTick)
	// The clients talk to the followers: they lose their leader, not their
	// connection (and the leader stops at once, with no streams of
	// clients to drain).
	var eps []string
	for _, m := range cluster.Members {
		if m != leader {
			eps = append(eps, m.ClientURL())
		}
	}
	ps := make([]*barParty, 3)
	for i := range ps {
		cli, log := evTracedClient(t, eps...)
		ps[i] = barPartyOn(t, cli, log, "b", 3, etcdsync.WithTTL(10*time.Second))
	}
	chA := barArrive(t, ps[0], 1)
	chB := barArrive(t, ps[1], 2)
	waiter := etcdsync.NewEvent(ps[2].s, "e")
	ch := evGo(context.Background(), waiter)
	require.Eventually(t, func() bool { return ps[2].log.rangesOf("event/e") >= 1 }, evWaitFor, evTick)

	leader.Stop()
	require.Eventually(t, func() bool { return cluster.Leader() != nil }, evWaitFor, evTick)

	pulser := etcdsync.NewEvent(newSession(t, newClient(t, eps...), etcdsync.WithTTL(10*time.Second)), "e")
	retry := func(f func(ctx context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := f(ctx)
			cancel()
			if err == nil {
				return
			}
			require.NotErrorIs(t, err, etcdsync.ErrSessionLost)
			require.True(t, time.Now().Before(deadline), "still failing: %v", err)
		}
	}
	retry(pulser.Set)
	retry(pulser.Clear)
	require.NoError(t, evRecv(t, ch))

	var index int
	retry(func(ctx context.Context) error {
		var err error
		index, err = ps[2].b.Wait(ctx)
		return err
	})
	require.Equal(t, 2, index)
	require.Equal(t, barResult{0, nil}, barRecv(t, chA))
	require.Equal(t, barResult{1, nil}, barRecv(t, chB))
}
