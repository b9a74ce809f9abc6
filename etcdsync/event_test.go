package etcdsync_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

const (
	evWaitFor = 10 * time.Second
	evTick    = 5 * time.Millisecond
)

// evRPCLog records the RPCs a client sends: unary calls (with the key of a
// Range) and new streams (watches, lease keepers).
type evRPCLog struct {
	mu     sync.Mutex
	calls  int
	ranges map[string]int // completed Range calls by key
}

func (l *evRPCLog) sent() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

func (l *evRPCLog) rangesOf(suffix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, c := range l.ranges {
		if strings.HasSuffix(k, suffix) {
			n += c
		}
	}
	return n
}

// evTracedClient dials endpoints (the shared server by default) with
// interceptors that record every RPC the client sends: the test can see
// that a call sent nothing, or that a Wait's first read has completed.
func evTracedClient(t testing.TB, endpoints ...string) (*clientv3.Client, *evRPCLog) {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = server.Endpoints()
	}
	log := &evRPCLog{ranges: map[string]int{}}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		log.mu.Lock()
		log.calls++
		log.mu.Unlock()
		err := invoker(ctx, method, req, reply, cc, opts...)
		if r, ok := req.(*etcdserverpb.RangeRequest); ok && err == nil {
			log.mu.Lock()
			log.ranges[string(r.Key)]++
			log.mu.Unlock()
		}
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		log.mu.Lock()
		log.calls++
		log.mu.Unlock()
		return streamer(ctx, desc, cc, method, opts...)
	}
	cli := dialWith(t, endpoints, unary, stream)
	t.Cleanup(func() { _ = cli.Close() })
	return cli, log
}

// evFresh removes what an earlier run of the test (-count) left under its
// prefix: events and barrier sizes outlive every session.
func evFresh(t testing.TB) {
	t.Helper()
	_, err := newClient(t).Delete(context.Background(), testPrefix(t), clientv3.WithPrefix())
	require.NoError(t, err)
}

// evProxy starts a TCP proxy to the shared server, closed when the test
// ends (after the clients that dial it, which are closed first).
func evProxy(t testing.TB) *etcdtest.Proxy {
	t.Helper()
	p, err := etcdtest.NewProxy(strings.TrimPrefix(server.Endpoints()[0], "http://"))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func evGo(ctx context.Context, e *etcdsync.Event) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- e.Wait(ctx) }()
	return ch
}

func evRecv(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(evWaitFor):
		t.Fatal("Wait did not return")
		return nil
	}
}

func evBlocked(t testing.TB, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("Wait returned %v while it should block", err)
	default:
	}
}

// D3 for Event: a Set or Clear whose request reaches etcd only after its
// caller gave up, and after another process's Clear or Set returned nil,
// changes nothing, also when that later call found the event as it asked
// (it must still write, or the late request would take).
func TestEventLateChangeIsHarmless(t *testing.T) {
	for _, c := range []struct {
		name      string
		late      func(*etcdsync.Event, context.Context) error
		later     func(*etcdsync.Event, context.Context) error
		wantSet   bool
		setBefore bool
	}{
		{"late Clear after Set", (*etcdsync.Event).Clear, (*etcdsync.Event).Set, true, true},
		{"late Set after Clear", (*etcdsync.Event).Set, (*etcdsync.Event).Clear, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			evFresh(t)
			cli, f := confFaultyClient(t)
			e := etcdsync.NewEvent(newSession(t, cli), "e")
			other := etcdsync.NewEvent(newSession(t, newClient(t)), "e")
			if c.setBefore {
				require.NoError(t, other.Set(confCtx(t)))
			} else {
				require.NoError(t, other.Clear(confCtx(t)))
			}

			f.arm("hold-request", "/Txn")
			ctx, cancel := confShort()
			err := c.late(e, ctx)
			cancel()
			confIsExactly(t, context.DeadlineExceeded, err, "change held back")
			require.NoError(t, c.later(other, confCtx(t)))
			apply := <-f.held
			require.NoError(t, apply()) // the late request reaches etcd now
			set, err := other.IsSet(confCtx(t))
			require.NoError(t, err)
			require.Equal(t, c.wantSet, set, "a late change took after a later one")
		})
	}
}

