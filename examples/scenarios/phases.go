package scenarios

import (
	"context"
	"io"
	"slices"
	"sync"

	"github.com/ctxsync/ctxsync"
)

// Phases shows a Barrier lining workers up: each loads its shard, then all
// compute, then all write, and no worker starts a phase before every
// worker has finished the one before.
func Phases(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	ctx := context.Background()
	const workers = 4
	phases := []string{"load", "compute", "write"}
	barrier := ctxsync.NewBarrier(workers)

	var mu sync.Mutex
	var log []int // the phase of every step, in the order steps happen
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range phases {
				mu.Lock()
				log = append(log, p)
				mu.Unlock()
				if i, err := barrier.Wait(ctx); err != nil {
					return
				} else if i == workers-1 {
					out.printf("  all %d workers finished %q\n", workers, phases[p])
				}
			}
		})
	}
	wg.Wait()
	inOrder := slices.IsSorted(log)
	out.printf("%d steps, phases never overlapped: %v\n", len(log), inOrder)
	if err := expect("steps", len(log), workers*len(phases)); err != nil {
		return err
	}
	return expect("phases in order", inOrder, true)
}
