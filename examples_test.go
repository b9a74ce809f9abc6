package ctxsync_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ctxsync/ctxsync"
)

// A Lock guards a read-modify-write that spans a blocking call, and a
// caller that cannot wait long gives up through its context.
func ExampleLock() {
	var mu ctxsync.Lock
	balance := 100

	withdraw := func(ctx context.Context, amount int) error {
		if err := mu.Lock(ctx); err != nil {
			return err
		}
		defer mu.Unlock()
		b := balance
		time.Sleep(time.Millisecond) // a slow call in the middle
		balance = b - amount
		return nil
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { _ = withdraw(context.Background(), 10) })
	}
	wg.Wait()
	fmt.Println("balance:", balance)

	// Someone holds the lock; a caller with a deadline gives up.
	_ = mu.Lock(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(withdraw(ctx, 10))
	mu.Unlock()
	// Output:
	// balance: 0
	// context deadline exceeded
}

// A Semaphore lets at most three workers call a rate-limited service at a
// time.
func ExampleSemaphore() {
	sem := ctxsync.NewSemaphore(3)
	var mu sync.Mutex
	running, most := 0, 0

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := sem.Acquire(context.Background()); err != nil {
				return
			}
			defer sem.Release()
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(time.Millisecond) // the call to the service
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println("more than 3 at once:", most > 3, "- free permits:", sem.Available())
	// Output: more than 3 at once: false - free permits: 3
}

// A weighted request takes several permits at once; while it waits, smaller
// requests queue behind it instead of overtaking it.
func ExampleSemaphore_AcquireN() {
	ctx := context.Background()
	memory := ctxsync.NewSemaphore(10) // say, megabytes of a buffer pool
	_ = memory.AcquireN(ctx, 8)
	fmt.Println("small job may start:", memory.TryAcquireN(2))
	memory.ReleaseN(10)
	fmt.Println("free:", memory.Available())
	// Output:
	// small job may start: true
	// free: 10
}

// A BoundedSemaphore catches a Release that has no matching Acquire, which a
// plain Semaphore would silently count as an extra permit.
func ExampleBoundedSemaphore() {
	plain := ctxsync.NewSemaphore(2)
	plain.Release() // a bug: nothing was acquired
	fmt.Println("Semaphore grew to", plain.Available())

	bounded := ctxsync.NewBoundedSemaphore(2)
	defer func() { fmt.Println("BoundedSemaphore:", recover()) }()
	bounded.Release()
	// Output:
	// Semaphore grew to 3
	// BoundedSemaphore: ctxsync: BoundedSemaphore released more permits than are held
}
