package etcdsync_test

// Semaphore.SetSize and TryAcquire, sentence by sentence from ETCDSYNC.md,
// each across processes (a client and a session of their own) on the real
// server.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync"
	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// sizeSems makes the semaphore name of size size in n processes.
func sizeSems(t *testing.T, n int, name string, size int) []*etcdsync.Semaphore {
	t.Helper()
	_, ss := confReplicas(t, n)
	ms := make([]*etcdsync.Semaphore, n)
	for i, s := range ss {
		m, err := etcdsync.NewSemaphore(confCtx(t), s, name, size)
		require.NoError(t, err)
		ms[i] = m
	}
	return ms
}

func sizeAcquire(t *testing.T, m *etcdsync.Semaphore, n int) *etcdsync.Permit {
	t.Helper()
	p, err := m.AcquireN(confCtx(t), n)
	require.NoError(t, err)
	return p
}

// sizeSeen waits until m's process has seen size n.
func sizeSeen(t *testing.T, m *etcdsync.Semaphore, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return m.Size() == n }, confWait, time.Millisecond, "Size stays %d, want %d", m.Size(), n)
}

// SetSize changes the size for every process that shares the semaphore;
// the others learn it through their watch.
func TestSetSizeSeenByEveryProcess(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 3, "m", 5)
	require.NoError(t, ms[0].SetSize(confCtx(t), 8))
	require.Equal(t, 8, ms[0].Size())
	for _, m := range ms[1:] {
		sizeSeen(t, m, 8)
	}
	require.NoError(t, ms[2].SetSize(confCtx(t), 2))
	for _, m := range ms {
		sizeSeen(t, m, 2)
	}
	// Setting the size in force changes nothing.
	require.NoError(t, ms[1].SetSize(confCtx(t), 2))
	require.Equal(t, 2, confInt(t, ms[0].Available))
}

// NewSemaphore with a size other than the one in force still returns
// ErrSizeMismatch; with the size in force it works.
func TestSetSizeNewSemaphoreMismatch(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 1, "m", 5)
	require.NoError(t, ms[0].SetSize(confCtx(t), 3))
	_, ss := confReplicas(t, 1)
	_, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 5)
	require.ErrorIs(t, err, etcdsync.ErrSizeMismatch)
	m, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 3)
	require.NoError(t, err)
	require.Equal(t, 3, m.Size())
}

// Raising the size grants the waiters that now fit, in order, at once.
func TestSetSizeRaiseGrantsWaitersInOrder(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 4, "m", 2)
	held := sizeAcquire(t, ms[0], 2)
	var chs []<-chan confResult
	for i, m := range ms[1:] {
		chs = append(chs, confGo(func() (*etcdsync.Permit, error) { return m.Acquire(context.Background()) }))
		confAwait(t, "Waiting", ms[0].Waiting, i+1)
	}
	require.NoError(t, ms[0].SetSize(confCtx(t), 4))
	first := confRecv(t, chs[0], "first waiter")
	second := confRecv(t, chs[1], "second waiter")
	require.NoError(t, first.err)
	require.NoError(t, second.err)
	require.Less(t, first.p.Token(), second.p.Token())
	confNotYet(t, chs[2], "third waiter") // 2 + 1 + 1 fill 4
	require.Equal(t, 1, confInt(t, ms[3].Waiting))
	require.Equal(t, 0, confInt(t, ms[3].Available))
	confRelease(t, first.p)
	third := confRecv(t, chs[2], "third waiter")
	require.NoError(t, third.err)
	for _, p := range []*etcdsync.Permit{held, second.p, third.p} {
		confRelease(t, p)
	}
}

