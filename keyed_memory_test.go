package ctxsync_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// memoryKeys is how many distinct keys the memory tests go through, in
// bursts of a quarter of them held at once: 40,000 in normal runs (a burst
// grows each shard's table to 256 slots, which, kept, would break the
// bound), and 1,000,000 with -tags stress.
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

// A key takes memory only while it is held: after bursts of a quarter of
// memoryKeys distinct keys held at once, the heap goes back to within a
// small bound of where it started.
func TestKeyedLockGivesMemoryBack(t *testing.T) {
	var m ctxsync.KeyedLock[int]
	ctx := context.Background()
	require.NoError(t, m.Lock(ctx, -1)) // the table exists before the measure
	m.Unlock(-1)
	before := heapAfterGC()
	const burst = memoryKeys / 4
	for b := range 4 {
		for k := b * burst; k < (b+1)*burst; k++ {
			require.True(t, m.TryLock(k))
		}
		require.Equal(t, burst, m.Len())
		for k := b * burst; k < (b+1)*burst; k++ {
			m.Unlock(k)
		}
		require.Zero(t, m.Len())
	}
	after := heapAfterGC()
	t.Logf("heap before %d, after %d bytes", before, after)
	assert.Less(t, int64(after)-int64(before), int64(keyedMemoryBound))
	runtime.KeepAlive(&m)
}

func TestKeyedSemaphoreGivesMemoryBack(t *testing.T) {
	s := ctxsync.NewKeyedSemaphore[int](2)
	ctx := context.Background()
	before := heapAfterGC()
	const burst = memoryKeys / 4
	for b := range 4 {
		for k := b * burst; k < (b+1)*burst; k++ {
			require.NoError(t, s.AcquireN(ctx, k, 1+k%2))
		}
		require.Equal(t, burst, s.Len())
		for k := b * burst; k < (b+1)*burst; k++ {
			s.ReleaseN(k, 1+k%2)
		}
		require.Zero(t, s.Len())
	}
	after := heapAfterGC()
	t.Logf("heap before %d, after %d bytes", before, after)
	assert.Less(t, int64(after)-int64(before), int64(keyedMemoryBound))
	runtime.KeepAlive(s)
}

// A Group's map of calls in flight goes too, once a burst of keys is over.
// The runtime keeps the records of goroutines that ended for reuse, so a
// first burst warms them up before the measure.
func TestGroupGivesMemoryBack(t *testing.T) {
	var g ctxsync.Group[int, int]
	const burst = memoryKeys / 40
	groupBurst(t, &g, burst)
	before := heapAfterGC()
	groupBurst(t, &g, burst)
	after := heapAfterGC()
	t.Logf("heap before %d, after %d bytes", before, after)
	assert.Less(t, int64(after)-int64(before), int64(keyedMemoryBound))
	runtime.KeepAlive(&g)
}

// groupBurst runs calls for n keys at once, and waits until their
// goroutines have ended.
func groupBurst(t *testing.T, g *ctxsync.Group[int, int], n int) {
	release := make(chan struct{})
	var running sync.WaitGroup
	tickets := make([]*ctxsync.GroupTicket[int], n)
	for k := range n {
		running.Add(1)
		tickets[k] = g.DoTicket(k, func(context.Context) (int, error) {
			defer running.Done()
			<-release
			return k, nil
		})
	}
	require.Equal(t, n, g.InFlight())
	close(release)
	for k, tk := range tickets {
		<-tk.Ready()
		require.Equal(t, k, tk.Value())
	}
	running.Wait()
	require.Zero(t, g.InFlight())
}
