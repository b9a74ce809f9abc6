package etcdsync_test

// The calls of one process share one etcd watch per object (issue 22):
// the watches a client opens, the reads it makes and the events the server
// sends it are counted at the gRPC layer.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

// watchTrace counts what a client sends and receives on its watch streams,
// and its Range calls.
type watchTrace struct {
	mu      sync.Mutex
	creates int // watches opened
	closed  int // watch streams ended (the client closes its stream when it has no watch left)
	events  int // events the server sent
	ranges  int // Range RPCs
	counts  int // counts of a range inside a Txn (a join's count of the line)
}

func (w *watchTrace) get() watchTrace {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchTrace{creates: w.creates, closed: w.closed, events: w.events, ranges: w.ranges, counts: w.counts}
}

type watchTracedStream struct {
	grpc.ClientStream
	tr *watchTrace
}

func (s watchTracedStream) SendMsg(m any) error {
	if r, ok := m.(*etcdserverpb.WatchRequest); ok {
		s.tr.mu.Lock()
		if r.GetCreateRequest() != nil {
			s.tr.creates++
		}
		s.tr.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func (s watchTracedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if r, ok := m.(*etcdserverpb.WatchResponse); ok {
		s.tr.mu.Lock()
		if err == nil {
			s.tr.events += len(r.Events)
		} else {
			s.tr.closed++
		}
		s.tr.mu.Unlock()
	}
	return err
}

// watchTracedClient dials the shared server with a watchTrace; the caller
// closes the client.
func watchTracedClient(t testing.TB) (*clientv3.Client, *watchTrace) {
	t.Helper()
	tr := &watchTrace{}
	return watchTracedClientInto(t, tr), tr
}

// watchTracedClientInto is watchTracedClient counting into tr, which
// several clients may share.
func watchTracedClientInto(t testing.TB, tr *watchTrace) *clientv3.Client {
	t.Helper()
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if _, ok := req.(*etcdserverpb.RangeRequest); ok && err == nil {
			tr.mu.Lock()
			tr.ranges++ // completed: the caller has its answer
			tr.mu.Unlock()
		}
		if txn, ok := req.(*etcdserverpb.TxnRequest); ok {
			for _, op := range txn.Success {
				if r := op.GetRequestRange(); r != nil && r.CountOnly {
					tr.mu.Lock()
					tr.counts++
					tr.mu.Unlock()
				}
			}
		}
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return watchTracedStream{cs, tr}, nil
	}
	cli := dialWith(t, nil, unary, stream)
	return cli
}

// Many waiters of one process on one Lock: one watch, one read of the
// line, and a number of events linear in the number of calls (each ticket
// is one put and one delete), where a watch per call made it quadratic.
func TestSharedWatchOneWatchPerLine(t *testing.T) {
	const waiters = 20
	cli, tr := watchTracedClient(t)
	t.Cleanup(func() { _ = cli.Close() })
	l := etcdsync.NewLock(newSession(t, cli), "l")
	other := etcdsync.NewLock(newSession(t, newClient(t)), "l")
	held, err := other.Lock(confCtx(t))
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Go(func() {
			p, err := l.Lock(context.Background())
			if err == nil {
				err = p.Release(context.Background())
			}
			errs <- err
		})
	}
	confAwait(t, "Waiting", other.Waiting, waiters)
	// The watch's first read may still be on its way.
	require.Eventually(t, func() bool { return tr.get().ranges >= 1 }, confWait, time.Millisecond)
	before := tr.get()
	require.Equal(t, 1, before.creates, "watches opened for %d waiters", waiters)
	require.Equal(t, 1, before.ranges, "reads of the line for %d waiters", waiters)
	confRelease(t, held)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	after := tr.get()
	require.Equal(t, 1, after.creates)
	require.Equal(t, 1, after.ranges)
	require.LessOrEqual(t, after.events, 3*waiters)
	// Unused, the watch is dropped (it was the client's only one, so the
	// client ends its watch stream).
	require.Eventually(t, func() bool { return tr.get().closed >= 1 }, confWait, 10*time.Millisecond)
}

