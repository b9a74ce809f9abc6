package ctxsync_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ctxsync/ctxsync"
)

// Acquire a permit or give up after a timeout, in a select: the ticket's
// Ready next to a timer. A permit granted just as we give up is given back.
func ExampleSemaphore_AcquireTicket() {
	sem := ctxsync.NewSemaphore(1)
	_ = sem.TryAcquire() // someone else holds the only permit

	acquireWithin := func(d time.Duration) error {
		t := sem.AcquireTicket(1)
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-t.Ready():
			return t.Err() // nil: we hold the permit
		case <-timer.C:
			if !t.Stop() && t.Err() == nil {
				sem.Release() // granted as we gave up: give it back
			}
			return fmt.Errorf("no permit within %v", d)
		}
	}

	fmt.Println(acquireWithin(10 * time.Millisecond))
	sem.Release() // the other holder is done
	fmt.Println(acquireWithin(10*time.Millisecond), sem.Available())
	sem.Release()

	// A request that can never be served is decided at once.
	bounded := ctxsync.NewBoundedSemaphore(2)
	fmt.Println(bounded.AcquireTicket(3).Err())
	// Output:
	// no permit within 10ms
	// <nil> 0
	// ctxsync: request exceeds semaphore bound
}

// Take an item from whichever of two queues has one first. The ticket on
// the other queue is stopped; if it was handed an item meanwhile, that item
// is ours too and is handled, not lost.
func ExampleQueue_GetTicket() {
	var urgent, normal ctxsync.Queue[string]

	takeFirst := func(ctx context.Context) ([]string, error) {
		u, n := urgent.GetTicket(), normal.GetTicket()
		select {
		case <-u.Ready():
		case <-n.Ready():
		case <-ctx.Done():
		}
		var got []string
		for _, t := range []*ctxsync.GetTicket[string]{u, n} {
			// Stop returns false once the Get is decided: then, with a
			// nil Err, the item was handed to us.
			if !t.Stop() && t.Err() == nil {
				got = append(got, t.Item())
			}
		}
		if len(got) == 0 {
			return nil, ctx.Err()
		}
		return got, nil
	}

	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = normal.Put(ctx, "report") // arrives while we wait
	}()
	got, _ := takeFirst(ctx)
	<-done
	fmt.Println(got)

	_ = urgent.TryPut("page the on-call")
	got, _ = takeFirst(ctx)
	fmt.Println(got)

	expired, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err := takeFirst(expired)
	fmt.Println(err)
	// Output:
	// [report]
	// [page the on-call]
	// context deadline exceeded
}

// Give up waiting for a lock when a shutdown channel closes: the ticket
// waits in a select next to that channel, which no context need stand for.
func ExampleLock_LockTicket() {
	var mu ctxsync.Lock
	shutdown := make(chan struct{})

	_ = mu.Lock(context.Background()) // a long job holds the lock

	result := make(chan string)
	go func() {
		t := mu.LockTicket()
		select {
		case <-t.Ready():
			defer mu.Unlock()
			result <- "got the lock"
		case <-shutdown:
			if !t.Stop() && t.Err() == nil {
				mu.Unlock() // handed over as we gave up
			}
			result <- "gave up: shutting down"
		}
	}()

	close(shutdown)
	fmt.Println(<-result)
	mu.Unlock() // the long job ends
	fmt.Println("locked after the job:", mu.Locked())
	// Output:
	// gave up: shutting down
	// locked after the job: false
}
