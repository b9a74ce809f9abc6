package ctxsync_test

// The tests that span the types: each runs one check over every type, or
// every type of a kind, at once (no goroutine for a blocked call, the fast
// paths' look at the context, go vet's copy check). A test about one type
// lives in that type's file.

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// foreignContext is a context type the context package does not know.
// context.AfterFunc, WithCancel and their kin can only watch such a parent
// from a goroutine of their own, so a blocked call that leaned on them would
// start one; with the context package's own types they need none, which is
// why the other tests cannot see it.
type foreignContext struct {
	done chan struct{}
	once sync.Once
}

func newForeignContext() *foreignContext { return &foreignContext{done: make(chan struct{})} }

func (c *foreignContext) cancel()                     { c.once.Do(func() { close(c.done) }) }
func (c *foreignContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *foreignContext) Done() <-chan struct{}       { return c.done }
func (c *foreignContext) Value(any) any               { return nil }
func (c *foreignContext) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// goroutinesStartedBy lists the goroutines now alive that the ctxsync
// package or the context package started, by the "created by" line of
// their stacks.
func goroutinesStartedBy() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		for _, line := range strings.Split(string(g), "\n") {
			if strings.HasPrefix(line, "created by context.") ||
				strings.HasPrefix(line, "created by github.com/ctxsync/ctxsync.") ||
				strings.HasPrefix(line, "created by github.com/ctxsync/ctxsync/") {
				found = append(found, line)
			}
		}
	}
	return found
}

// R5: no blocked call starts a goroutine, whatever the type of its
// context, and each ends with exactly ctx.Err() when it ends (R2).
func TestNoGoroutinesForForeignContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := newForeignContext()
		bg := context.Background()

		var lock ctxsync.Lock
		require.NoError(t, lock.Lock(bg))
		var sem ctxsync.Semaphore
		bounded := ctxsync.NewBoundedSemaphore(1)
		require.NoError(t, bounded.Acquire(bg))
		var event ctxsync.Event
		var cond ctxsync.Condition
		empty := ctxsync.NewQueue[int](1)
		full := ctxsync.NewQueue[int](1)
		require.NoError(t, full.TryPut(1))
		barrier := ctxsync.NewBarrier(2)

		calls := map[string]func() error{
			"Lock.Lock":                 func() error { return lock.Lock(ctx) },
			"Semaphore.Acquire":         func() error { return sem.Acquire(ctx) },
			"BoundedSemaphore.AcquireN": func() error { return bounded.AcquireN(ctx, 1) },
			"Event.Wait":                func() error { return event.Wait(ctx) },
			"Condition.Wait": func() error {
				if err := cond.Lock(bg); err != nil {
					return err
				}
				defer cond.Unlock()
				return cond.Wait(ctx)
			},
			"Queue.Get":  func() error { _, err := empty.Get(ctx); return err },
			"Queue.Put":  func() error { return full.Put(ctx, 2) },
			"Queue.Join": func() error { return full.Join(ctx) },
			"Barrier.Wait": func() error {
				_, err := barrier.Wait(ctx)
				return err
			},
		}
		results := make(map[string]chan error, len(calls))
		for name, call := range calls {
			r := make(chan error, 1)
			results[name] = r
			go func() { r <- call() }()
		}
		synctest.Wait()
		for name, r := range results {
			require.Empty(t, r, "%s must block", name)
		}
		assert.Empty(t, goroutinesStartedBy(), "goroutines started for blocked calls")

		ctx.cancel()
		for name, r := range results {
			assert.Equal(t, context.Canceled, <-r, name)
		}
		lock.Unlock()
		bounded.Release()
	})
}