func TestEventSetClearIsSet(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	cli := newClient(t)
	s := newSession(t, cli)
	e := etcdsync.NewEvent(s, "e")
	set, err := e.IsSet(ctx)
	require.NoError(t, err)
	require.False(t, set)
	require.NoError(t, e.Clear(ctx)) // clearing a clear event changes nothing
	require.NoError(t, e.Set(ctx))
	require.NoError(t, e.Set(ctx)) // setting a set event changes nothing
	set, err = e.IsSet(ctx)
	require.NoError(t, err)
	require.True(t, set)
	// Another process sees the same state.
	other := etcdsync.NewEvent(newSession(t, newClient(t)), "e")
	set, err = other.IsSet(ctx)
	require.NoError(t, err)
	require.True(t, set)
	require.NoError(t, other.Clear(ctx))
	set, err = e.IsSet(ctx)
	require.NoError(t, err)
	require.False(t, set)
	// An event of another name is another event.
	set, err = etcdsync.NewEvent(s, "e2").IsSet(ctx)
	require.NoError(t, err)
	require.False(t, set)
	// One key, on no lease.
	require.EqualValues(t, 1, keysUnder(t, cli, testPrefix(t)))
}

func TestEventWaitFindsItSet(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	e := etcdsync.NewEvent(newSession(t, newClient(t)), "e")
	require.NoError(t, e.Set(ctx))
	require.NoError(t, e.Wait(ctx))
	require.NoError(t, e.Wait(ctx))
}

func TestEventWaitWokenBySetInOtherProcess(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	// Waiters in three processes, the setter in a fourth.
	var chs []<-chan error
	for range 3 {
		cli, log := evTracedClient(t)
		e := etcdsync.NewEvent(newSession(t, cli), "e")
		ch := evGo(ctx, e)
		require.Eventually(t, func() bool { return log.rangesOf("event/e") >= 1 }, evWaitFor, evTick)
		chs = append(chs, ch)
	}
	for _, ch := range chs {
		evBlocked(t, ch)
	}
	setter := etcdsync.NewEvent(newSession(t, newClient(t)), "e")
	require.NoError(t, setter.Set(ctx))
	for _, ch := range chs {
		require.NoError(t, evRecv(t, ch))
	}
}

// A pulse (Set, then Clear at once) committed after a Wait's first read
// wakes that Wait, in another process, every time.
func TestEventPulseNeverMissed(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	waiterCli, log := evTracedClient(t)
	waiter := etcdsync.NewEvent(newSession(t, waiterCli), "e")
	pulser := etcdsync.NewEvent(newSession(t, newClient(t)), "e")
	n := 40
	if testing.Short() {
		n = 10
	}
	for i := range n {
		before := log.rangesOf("event/e")
		ch := evGo(ctx, waiter)
		// The Wait's first read has completed: the pulse is committed
		// after it.
		require.Eventually(t, func() bool { return log.rangesOf("event/e") > before }, evWaitFor, time.Millisecond)
		require.NoError(t, pulser.Set(ctx))
		require.NoError(t, pulser.Clear(ctx))
		require.NoError(t, evRecv(t, ch), "pulse %d", i)
	}
	set, err := waiter.IsSet(ctx)
	require.NoError(t, err)
	require.False(t, set)
}

// A pulse that the waiter's watch cannot deliver (its network is cut, and
// the history is compacted before it comes back) still wakes it: the Set
// generation in the key tells that a Set happened since its first read.
func TestEventPulseSurvivesCompaction(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	proxy := evProxy(t)
	waiterCli, log := evTracedClient(t, proxy.URL())
	waiter := etcdsync.NewEvent(newSession(t, waiterCli), "e")
	admin := newClient(t)
	pulser := etcdsync.NewEvent(newSession(t, admin), "e")

	ch := evGo(ctx, waiter)
	require.Eventually(t, func() bool { return log.rangesOf("event/e") >= 1 }, evWaitFor, evTick)
	proxy.Cut()
	require.NoError(t, pulser.Set(ctx))
	require.NoError(t, pulser.Clear(ctx))
	resp, err := admin.Get(ctx, "/")
	require.NoError(t, err)
	_, err = admin.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	evBlocked(t, ch)
	proxy.Restore()
	require.NoError(t, evRecv(t, ch))
}

