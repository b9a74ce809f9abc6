package ctxsync_test

import (
	"context"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// cancelAfterYields calls cancel after yielding the processor n times, so
// that cancellations land at spread-out moments of the callee's progress.
func cancelAfterYields(cancel context.CancelFunc, n int) {
	for range n {
		runtime.Gosched()
	}
	cancel()
}
