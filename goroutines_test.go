package ctxsync_test

import (
	"bytes"
	"context"
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
