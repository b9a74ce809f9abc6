package ctxsync_test

import (
	"sync"
	"testing"
)

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