// Lowering the size lets the holders keep what they hold: they count as
// granted, not waiting, in every process, and their permits stay valid;
// nobody new is granted until the holders are within the new size.
func TestSetSizeLowerHoldersKeep(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 3, "m", 4)
	big := sizeAcquire(t, ms[0], 3)
	small := sizeAcquire(t, ms[1], 1)
	require.NoError(t, ms[2].SetSize(confCtx(t), 2))
	for _, m := range ms {
		sizeSeen(t, m, 2)
		require.Equal(t, 0, confInt(t, m.Waiting), "holders above the size are not waiting")
		require.Equal(t, 0, confInt(t, m.Available))
	}
	for _, p := range []*etcdsync.Permit{big, small} {
		require.True(t, confGuardHolds(t, newClient(t), p), "a holder lost its permit")
		require.False(t, confClosed(p.Lost()))
	}
	// Nobody new: holders hold 4 > 2. With nobody waiting, a TryAcquire
	// fails on the holders alone, and leaves nothing behind.
	for _, m := range ms {
		_, err := m.TryAcquire(confCtx(t))
		require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	}
	confTickets(t, newClient(t), confSemQ(testPrefix(t), "m"), 2)
	ch := confGo(func() (*etcdsync.Permit, error) { return ms[2].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	_, err := ms[1].TryAcquire(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	confRelease(t, small)
	confNotYet(t, ch, "waiter while holders hold 3 of 2")
	confRelease(t, big)
	r := confRecv(t, ch, "waiter once holders are within the size")
	require.NoError(t, r.err)
	require.Equal(t, 1, confInt(t, ms[0].Available))
	confRelease(t, r.p)
}

// A grant once seen stays a grant across a lowering, in every process:
// the waiters granted by a raise keep their permits when the size is
// lowered again at once, and every process counts them as granted.
func TestSetSizeGrantsSurviveLowering(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 3, "m", 1)
	held := sizeAcquire(t, ms[0], 1)
	var chs []<-chan confResult
	for i := range 4 {
		m := ms[1+i%2]
		chs = append(chs, confGo(func() (*etcdsync.Permit, error) { return m.Acquire(context.Background()) }))
		confAwait(t, "Waiting", ms[0].Waiting, i+1)
	}
	require.NoError(t, ms[0].SetSize(confCtx(t), 3)) // grants two
	require.NoError(t, ms[0].SetSize(confCtx(t), 1)) // the two keep theirs
	var granted []*etcdsync.Permit
	for _, ch := range chs[:2] {
		r := confRecv(t, ch, "waiter granted by the raise")
		require.NoError(t, r.err)
		granted = append(granted, r.p)
	}
	for _, m := range ms {
		require.Equal(t, 2, confInt(t, m.Waiting))
		require.Equal(t, 0, confInt(t, m.Available))
	}
	for _, p := range granted {
		require.True(t, confGuardHolds(t, newClient(t), p))
	}
	confRelease(t, held)
	confRelease(t, granted[0])
	confNotYet(t, chs[2], "waiter while one holder holds 1 of 1")
	confRelease(t, granted[1])
	r := confRecv(t, chs[2], "next waiter")
	require.NoError(t, r.err)
	confRelease(t, r.p)
	r = confRecv(t, chs[3], "last waiter")
	require.NoError(t, r.err)
	confRelease(t, r.p)
}

// Waiting requests above the new size fail with ctxsync.ErrExceedsBound,
// and leave nothing in etcd; those that still fit go on waiting.
func TestSetSizeWaitersAboveNewSizeFail(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	prefix := testPrefix(t)
	ms := sizeSems(t, 3, "m", 4)
	held := sizeAcquire(t, ms[0], 4)
	big := confGo(func() (*etcdsync.Permit, error) { return ms[1].AcquireN(context.Background(), 3) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	fits := confGo(func() (*etcdsync.Permit, error) { return ms[2].AcquireN(context.Background(), 2) })
	confAwait(t, "Waiting", ms[0].Waiting, 2)
	require.NoError(t, ms[0].SetSize(confCtx(t), 2))
	r := confRecv(t, big, "waiter above the new size")
	require.Nil(t, r.p)
	require.ErrorIs(t, r.err, ctxsync.ErrExceedsBound)
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	confTickets(t, newClient(t), confSemQ(prefix, "m"), 2)
	confRelease(t, held)
	r = confRecv(t, fits, "waiter within the new size")
	require.NoError(t, r.err)
	confRelease(t, r.p)
}

// A request above the size this process last saw fails at once, without an
// RPC (D8).
func TestSetSizeAboveSeenSizeSendsNothing(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	cli, rpcs := confCountingClient(t)
	s := newSession(t, cli)
	mine, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 5)
	require.NoError(t, err)
	other := sizeSems(t, 1, "m", 5)[0]
	require.NoError(t, other.SetSize(confCtx(t), 2))
	sizeSeen(t, mine, 2)
	rpcs.reset()
	_, err = mine.AcquireN(confCtx(t), 3)
	require.ErrorIs(t, err, ctxsync.ErrExceedsBound)
	_, err = mine.TryAcquireN(confCtx(t), 3)
	require.ErrorIs(t, err, ctxsync.ErrExceedsBound)
	require.Empty(t, rpcs.sent())
	// And it sees a raise the same way.
	require.NoError(t, other.SetSize(confCtx(t), 3))
	sizeSeen(t, mine, 3)
	p := sizeAcquire(t, mine, 3)
	confRelease(t, p)
}

// A request for 0 permits succeeds at once unless others wait, also while
// holders are above a lowered size.
func TestSetSizeAcquireZeroAboveLoweredSize(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 2, "m", 3)
	held := sizeAcquire(t, ms[0], 3)
	require.NoError(t, ms[0].SetSize(confCtx(t), 1))
	sizeSeen(t, ms[1], 1)
	p := sizeAcquire(t, ms[1], 0)
	confRelease(t, p)
	p, err := ms[1].TryAcquireN(confCtx(t), 0)
	require.NoError(t, err)
	confRelease(t, p)
	// With a waiter, 0 waits its turn too.
	w := confGo(func() (*etcdsync.Permit, error) { return ms[1].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	_, err = ms[0].TryAcquireN(confCtx(t), 0)
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	zero := confGo(func() (*etcdsync.Permit, error) { return ms[0].AcquireN(context.Background(), 0) })
	confAwait(t, "Waiting", ms[1].Waiting, 2)
	confRelease(t, held)
	for _, ch := range []<-chan confResult{w, zero} {
		r := confRecv(t, ch, "waiter")
		require.NoError(t, r.err)
		confRelease(t, r.p)
	}
}

// TryAcquire is TryAcquireN(ctx, 1).
func TestSemaphoreTryAcquire(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 2, "m", 1)
	p, err := ms[0].TryAcquire(confCtx(t))
	require.NoError(t, err)
	require.Equal(t, 1, p.N())
	_, err = ms[1].TryAcquire(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	confRelease(t, p)
	require.NoError(t, ms[0].SetSize(confCtx(t), 0))
	sizeSeen(t, ms[1], 0)
	_, err = ms[1].TryAcquire(confCtx(t))
	require.ErrorIs(t, err, ctxsync.ErrExceedsBound)
}

// SetSize with a negative size panics, before anything else.
func TestSetSizeMisusePanics(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 1, "m", 1)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	// A semaphore of a session that has ended: misuse still comes first.
	_, ss := confReplicas(t, 1)
	lost, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 1)
	require.NoError(t, err)
	require.NoError(t, ss[0].Close(confCtx(t)))
	const negative = "etcdsync: negative semaphore size"
	const zero = "etcdsync: zero Semaphore; make one with NewSemaphore"
	for _, c := range []struct {
		name, msg string
		f         func()
	}{
		{"negative", negative, func() { _ = ms[0].SetSize(context.Background(), -1) }},
		{"negative, done ctx", negative, func() { _ = ms[0].SetSize(done, -2) }},
		{"negative, session ended", negative, func() { _ = lost.SetSize(context.Background(), -1) }},
		{"zero Semaphore", zero, func() { _ = (&etcdsync.Semaphore{}).SetSize(context.Background(), 1) }},
		{"zero Semaphore, done ctx", zero, func() { _ = (&etcdsync.Semaphore{}).SetSize(done, 1) }},
		{"TryAcquire on a zero Semaphore", zero, func() { _, _ = (&etcdsync.Semaphore{}).TryAcquire(context.Background()) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, panicked := confPanicValue(c.f)
			require.True(t, panicked)
			require.True(t, strings.HasPrefix(fmt.Sprint(v), "etcdsync: "), "panic %q", v)
			require.Equal(t, c.msg, fmt.Sprint(v))
		})
	}
	require.Equal(t, 1, ms[0].Size())
}

// SetSize and TryAcquire with a done ctx return exactly ctx.Err(), send
// nothing to etcd (D1, D2) and change nothing, whether the call would
// have succeeded or not.
func TestSetSizeDoneContext(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	prefix := testPrefix(t)
	cli, rpcs := confCountingClient(t)
	s := newSession(t, cli)
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 1)
	require.NoError(t, err)
	observer := newClient(t)
	check := func(state string) {
		for _, dc := range confDoneCtxs() {
			before := confRevision(t, observer)
			rpcs.reset()
			err := m.SetSize(dc.make(), 3)
			p, terr := m.TryAcquire(dc.make())
			sent := rpcs.sent()
			confIsExactly(t, dc.want, err, state+", SetSize, "+dc.name)
			require.Nil(t, p)
			confIsExactly(t, dc.want, terr, state+", TryAcquire, "+dc.name)
			require.Empty(t, sent, "%s, %s: sent RPCs", state, dc.name)
			confNoWritesUnder(t, observer, prefix, before, confRevision(t, observer))
			require.Equal(t, 1, m.Size())
		}
	}
	check("free")
	// Held by another process: TryAcquire would fail with ErrWouldBlock if
	// it asked.
	other := sizeSems(t, 1, "m", 1)[0]
	held := sizeAcquire(t, other, 1)
	check("held")
	confRelease(t, held)
	require.Equal(t, 1, confInt(t, m.Available))
	confTickets(t, observer, confSemQ(prefix, "m"), 0)
}

