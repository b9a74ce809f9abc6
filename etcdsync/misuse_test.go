package etcdsync_test

// D7: misuse panics at once, with a message that begins "etcdsync: ", and
// (D8) before anything else is looked at: a done ctx, a closed session.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/require"
)

// confPanicValue runs f and returns what it panicked with, if it did.
func confPanicValue(f func()) (v any, panicked bool) {
	panicked = true
	defer func() {
		if panicked {
			v = recover()
		}
	}()
	f()
	panicked = false
	return nil, false
}

func TestRuleD7MisusePanics(t *testing.T) {
	cli, rpcs := confCountingClient(t)
	live := newSession(t, cli)
	closed := newSession(t, cli)
	require.NoError(t, closed.Close(confCtx(t)))
	done, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()

	liveSem, err := etcdsync.NewSemaphore(bg, live, "m", 2)
	require.NoError(t, err)
	// A semaphore value of the closed session: made while it was alive.
	s2 := newSession(t, cli)
	lostSem, err := etcdsync.NewSemaphore(bg, s2, "m", 2)
	require.NoError(t, err)
	require.NoError(t, s2.Close(confCtx(t)))

	// released returns a permit of l released successfully once.
	released := func(s *etcdsync.Session, name string) *etcdsync.Permit {
		p, err := etcdsync.NewLock(s, name).Lock(confCtx(t))
		require.NoError(t, err)
		require.NoError(t, p.Release(confCtx(t)))
		return p
	}
	relLock := released(live, "rel")
	relSem, err := liveSem.AcquireN(confCtx(t), 2)
	require.NoError(t, err)
	require.NoError(t, relSem.Release(confCtx(t)))
	s3 := newSession(t, cli)
	relThenClosed := released(s3, "rel-closed")
	require.NoError(t, s3.Close(confCtx(t)))

	cases := []struct {
		name string
		f    func()
	}{
		{"NewSession nil client", func() { _, _ = etcdsync.NewSession(bg, nil) }},
		{"NewSession nil client, done ctx", func() { _, _ = etcdsync.NewSession(done, nil) }},
		{"NewLock nil session", func() { etcdsync.NewLock(nil, "l") }},
		{"NewSemaphore nil session", func() { _, _ = etcdsync.NewSemaphore(bg, nil, "m", 1) }},
		{"NewSemaphore nil session, done ctx", func() { _, _ = etcdsync.NewSemaphore(done, nil, "m", 1) }},
		{"NewSemaphore negative size", func() { _, _ = etcdsync.NewSemaphore(bg, live, "neg", -1) }},
		{"NewSemaphore negative size, done ctx", func() { _, _ = etcdsync.NewSemaphore(done, live, "neg", -1) }},
		{"NewSemaphore negative size, closed session", func() { _, _ = etcdsync.NewSemaphore(bg, closed, "neg", -1) }},
		{"NewSemaphore negative size of an existing name", func() { _, _ = etcdsync.NewSemaphore(bg, live, "m", -2) }},
		{"AcquireN negative", func() { _, _ = liveSem.AcquireN(bg, -1) }},
		{"AcquireN negative, done ctx", func() { _, _ = liveSem.AcquireN(done, -1) }},
		{"AcquireN negative, closed session, done ctx", func() { _, _ = lostSem.AcquireN(done, -1) }},
		{"TryAcquireN negative", func() { _, _ = liveSem.TryAcquireN(bg, -1) }},
		{"TryAcquireN negative, done ctx", func() { _, _ = liveSem.TryAcquireN(done, -1) }},
		{"TryAcquireN negative, closed session", func() { _, _ = lostSem.TryAcquireN(bg, -3) }},
		{"Release twice (lock)", func() { _ = relLock.Release(bg) }},
		{"Release twice (semaphore)", func() { _ = relSem.Release(bg) }},
		{"Release twice, done ctx", func() { _ = relLock.Release(done) }},
		{"Release twice, session closed since", func() { _ = relThenClosed.Release(bg) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rpcs.reset()
			v, panicked := confPanicValue(c.f)
			require.True(t, panicked, "no panic")
			msg := fmt.Sprint(v)
			require.True(t, strings.HasPrefix(msg, "etcdsync: "), "panic message %q", msg)
			require.Empty(t, rpcs.sent(), "misuse sent RPCs before panicking")
		})
	}

	// The values misused are still usable for proper calls: a panic left
	// nothing half done.
	p, err := liveSem.TryAcquireN(confCtx(t), 2)
	require.NoError(t, err)
	require.NoError(t, p.Release(confCtx(t)))
	require.Zero(t, keysUnder(t, cli, testPrefix(t)+"sem/neg"))
}
