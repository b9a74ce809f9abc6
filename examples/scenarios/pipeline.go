package scenarios

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ctxsync/ctxsync"
)

// Pipeline shows the Queue jobs: a producer feeding workers through a
// bounded queue, Join to wait until every item is processed and a graceful
// Shutdown to let the workers go; then a priority job queue and a LIFO
// queue.
func Pipeline(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	ctx := context.Background()

	// Producer/consumer with Join and Shutdown.
	const items, workers = 1000, 4
	q := ctxsync.NewQueue[int](16)
	var sum atomic.Int64
	var processed [workers]int
	var wg sync.WaitGroup
	for id := range workers {
		wg.Go(func() {
			for {
				n, err := q.Get(ctx)
				if err != nil {
					return // shut down and drained
				}
				sum.Add(int64(n))
				processed[id]++
				q.TaskDone()
			}
		})
	}
	for n := 1; n <= items; n++ {
		if err := q.Put(ctx, n); err != nil {
			return err
		}
	}
	if err := q.Join(ctx); err != nil {
		return err
	}
	out.printf("pipeline: %d items processed by %d workers, sum %d\n", items, workers, sum.Load())
	q.Shutdown()
	wg.Wait()
	out.println("  after Shutdown every worker has left; Put says:", q.Put(ctx, 0))

	// A priority job queue: urgent jobs first, equal ones in order.
	type job struct {
		priority int
		name     string
	}
	jobs := ctxsync.NewPriorityQueue(0, func(a, b job) bool { return a.priority < b.priority })
	for _, j := range []job{{3, "reindex"}, {1, "charge card"}, {2, "send receipt"}, {1, "reserve stock"}} {
		if err := jobs.TryPut(j); err != nil {
			return err
		}
	}
	var order []string
	for !jobs.Empty() {
		j, _ := jobs.TryGet()
		order = append(order, j.name)
	}
	out.printf("priority jobs run as: %s\n", strings.Join(order, ", "))

	// A LIFO queue: the browser's back button.
	history := ctxsync.NewLifoQueue[string](0)
	for _, page := range []string{"home", "search", "product"} {
		_ = history.TryPut(page)
	}
	back, _ := history.TryGet()
	out.printf("LIFO: back from %q\n", back)

	if err := expect("pipeline sum", sum.Load(), int64(items*(items+1)/2)); err != nil {
		return err
	}
	if err := expect("priority order", strings.Join(order, ","), "charge card,reserve stock,send receipt,reindex"); err != nil {
		return err
	}
	return expect("LIFO", back, "product")
}