// While permits come and go in several processes and the size moves up and
// down, every process agrees on who is granted, and a permit, once
// returned, is never taken back: every holder's Guard holds until its own
// Release.
func TestSetSizeStorm(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	const procs = 4
	ms := sizeSems(t, procs+1, "m", 3)
	sizeStorm(t, ms[:procs], ms[procs], 25, 30, 0)
	for _, m := range ms {
		confAwait(t, "Waiting", m.Waiting, 0)
		confAwait(t, "Available", m.Available, 4)
	}
}

// sizeStorm has each of workers take and give back 1 or 2 permits calls
// times, checking that each grant holds in etcd until its own Release,
// while sizer sets the size resizes times to base+1, 3, 2 and 4 in turn,
// and then to base+4; it returns when all is done.
func sizeStorm(t *testing.T, workers []*etcdsync.Semaphore, sizer *etcdsync.Semaphore, calls, resizes, base int) {
	t.Helper()
	observer := newClient(t)
	ctx := confCtx(t)
	var wg sync.WaitGroup
	for i, m := range workers {
		wg.Go(func() {
			for j := range calls {
				p, err := m.AcquireN(ctx, 1+(i+j)%2)
				if err != nil {
					assert.ErrorIs(t, err, ctxsync.ErrExceedsBound)
					continue
				}
				resp, err := observer.Txn(ctx).If(p.Guard()).Commit()
				if assert.NoError(t, err) {
					assert.True(t, resp.Succeeded, "a grant was taken back")
				}
				assert.NoError(t, p.Release(ctx))
			}
		})
	}
	for i := range resizes {
		require.NoError(t, sizer.SetSize(ctx, base+[]int{1, 3, 2, 4}[i%4]))
	}
	require.NoError(t, sizer.SetSize(ctx, base+4))
	wg.Wait()
}

