package scenarios

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/ctxsync/ctxsync"
)

// CounterGoroutines is how many goroutines each add one to the counter.
const CounterGoroutines = 100

// Counter shows the shared-counter race: a read-modify-write with a
// blocking call in the middle loses updates, because every goroutine reads
// the old value before anyone writes. A Lock around the whole step fixes it.
func Counter(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	ctx := context.Background()

	// Without a lock. The barrier stands for the blocking call: it holds
	// each goroutine between its read and its write until all have read,
	// the worst case, and the one a busy service reaches.
	counter := 0
	var mu sync.Mutex // only to keep the race detector quiet; each access is still a separate step
	inTheMiddle := ctxsync.NewBarrier(CounterGoroutines)
	var wg sync.WaitGroup
	for range CounterGoroutines {
		wg.Go(func() {
			mu.Lock()
			v := counter
			mu.Unlock()
			if _, err := inTheMiddle.Wait(ctx); err != nil {
				return
			}
			mu.Lock()
			counter = v + 1
			mu.Unlock()
		})
	}
	wg.Wait()
	unlocked := counter
	out.printf("without a lock: %d increments, counter = %d\n", CounterGoroutines, unlocked)

	// With a Lock held across the read, the blocking call and the write.
	counter = 0
	var l ctxsync.Lock
	for range CounterGoroutines {
		wg.Go(func() {
			if err := l.Lock(ctx); err != nil {
				return
			}
			defer l.Unlock()
			v := counter
			time.Sleep(10 * time.Microsecond) // the blocking call
			counter = v + 1
		})
	}
	wg.Wait()
	out.printf("with a Lock:    %d increments, counter = %d\n", CounterGoroutines, counter)

	if err := expect("counter without a lock", unlocked, 1); err != nil {
		return err
	}
	return expect("counter with a Lock", counter, CounterGoroutines)
}