// R5: a blocked keyed call starts no goroutine, whatever the type of its
// context, and ends with exactly ctx.Err() (R2). A Group starts one, for
// fn, and it ends when fn returns.
func TestKeyedNoGoroutinesForForeignContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := newForeignContext()
		bg := context.Background()
		var m ctxsync.KeyedLock[string]
		require.NoError(t, m.Lock(bg, "k"))
		s := ctxsync.NewKeyedSemaphore[string](1)
		require.NoError(t, s.Acquire(bg, "k"))

		lockErr, semErr := make(chan error, 1), make(chan error, 1)
		go func() { lockErr <- m.Lock(ctx, "k") }()
		go func() { semErr <- s.Acquire(ctx, "k") }()
		synctest.Wait()
		assert.Empty(t, goroutinesStartedBy(), "goroutines started for blocked calls")
		ctx.cancel()
		assert.Equal(t, context.Canceled, <-lockErr)
		assert.Equal(t, context.Canceled, <-semErr)
		m.Unlock("k")
		s.Release("k")
		assert.Zero(t, m.Len())
		assert.Zero(t, s.Len())

		var g ctxsync.Group[string, int]
		release := make(chan struct{})
		gctx := newForeignContext()
		done := make(chan error, 1)
		go func() {
			_, err := g.Do(gctx, "k", func(context.Context) (int, error) { <-release; return 1, nil })
			done <- err
		}()
		synctest.Wait()
		started := goroutinesStartedBy()
		require.Len(t, started, 1, "one goroutine, for fn")
		assert.True(t, strings.HasPrefix(started[0], "created by github.com/ctxsync/ctxsync.(*Group"), started[0])
		gctx.cancel()
		assert.Equal(t, context.Canceled, <-done)
		close(release)
		synctest.Wait()
		assert.Empty(t, goroutinesStartedBy(), "fn's goroutine ends when fn returns")
	})
}

// The uncontended fast paths of Lock, Acquire and AcquireN look at the
// context before they take anything (R1). The TestFastPaths* tests pin
// down what that look must get right whatever form it takes: every kind of
// done context fails, every context that is not done succeeds, and the
// look allocates nothing (R8), also on a fresh cancellable context, whose
// Done channel context makes only when Done is first called.

// endedCtx is a Context of the caller's own: done, with an error of its
// own, so the fast paths cannot rely on the context package's types.
type endedCtx struct{ context.Context }

var errEnded = errors.New("ended")

func (endedCtx) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
func (endedCtx) Err() error { return errEnded }

// doneContexts are contexts already done, each with the error an
// acquiring call must return.
func doneContexts() []struct {
	name string
	ctx  context.Context
	err  error
} {
	observed, cancel := context.WithCancel(context.Background())
	_ = observed.Done() // its Done channel exists, and is closed below
	cancel()
	cause, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(errEnded)
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	cancelExpired() // its error stays DeadlineExceeded
	type key struct{}
	return []struct {
		name string
		ctx  context.Context
		err  error
	}{
		{"cancelled, Done never called", cancelled(), context.Canceled},
		{"cancelled, Done called", observed, context.Canceled},
		{"cancelled with a cause", cause, context.Canceled},
		{"deadline passed", expired, context.DeadlineExceeded},
		{"value over a cancelled one", context.WithValue(cancelled(), key{}, 1), context.Canceled},
		{"a type of its own", endedCtx{context.Background()}, errEnded},
	}
}

// liveContexts are contexts that are not done, two of them never done.
func liveContexts(t *testing.T) []struct {
	name string
	ctx  context.Context
} {
	live, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	far, cancelFar := context.WithTimeout(context.Background(), time.Hour)
	t.Cleanup(cancelFar)
	return []struct {
		name string
		ctx  context.Context
	}{
		{"Background", context.Background()},
		{"TODO", context.TODO()},
		{"WithCancel", live},
		{"WithTimeout", far},
		{"WithoutCancel over a cancelled one", context.WithoutCancel(cancelled())},
	}
}

// R1 on the fast paths: a done context fails with its own error on a free
// Lock or a Semaphore with permits free, and changes nothing.
func TestFastPathsFailOnEveryDoneContext(t *testing.T) {
	for _, c := range doneContexts() {
		t.Run(c.name, func(t *testing.T) {
			var l ctxsync.Lock
			assert.Equal(t, c.err, l.Lock(c.ctx))
			assert.False(t, l.Locked(), "the free lock stays free")
			assert.True(t, l.TryLock(), "and nobody waits for it")
			l.Unlock()
			for _, kind := range semaphoreKinds {
				s := kind.make(2)
				assert.Equal(t, c.err, s.Acquire(c.ctx), kind.name)
				assert.Equal(t, c.err, s.AcquireN(c.ctx, 1), kind.name)
				assert.Equal(t, c.err, s.AcquireN(c.ctx, 0), kind.name)
				assert.Equal(t, 2, s.Available(), "%s: no permit taken", kind.name)
				assert.True(t, s.TryAcquireN(2), "%s: and nobody waits", kind.name)
			}
		})
	}
}