// A lowering while holders are above the new size is written with the
// size, so a process that comes later sees the same line: NewSemaphore with
// the new size works and with the old one returns ErrSizeMismatch, the
// holders count as granted, not waiting, and nobody new is granted until
// they are within the new size.
func TestSetSizeLoweredSeenByLaterProcess(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 2, "m", 4)
	a := sizeAcquire(t, ms[0], 3)
	b := sizeAcquire(t, ms[1], 1)
	require.NoError(t, ms[0].SetSize(confCtx(t), 2))

	_, ss := confReplicas(t, 1)
	for _, stale := range []int{4, 3} {
		bad, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", stale)
		require.Nil(t, bad)
		require.ErrorIs(t, err, etcdsync.ErrSizeMismatch, "size %d", stale)
	}
	late, err := etcdsync.NewSemaphore(confCtx(t), ss[0], "m", 2)
	require.NoError(t, err)
	require.Equal(t, 2, late.Size())
	require.Equal(t, 0, confInt(t, late.Waiting), "holders above the size are not waiting")
	require.Equal(t, 0, confInt(t, late.Available))
	_, err = late.TryAcquire(confCtx(t))
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	p, err := late.TryAcquireN(confCtx(t), 0)
	require.NoError(t, err, "0 permits while holders are above a lowered size")
	confRelease(t, p)

	ch := confGo(func() (*etcdsync.Permit, error) { return late.AcquireN(context.Background(), 2) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	confRelease(t, b)
	confNotYet(t, ch, "waiter while holders hold 3 of 2")
	confRelease(t, a)
	r := confRecv(t, ch, "waiter once the holders are gone")
	require.NoError(t, r.err)
	require.Equal(t, 2, r.p.N())
	confRelease(t, r.p)
}

// A waiting request at the head that no longer fits when the size is
// lowered fails with ctxsync.ErrExceedsBound and leaves the line: the
// requests it held back are granted at once if they fit the new size, in
// every process, without waiting for any holder.
func TestSetSizeFailedHeadUnblocksLine(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	prefix := testPrefix(t)
	ms := sizeSems(t, 3, "m", 4)
	held := sizeAcquire(t, ms[0], 1)
	head := confGo(func() (*etcdsync.Permit, error) { return ms[1].AcquireN(context.Background(), 4) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	behind := confGo(func() (*etcdsync.Permit, error) { return ms[2].AcquireN(context.Background(), 2) })
	confAwait(t, "Waiting", ms[0].Waiting, 2)
	confNotYet(t, behind, "request behind a weighted head")

	require.NoError(t, ms[0].SetSize(confCtx(t), 3))
	r := confRecv(t, head, "head above the new size")
	require.Nil(t, r.p)
	require.ErrorIs(t, r.err, ctxsync.ErrExceedsBound)
	r = confRecv(t, behind, "request behind the failed head")
	require.NoError(t, r.err, "1 held + 2 fit the new size of 3")
	require.True(t, confGuardHolds(t, newClient(t), held), "the holder keeps its permit")
	for _, m := range ms {
		confAwait(t, "Waiting", m.Waiting, 0)
		require.Equal(t, 0, confInt(t, m.Available))
	}
	confTickets(t, newClient(t), confSemQ(prefix, "m"), 2)
	confRelease(t, r.p)
	confRelease(t, held)
}

// A request made right after another process lowered the size, before
// this process may have heard of it through its watch, still fails with
// ctxsync.ErrExceedsBound (etcd's size is the one in force), and leaves
// no ticket behind (D3).
func TestSetSizeLoweredJustBeforeAcquire(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	prefix := testPrefix(t)
	ms := sizeSems(t, 2, "m", 5)
	observer := newClient(t)
	for i := range 5 {
		require.NoError(t, ms[0].SetSize(confCtx(t), 5))
		sizeSeen(t, ms[1], 5)
		require.NoError(t, ms[0].SetSize(confCtx(t), 2))
		var p *etcdsync.Permit
		var err error
		if i%2 == 0 {
			p, err = ms[1].AcquireN(confCtx(t), 3)
		} else {
			p, err = ms[1].TryAcquireN(confCtx(t), 3)
		}
		require.Nil(t, p, "round %d", i)
		require.ErrorIs(t, err, ctxsync.ErrExceedsBound, "round %d", i)
		sizeSeen(t, ms[1], 2)
		awaitTickets(t, observer, confSemQ(prefix, "m"), 0)
	}
	require.Equal(t, 2, confInt(t, ms[1].Available))
}

// SetSize whose ctx ends while its RPCs are in flight returns nil or
// exactly ctx.Err() (D2), and either way leaves a consistent semaphore:
// the holder keeps its permit, and the next SetSize is in force for every
// process.
func TestSetSizeContextEndsDuringRPC(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 2, "m", 3)
	held := sizeAcquire(t, ms[1], 2)
	observer := newClient(t)
	outcomes := map[bool]int{}
	for i := range 40 {
		d := time.Duration(i%20+1) * 100 * time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		err := ms[0].SetSize(ctx, 1+i%3) // lowers below the holder's 2, too
		cancel()
		outcomes[err == nil]++
		if err != nil {
			confIsExactly(t, context.DeadlineExceeded, err, fmt.Sprintf("SetSize after %v", d))
		}
	}
	t.Logf("ok/failed: %v", outcomes)
	require.True(t, confGuardHolds(t, observer, held))
	require.NoError(t, ms[0].SetSize(confCtx(t), 3))
	sizeSeen(t, ms[1], 3)
	require.Equal(t, 1, confInt(t, ms[1].Available))
	p := sizeAcquire(t, ms[0], 1)
	confRelease(t, p)
	confRelease(t, held)
	require.Equal(t, 3, confInt(t, ms[0].Available))
}

// D3 for SetSize: a SetSize whose request reaches etcd only after its
// caller gave up, and after another process's SetSize returned nil, changes
// nothing: the later call's size stays, also when that size was in force
// already (the later call must still write, or the late one would take).
func TestSetSizeLateWriteIsHarmless(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	cli, f := confFaultyClient(t)
	m, err := etcdsync.NewSemaphore(confCtx(t), newSession(t, cli), "m", 3)
	require.NoError(t, err)
	other := sizeSems(t, 1, "m", 3)[0]

	f.arm("hold-request", "/Txn")
	ctx, cancel := confShort()
	err = m.SetSize(ctx, 1)
	cancel()
	confIsExactly(t, context.DeadlineExceeded, err, "SetSize held back")
	require.NoError(t, other.SetSize(confCtx(t), 3))
	apply := <-f.held
	require.NoError(t, apply()) // the late request reaches etcd now
	require.Equal(t, 3, confInt(t, other.Available), "a late SetSize took after a later one")
	require.Equal(t, 3, confInt(t, m.Available))
}

// A SetSize or TryAcquire that etcd refuses with an error of its own
// returns it wrapped, with a message that begins "etcdsync: " (D2), and
// leaves nothing behind (D3): the size stays, and no ticket stands in the
// line.
func TestSetSizeOtherFailuresWrapped(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	prefix := testPrefix(t)
	cli, f := txnFaultyClient(t)
	s := newSession(t, cli)
	m, err := etcdsync.NewSemaphore(confCtx(t), s, "m", 2)
	require.NoError(t, err)
	other := sizeSems(t, 1, "m", 2)[0]
	for _, c := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"SetSize raise", func(ctx context.Context) error { return m.SetSize(ctx, 3) }},
		{"SetSize lower", func(ctx context.Context) error { return m.SetSize(ctx, 1) }},
		{"TryAcquire", func(ctx context.Context) error {
			p, err := m.TryAcquire(ctx)
			require.Nil(t, p)
			return err
		}},
	} {
		f.arm(1, rpctypes.ErrGRPCPermissionDenied)
		err := c.f(confCtx(t))
		require.ErrorIs(t, err, rpctypes.ErrPermissionDenied, c.name)
		require.True(t, strings.HasPrefix(err.Error(), "etcdsync: "), "%s: %s", c.name, err)
		require.False(t, errors.Is(err, etcdsync.ErrSessionLost) || errors.Is(err, etcdsync.ErrWouldBlock), c.name)
		f.arm(0, nil)
		awaitTickets(t, newClient(t), confSemQ(prefix, "m"), 0)
		require.Equal(t, 2, confInt(t, other.Available), c.name)
	}
	require.Equal(t, 2, m.Size())
	p, err := m.TryAcquire(confCtx(t))
	require.NoError(t, err)
	confRelease(t, p)
}

