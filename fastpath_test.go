package ctxsync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctxsync/ctxsync"
)

// The uncontended fast paths of Lock, Acquire and AcquireN look at the
// context before they take anything (R1). These tests pin down what that
// look must get right whatever form it takes: every kind of done context
// fails, every context that is not done succeeds, and the look allocates
// nothing (R8), also on a fresh cancellable context, whose Done channel
// context makes only when Done is first called.

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
