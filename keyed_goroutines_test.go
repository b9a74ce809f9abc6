package ctxsync_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

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
