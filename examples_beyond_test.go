package ctxsync_test

import (
	"context"
	"fmt"
	"runtime"

	"github.com/ctxsync/ctxsync"
)

// A limit on requests in flight, lowered and raised at run time. Requests
// already in flight finish normally; the permits above a lowered limit are
// retired as they come back, and a raised limit lets waiters in at once.
func ExampleBoundedSemaphore_SetBound() {
	ctx := context.Background()
	inFlight := ctxsync.NewBoundedSemaphore(3)
	_ = inFlight.AcquireN(ctx, 3) // three requests in flight

	inFlight.SetBound(1) // the backend is struggling
	fmt.Println("bound", inFlight.Bound(), "available", inFlight.Available())
	inFlight.Release()
	inFlight.Release()
	fmt.Println("two done, available", inFlight.Available())

	// A new request waits for room; raising the limit serves it at once.
	batch := make(chan error, 1)
	go func() { batch <- inFlight.Acquire(ctx) }()
	for inFlight.Waiting() == 0 {
		runtime.Gosched() // until the batch is in line
	}
	inFlight.SetBound(4)
	fmt.Println("raised:", <-batch, "available", inFlight.Available())

	// A waiting request that a lower limit can never serve fails at once.
	big := make(chan error, 1)
	go func() { big <- inFlight.AcquireN(ctx, 4) }()
	for inFlight.Waiting() == 0 {
		runtime.Gosched()
	}
	inFlight.SetBound(3)
	fmt.Println("lowered:", <-big)
	inFlight.ReleaseN(2)
	fmt.Println("all done, available", inFlight.Available())
	// Output:
	// bound 1 available 0
	// two done, available 0
	// raised: <nil> available 2
	// lowered: ctxsync: request exceeds semaphore bound
	// all done, available 3
}

// A bulk writer takes up to 100 rows at a time, so that each insert
// carries as many rows as are waiting, and counts every row done for Join.
func ExampleQueue_GetMany() {
	ctx := context.Background()
	rows := ctxsync.NewQueue[string](0)
	for i := range 250 {
		_ = rows.Put(ctx, fmt.Sprintf("row %d", i))
	}
	rows.Shutdown() // no more rows; the writer drains what is there

	batch := make([]string, 100) // reused: GetMany allocates nothing
	for {
		n, err := rows.GetMany(ctx, batch)
		if err != nil {
			fmt.Println("writer stops:", err)
			break
		}
		fmt.Printf("insert %d rows, %s .. %s\n", n, batch[0], batch[n-1])
		for range n {
			rows.TaskDone() // one per row
		}
	}
	fmt.Println("join:", rows.Join(ctx))
	// Output:
	// insert 100 rows, row 0 .. row 99
	// insert 100 rows, row 100 .. row 199
	// insert 50 rows, row 200 .. row 249
	// writer stops: ctxsync: queue shut down
	// join: <nil>
}

// A server sheds load when too many requests already wait for a worker,
// instead of letting its latency grow without end.
func ExampleSemaphore_Waiting() {
	workers := ctxsync.NewSemaphore(1)
	const maxWaiting = 2
	handle := func(ctx context.Context) error {
		if workers.Waiting() >= maxWaiting {
			return fmt.Errorf("busy: %d waiting", workers.Waiting())
		}
		if err := workers.Acquire(ctx); err != nil {
			return err
		}
		defer workers.Release()
		return nil
	}

	_ = workers.Acquire(context.Background()) // the one worker is busy
	results := make(chan error, maxWaiting)
	for range maxWaiting {
		go func() { results <- handle(context.Background()) }()
	}
	for workers.Waiting() < maxWaiting {
		runtime.Gosched() // until both are in line
	}
	fmt.Println(handle(context.Background()))
	workers.Release()
	for range maxWaiting {
		fmt.Println(<-results)
	}
	// Output:
	// busy: 2 waiting
	// <nil>
	// <nil>
}