// A lowering while more tickets hold permits than one etcd transaction can
// name (etcd's default limit is 128 comparisons): SetSize still works, the
// holders keep their permits and count as granted, and the waiter is
// granted only once the holders are within the new size.
func TestSetSizeLowerWithManyHolders(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	const holders = 140
	ms := sizeSems(t, 3, "m", holders)
	permits := make([]*etcdsync.Permit, holders)
	for i := range permits {
		permits[i] = sizeAcquire(t, ms[0], 1)
	}
	ch := confGo(func() (*etcdsync.Permit, error) { return ms[1].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	require.NoError(t, ms[2].SetSize(confCtx(t), 100))
	for _, m := range ms {
		sizeSeen(t, m, 100)
		require.Equal(t, 1, confInt(t, m.Waiting), "holders above the size are not waiting")
		require.Equal(t, 0, confInt(t, m.Available))
	}
	for _, p := range permits[:holders-100] {
		confRelease(t, p) // 100 left: the waiter's 1 does not fit
	}
	confNotYet(t, ch, "waiter while holders hold 100 of 100")
	confRelease(t, permits[holders-100])
	r := confRecv(t, ch, "waiter once holders are within the size")
	require.NoError(t, r.err)
	confRelease(t, r.p)
	for _, p := range permits[holders-100+1:] {
		confRelease(t, p)
	}
	require.Equal(t, 100, confInt(t, ms[2].Available))
}

// A server whose limit of operations per transaction is below etcd's
// default refuses even a lowering that names few holders: SetSize then
// lowers the loose way, and the line keeps its rules.
func TestSetSizeLowerOnServerWithFewerTxnOps(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	ms := sizeSems(t, 2, "m", 3)
	cli, f := txnFaultyClient(t)
	resizer, err := etcdsync.NewSemaphore(confCtx(t), newSession(t, cli), "m", 3)
	require.NoError(t, err)
	held := []*etcdsync.Permit{sizeAcquire(t, ms[0], 2), sizeAcquire(t, ms[0], 1)}
	ch := confGo(func() (*etcdsync.Permit, error) { return ms[1].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)

	f.arm(1, rpctypes.ErrGRPCTooManyOps) // the exact lowering's transaction
	require.NoError(t, resizer.SetSize(confCtx(t), 2))
	require.Equal(t, 1, f.count(), "the refused transaction")
	for _, m := range ms {
		sizeSeen(t, m, 2)
		require.Equal(t, 1, confInt(t, m.Waiting))
	}
	confNotYet(t, ch, "waiter while holders hold 3 of 2")
	confRelease(t, held[0]) // 1 held: the waiter's 1 fits 2
	r := confRecv(t, ch, "waiter once holders are within the size")
	require.NoError(t, r.err)
	confRelease(t, r.p)
	confRelease(t, held[1])
	require.Equal(t, 2, confInt(t, ms[0].Available))
}

// The loose lowering, when a holder leaves between SetSize's read and its
// write and the first waiter is granted under the old size in that moment:
// SetSize mends the record of grants afterwards, so that a process that
// reads the line afresh counts that waiter as granted, as every process
// that saw the grant does. Without the mend it would count it as waiting.
func TestSetSizeLooseLoweringMendsARaceGrant(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	const holders = 140
	ms := sizeSems(t, 2, "m", holders)
	reached, gate := make(chan struct{}), make(chan struct{})
	var armed sync.Once
	cli := dialWith(t, nil, func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if txn, ok := req.(*etcdserverpb.TxnRequest); ok && len(txn.Compare) > 1 {
			armed.Do(func() { // SetSize's first write: hold it back
				close(reached)
				<-gate
			})
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}, nil)
	t.Cleanup(func() { _ = cli.Close() })
	resizer, err := etcdsync.NewSemaphore(confCtx(t), newSession(t, cli), "m", holders)
	require.NoError(t, err)

	permits := make([]*etcdsync.Permit, holders)
	for i := range permits {
		permits[i] = sizeAcquire(t, ms[0], 1)
	}
	ch := confGo(func() (*etcdsync.Permit, error) { return ms[1].Acquire(context.Background()) })
	confAwait(t, "Waiting", ms[0].Waiting, 1)
	done := make(chan error, 1)
	go func() { done <- resizer.SetSize(confCtx(t), 100) }()
	<-reached
	confRelease(t, permits[0]) // the waiter fits the old size now
	r := confRecv(t, ch, "waiter granted under the old size")
	require.NoError(t, r.err)
	close(gate)
	require.NoError(t, <-done)

	fresh := sizeSems(t, 1, "m", 100)[0] // reads the line after the SetSize
	require.Equal(t, 0, confInt(t, fresh.Waiting), "the waiter granted in the race counts as waiting")
	require.Equal(t, 0, confInt(t, ms[0].Waiting))
	confRelease(t, r.p)
	for _, p := range permits[1:] {
		confRelease(t, p)
	}
	require.Equal(t, 100, confInt(t, fresh.Available))
}

// The storm above with more holders than one transaction can name, so that
// every lowering takes the loose way and its mend races with grants and
// releases: no grant is taken back, no call is stranded, and the line ends
// empty with every permit back.
func TestSetSizeStormManyHolders(t *testing.T) {
	evFresh(t) // sizes outlive sessions: start from none (-count)
	const ballast, procs = 130, 4
	ms := sizeSems(t, procs+2, "m", ballast+4)
	held := make([]*etcdsync.Permit, ballast)
	for i := range held {
		held[i] = sizeAcquire(t, ms[procs+1], 1)
	}
	sizeStorm(t, ms[:procs], ms[procs], 20, 20, ballast)
	for _, p := range held {
		confRelease(t, p)
	}
	for _, m := range ms {
		confAwait(t, "Waiting", m.Waiting, 0)
		confAwait(t, "Available", m.Available, ballast+4)
	}
}
