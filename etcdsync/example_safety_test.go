package etcdsync_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
)

// A session knows until when its lease lasts at least, and gives up before
// then if etcd stops answering, so that a holder cut off from etcd stops
// its work before anyone else can be granted what it holds.
func ExampleSession_Expiry() {
	r := exampleConnect("/example/expiry/")
	defer r.close()
	ctx := context.Background()

	p, err := etcdsync.NewLock(r.s, "report").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Cancelled, with cause ErrSessionLost, if the session gives up.
	work, cancel := p.Context(ctx)
	defer cancel()
	left := time.Until(r.s.Expiry())
	fmt.Println("lease lasts at least a while longer:", left > 0)
	fmt.Println("work may go on:", work.Err() == nil)
	if err := p.Release(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// lease lasts at least a while longer: true
	// work may go on: true
}

// A Release deferred with the request's context runs when that context
// may have ended. It then returns ctx.Err(), and the session gives the
// permit back in the background: the lock is not held for the rest of the
// session.
func ExamplePermit_Release() {
	r := exampleConnect("/example/release/")
	defer r.close()
	lock := etcdsync.NewLock(r.s, "job")

	handle := func(ctx context.Context, cancel context.CancelFunc) {
		p, err := lock.Lock(ctx)
		if err != nil {
			log.Fatal(err)
		}
		defer func() {
			if err := p.Release(ctx); err != nil {
				fmt.Println("release:", err)
			}
		}()
		cancel() // the client went away while the job held the lock
	}
	ctx, cancel := context.WithCancel(context.Background())
	handle(ctx, cancel)

	// The next request is granted the lock all the same.
	next, cancelNext := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelNext()
	p, err := lock.Lock(next)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("granted again")
	if err := p.Release(next); err != nil {
		log.Fatal(err)
	}
	// Output:
	// release: context canceled
	// granted again
}
