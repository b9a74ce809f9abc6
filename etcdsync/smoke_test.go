package etcdsync_test

import (
	"context"
	"testing"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/require"
)

func TestSmokeLock(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli)
	l := etcdsync.NewLock(s, "a")
	ctx := context.Background()
	p, err := l.Lock(ctx)
	require.NoError(t, err)
	_, err = l.TryLock(ctx)
	require.ErrorIs(t, err, etcdsync.ErrWouldBlock)
	done := make(chan *etcdsync.Permit)
	go func() {
		p2, err := l.Lock(ctx)
		require.NoError(t, err)
		done <- p2
	}()
	require.Eventually(t, func() bool { n, _ := l.Waiting(ctx); return n == 1 }, 5e9, 1e7)
	require.NoError(t, p.Release(ctx))
	p2 := <-done
	require.Greater(t, p2.Token(), p.Token())
	require.NoError(t, p2.Release(ctx))
	require.Zero(t, keysUnder(t, cli, testPrefix(t)+"lock/"))
}