// A process that already sees others in the line joins it with the put
// alone: etcd counts a range by visiting every key in it, so a count in
// the join made it cost more the longer the line. The call is then granted
// from the view, in line order, also when the tickets its view showed are
// gone by the time its own lands.
func TestSharedWatchJoinBehindKnownLineDoesNotCount(t *testing.T) {
	const waiters = 10
	cli, tr := watchTracedClient(t)
	t.Cleanup(func() { _ = cli.Close() })
	l := etcdsync.NewLock(newSession(t, cli), "l")
	other := etcdsync.NewLock(newSession(t, newClient(t)), "l")
	held, err := other.Lock(confCtx(t))
	require.NoError(t, err)
	first := confGo(func() (*etcdsync.Permit, error) { return l.Lock(context.Background()) })
	confAwait(t, "Waiting", other.Waiting, 1)
	require.Eventually(t, func() bool { return tr.get().ranges >= 1 }, confWait, time.Millisecond)
	// The process's view now shows the line: the first waiter, at least.
	counted := tr.get().counts
	require.LessOrEqual(t, counted, 1, "the first join may count: the view was not read yet")
	var rest []<-chan confResult
	for i := range waiters {
		rest = append(rest, confGo(func() (*etcdsync.Permit, error) { return l.Lock(context.Background()) }))
		confAwait(t, "Waiting", other.Waiting, i+2) // joined in this order
	}
	require.Equal(t, counted, tr.get().counts, "joins behind a line the process sees")

	// Granted one at a time, in line order.
	confRelease(t, held)
	p := confRecv(t, first, "first waiter").p
	for i, ch := range rest {
		confNotYet(t, ch, "a waiter behind a holder")
		confRelease(t, p)
		p = confRecv(t, ch, fmt.Sprintf("waiter %d", i)).p
	}

	confRelease(t, p)

	// A join whose view shows a permit of the process (granted from the
	// view, so the view shows it) is granted from the view as soon as the
	// view shows the new ticket.
	s := newSession(t, cli)
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
	require.NoError(t, err)
	om, err := etcdsync.NewSemaphore(confCtx(t), newSession(t, newClient(t)), "m", 2)
	require.NoError(t, err)
	full, err := om.AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	waiter := confGo(func() (*etcdsync.Permit, error) { return m.Acquire(context.Background()) })
	confAwait(t, "Waiting", om.Waiting, 1)
	confRelease(t, full)
	a := confRecv(t, waiter, "semaphore waiter").p
	counted = tr.get().counts
	b, err := m.Acquire(confCtx(t))
	require.NoError(t, err)
	require.Equal(t, counted, tr.get().counts, "a join behind the process's own permit")
	// Released, and joined again at once: the view may still show a, gone
	// by the time the new ticket lands; either way it is granted.
	confRelease(t, a)
	c, err := m.Acquire(confCtx(t))
	require.NoError(t, err)
	confRelease(t, b)
	confRelease(t, c)
}

// The Waits of one process on an Event, or on a Barrier, share one watch.
func TestSharedWatchEventAndBarrier(t *testing.T) {
	evFresh(t)
	const waiters = 8
	cli, tr := watchTracedClient(t)
	t.Cleanup(func() { _ = cli.Close() })
	s := newSession(t, cli)
	e := etcdsync.NewEvent(s, "e")
	var chs []<-chan error
	for range waiters {
		chs = append(chs, evGo(context.Background(), e))
	}
	require.Eventually(t, func() bool { return tr.get().ranges >= waiters }, confWait, time.Millisecond)
	require.NoError(t, etcdsync.NewEvent(newSession(t, newClient(t)), "e").Set(confCtx(t)))
	for _, ch := range chs {
		require.NoError(t, evRecv(t, ch))
	}
	require.Equal(t, 1, tr.get().creates, "watches opened for %d Waits on an Event: %+v", waiters, tr.get())

	b, err := etcdsync.NewBarrier(confCtx(t), s, "b", waiters+1)
	require.NoError(t, err)
	var bchs []<-chan barResult
	for range waiters {
		bchs = append(bchs, barGo(context.Background(), b))
	}
	barWaiting(t, b, waiters)
	last, err := b.Wait(confCtx(t))
	require.NoError(t, err)
	require.Equal(t, waiters, last)
	seen := map[int]bool{last: true}
	for _, ch := range bchs {
		r := barRecv(t, ch)
		require.NoError(t, r.err)
		require.False(t, seen[r.index])
		seen[r.index] = true
	}
	require.Equal(t, 2, tr.get().creates, "watches opened for %d Waits on a Barrier", waiters+1)
}

// No goroutine of a session, its watches included, outlives Close; the
// calls blocked on the watches return ErrSessionLost.
func TestSharedWatchGoroutinesEndAtClose(t *testing.T) {
	evFresh(t)
	ignore := goleak.IgnoreCurrent()
	cli, _ := watchTracedClient(t)
	s, err := etcdsync.NewSession(context.Background(), cli, etcdsync.WithPrefix(testPrefix(t)))
	require.NoError(t, err)
	otherCli, _ := watchTracedClient(t)
	other, err := etcdsync.NewSession(context.Background(), otherCli, etcdsync.WithPrefix(testPrefix(t)))
	require.NoError(t, err)
	held, err := etcdsync.NewLock(other, "l").Lock(confCtx(t))
	require.NoError(t, err)
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 1)
	require.NoError(t, err)
	p, err := m.Acquire(confCtx(t))
	require.NoError(t, err)
	lockCh := confGo(func() (*etcdsync.Permit, error) { return etcdsync.NewLock(s, "l").Lock(context.Background()) })
	semCh := confGo(func() (*etcdsync.Permit, error) { return m.Acquire(context.Background()) })
	evCh := evGo(context.Background(), etcdsync.NewEvent(s, "e"))
	confAwait(t, "Waiting", etcdsync.NewLock(other, "l").Waiting, 1)
	confAwait(t, "Waiting", m.Waiting, 1)

	require.NoError(t, s.Close(confCtx(t)))
	for _, ch := range []<-chan confResult{lockCh, semCh} {
		r := confRecv(t, ch, "blocked call")
		require.ErrorIs(t, r.err, etcdsync.ErrSessionLost)
	}
	require.ErrorIs(t, evRecv(t, evCh), etcdsync.ErrSessionLost)
	require.ErrorIs(t, p.Release(confCtx(t)), etcdsync.ErrSessionLost)
	confRelease(t, held)
	require.NoError(t, other.Close(confCtx(t)))
	require.NoError(t, cli.Close())
	require.NoError(t, otherCli.Close())
	goleak.VerifyNone(t, append(leakOptions(), ignore)...)
}