// A context that is not done, or can never be, does not hold the fast
// paths back.
func TestFastPathsSucceedOnLiveContexts(t *testing.T) {
	for _, c := range liveContexts(t) {
		t.Run(c.name, func(t *testing.T) {
			var l ctxsync.Lock
			assert.NoError(t, l.Lock(c.ctx))
			assert.True(t, l.Locked())
			l.Unlock()
			for _, kind := range semaphoreKinds {
				s := kind.make(2)
				assert.NoError(t, s.Acquire(c.ctx), kind.name)
				assert.NoError(t, s.AcquireN(c.ctx, 1), kind.name)
				assert.Equal(t, 0, s.Available(), kind.name)
				s.ReleaseN(2)
			}
		})
	}
}

// R8 on the fast paths, with a context made for each call, as a request
// handler makes one: the calls allocate nothing beyond what making and
// cancelling the context allocates. A look at ctx.Done() would fail this,
// as it makes the channel of a fresh cancelCtx.
func TestFastPathsDoNotAllocateOnFreshContexts(t *testing.T) {
	fresh := []struct {
		name string
		make func() (context.Context, context.CancelFunc)
	}{
		{"WithCancel", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		{"WithTimeout", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Hour)
		}},
		{"WithValue over WithCancel", func() (context.Context, context.CancelFunc) {
			type key struct{}
			ctx, cancel := context.WithCancel(context.Background())
			return context.WithValue(ctx, key{}, 1), cancel
		}},
	}
	var l ctxsync.Lock
	s := ctxsync.NewSemaphore(1)
	b := ctxsync.NewBoundedSemaphore(1)
	calls := []struct {
		name string
		call func(ctx context.Context)
	}{
		{"Lock", func(ctx context.Context) { _ = l.Lock(ctx); l.Unlock() }},
		{"Semaphore.Acquire", func(ctx context.Context) { _ = s.Acquire(ctx); s.Release() }},
		{"Semaphore.AcquireN", func(ctx context.Context) { _ = s.AcquireN(ctx, 1); s.Release() }},
		{"BoundedSemaphore.Acquire", func(ctx context.Context) { _ = b.Acquire(ctx); b.Release() }},
		{"BoundedSemaphore.AcquireN", func(ctx context.Context) { _ = b.AcquireN(ctx, 1); b.Release() }},
	}
	for _, f := range fresh {
		base := testing.AllocsPerRun(100, func() {
			_, cancel := f.make()
			cancel()
		})
		for _, c := range calls {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				allocs := testing.AllocsPerRun(100, func() {
					ctx, cancel := f.make()
					c.call(ctx)
					cancel()
				})
				assert.Equal(t, base, allocs, "allocations beyond the context's own")
			})
		}
	}
}

// R7: go vet reports a copy of every ctxsync type. testdata/copies copies
// one value of each.
func TestVetReportsCopies(t *testing.T) {
	assertVetReportsCopies(t, "./testdata/copies",
		"Lock", "Event", "Condition", "Queue[int]", "Semaphore", "BoundedSemaphore", "Barrier", "RWLock")
}

// R7: go vet reports a copy of a Ticket and of a GetTicket, whose records
// stand in a line and must not be duplicated. testdata/ticketcopies copies
// one of each.
func TestVetReportsTicketCopies(t *testing.T) {
	assertVetReportsCopies(t, "./testdata/ticketcopies", "Ticket", "GetTicket[int]")
}

// R7: go vet reports a copy of a KeyedLock, a KeyedSemaphore, a Group and
// a GroupTicket. testdata/keyedcopies copies one of each.
func TestVetReportsKeyedCopies(t *testing.T) {
	assertVetReportsCopies(t, "./testdata/keyedcopies",
		"KeyedLock[string]", "KeyedSemaphore[string]", "Group[string, int]", "GroupTicket[int]")
}

// assertVetReportsCopies runs go vet on the program in dir, which copies
// one value of each of types, and checks that it fails with a report of
// each copy and of no other.
func assertVetReportsCopies(t *testing.T, dir string, types ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs go vet")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "vet", dir).CombinedOutput()
	assert.Error(t, err, "go vet must fail")
	for _, typ := range types {
		assert.Contains(t, string(out), "copies lock value: github.com/ctxsync/ctxsync."+typ+" contains", "a copy of %s", typ)
	}
	assert.Equal(t, len(types), strings.Count(string(out), "copies lock value"), string(out))
}
