package ctxsync_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ctxsync/ctxsync"
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

// holdParked stops every call that parks before it waits, until release
// is called (at the latest when the test ends): the test can grant it, end
// its context, or both, before the call looks, so what a single P used to
// give by luck of the scheduler is given by construction. Call it inside
// a synctest bubble.
func holdParked(t *testing.T) (release func()) {
	hold := make(chan struct{})
	ctxsync.HoldParked(hold)
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctxsync.ReleaseParked()
			close(hold)
		})
	}
	t.Cleanup(release)
	return release
}

// runConcurrently splits b.N iterations of op over g goroutines, so that
// "contended with g goroutines" means the same whatever GOMAXPROCS is.
func runConcurrently(b *testing.B, g int, op func()) {
	b.Helper()
	b.ReportAllocs()
	var wg sync.WaitGroup
	per := b.N / g
	b.ResetTimer()
	for i := range g {
		n := per
		if i == 0 {
			n += b.N % g
		}
		wg.Go(func() {
			for range n {
				op()
			}
		})
	}
	wg.Wait()
}
