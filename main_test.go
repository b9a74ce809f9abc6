package ctxsync_test

import (
	"context"
	"math/rand/v2"
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

// orderingRounds is the rounds of each TestOrdering* test (in its type's
// file) at the normal size. Each such test runs many short rounds in which
// goroutines, released at the same moment, race through a window that a
// deterministic test cannot open (a store made one step too late, after
// the wake-up instead of before it), so it only means something run many
// times, with -race, and more under -tags stress.
const orderingRounds = 500

// together runs each of fs in a goroutine of its own, releasing them all
// at once, and waits for them.
func together(fs ...func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}

// jitter yields a random few times, so that the goroutines of a round meet
// at spread-out points of each other's calls.
func jitter(rng *rand.Rand) {
	for range rng.IntN(3) {
		runtime.Gosched()
	}
}

// memoryKeys is how many distinct keys the memory tests
// (Test*GivesMemoryBack, in the files of the keyed types and of Group) go
// through, in bursts of a quarter of them held at once: 40,000 in normal
// runs (a burst grows each shard's table to 256 slots, which, kept, would
// break the bound), and 1,000,000 with -tags stress.
const memoryKeys = 40_000 + 960_000*min(stressScale-1, 1)

// heapAfterGC is the live heap once the garbage collector has run.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// keyedMemoryBound is how far the live heap may stay above where it
// started once a burst of keys is over: the shard table, the entries kept
// for reuse and small maps, a few tens of kilobytes; a map that kept the
// burst's room would hold megabytes.
const keyedMemoryBound = 256 << 10