// With a ctx already done, Wait sends nothing and returns ctx.Err(), even
// if the event is set (it cannot know without a read).
func TestEventWaitDoneContextSendsNothing(t *testing.T) {
	evFresh(t)
	cli, log := evTracedClient(t)
	e := etcdsync.NewEvent(newSession(t, cli), "e")
	require.NoError(t, e.Set(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := log.sent()
	require.Equal(t, context.Canceled, e.Wait(ctx))
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	require.Equal(t, context.DeadlineExceeded, e.Wait(dctx))
	require.Equal(t, before, log.sent())
}

// A Wait whose ctx ends returns exactly ctx.Err() and leaves the event as
// it was, with nothing else in etcd.
func TestEventWaitContextEnds(t *testing.T) {
	evFresh(t)
	cli := newClient(t)
	e := etcdsync.NewEvent(newSession(t, cli), "e")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.Equal(t, context.DeadlineExceeded, e.Wait(ctx))

	ctx2, cancel2 := context.WithCancel(context.Background())
	ch := evGo(ctx2, e)
	time.AfterFunc(20*time.Millisecond, cancel2)
	require.Equal(t, context.Canceled, evRecv(t, ch))

	set, err := e.IsSet(context.Background())
	require.NoError(t, err)
	require.False(t, set)
	require.Zero(t, keysUnder(t, cli, testPrefix(t)))
}

func TestEventWaitSessionLost(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	t.Run("Close", func(t *testing.T) {
		cli, log := evTracedClient(t)
		s := newSession(t, cli)
		e := etcdsync.NewEvent(s, "e")
		ch := evGo(ctx, e)
		require.Eventually(t, func() bool { return log.rangesOf("event/e") >= 1 }, evWaitFor, evTick)
		require.NoError(t, s.Close(ctx))
		require.ErrorIs(t, evRecv(t, ch), etcdsync.ErrSessionLost)
		// A Wait on a closed session fails for good, before D1.
		before := log.sent()
		require.ErrorIs(t, e.Wait(ctx), etcdsync.ErrSessionLost)
		done, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, e.Wait(done), etcdsync.ErrSessionLost)
		require.Equal(t, before, log.sent())
	})
	t.Run("Revoked", func(t *testing.T) {
		cli, log := evTracedClient(t)
		// A short TTL: the keeper hears of the revocation within a third
		// of it.
		s := newSession(t, cli, etcdsync.WithTTL(time.Second))
		e := etcdsync.NewEvent(s, "e")
		ch := evGo(ctx, e)
		require.Eventually(t, func() bool { return log.rangesOf("event/e") >= 1 }, evWaitFor, evTick)
		// Another process revokes the lease.
		_, err := newClient(t).Revoke(ctx, s.Lease())
		require.NoError(t, err)
		require.ErrorIs(t, evRecv(t, ch), etcdsync.ErrSessionLost)
	})
}

// The state belongs to no session: it outlives the process that set it.
func TestEventOutlivesSetter(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	setterCli := newClient(t)
	setterS := newSession(t, setterCli)
	require.NoError(t, etcdsync.NewEvent(setterS, "e").Set(ctx))
	require.NoError(t, setterS.Close(ctx))
	_ = setterCli.Close()

	e := etcdsync.NewEvent(newSession(t, newClient(t)), "e")
	set, err := e.IsSet(ctx)
	require.NoError(t, err)
	require.True(t, set)
	require.NoError(t, e.Wait(ctx))
}

// Set, Clear and IsSet need no live session: the state belongs to none.
func TestEventSetAfterSessionEnd(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	cli := newClient(t)
	s := newSession(t, cli)
	require.NoError(t, s.Close(ctx))
	e := etcdsync.NewEvent(s, "e")
	require.NoError(t, e.Set(ctx))
	set, err := e.IsSet(ctx)
	require.NoError(t, err)
	require.True(t, set)
	require.NoError(t, e.Clear(ctx))
}

// Failures other than a context are wrapped, with the "etcdsync: " prefix;
// a done context gives exactly ctx.Err().
func TestEventErrors(t *testing.T) {
	evFresh(t)
	ctx := context.Background()
	// A name too long for a request: the server refuses it.
	e := etcdsync.NewEvent(newSession(t, newClient(t)), strings.Repeat("n", 2<<20))
	for name, f := range map[string]func() error{
		"Set":   func() error { return e.Set(ctx) },
		"Clear": func() error { return e.Clear(ctx) },
		"IsSet": func() error { _, err := e.IsSet(ctx); return err },
		"Wait":  func() error { return e.Wait(ctx) },
	} {
		err := f()
		evWrapped(t, err, name)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.Equal(t, context.Canceled, e.Set(done))
	require.Equal(t, context.Canceled, e.Clear(done))
	_, err := e.IsSet(done)
	require.Equal(t, context.Canceled, err)
}

// evWrapped checks an etcd failure as the caller sees it: a message
// that begins "etcdsync: ", with the etcd error reachable by errors.As.
func evWrapped(t testing.TB, err error, name string) {
	t.Helper()
	require.Error(t, err, name)
	require.True(t, strings.HasPrefix(err.Error(), "etcdsync: "), "%s: %.200v", name, err)
	var u interface{ Unwrap() error }
	require.True(t, errors.As(err, &u), name)
	require.Error(t, u.Unwrap(), name)
	require.NotErrorIs(t, err, context.Canceled, name)
	require.NotErrorIs(t, err, context.DeadlineExceeded, name)
}
