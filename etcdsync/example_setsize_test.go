package etcdsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/ctxsync/ctxsync"
	"github.com/ctxsync/ctxsync/etcdsync"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The vendor lowers its limit from 3 to 1 concurrent requests while a
// replica has 2 in flight: one replica sets the new size for all, the
// requests in flight go on, and nobody new is let in until they are done.
func ExampleSemaphore_SetSize() {
	const prefix = "/example/setsize/"
	ctx := context.Background()
	a, b := exampleConnect(prefix), exampleConnect(prefix)
	defer a.close()
	defer b.close()
	// The size outlives every process: start this example afresh.
	if _, err := a.cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
		log.Fatal(err)
	}
	ma, err := etcdsync.NewSemaphore(ctx, a.s, "vendor", 3)
	if err != nil {
		log.Fatal(err)
	}
	mb, err := etcdsync.NewSemaphore(ctx, b.s, "vendor", 3)
	if err != nil {
		log.Fatal(err)
	}
	held, err := ma.AcquireN(ctx, 2)
	if err != nil {
		log.Fatal(err)
	}

	// The new limit, set by whichever replica read the new configuration.
	if err := mb.SetSize(ctx, 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("size:", mb.Size())
	_, err = mb.TryAcquire(ctx)
	fmt.Println("while 2 are in flight:", errors.Is(err, etcdsync.ErrWouldBlock))
	_, err = mb.AcquireN(ctx, 2)
	fmt.Println("2 at once, ever:", errors.Is(err, ctxsync.ErrExceedsBound))

	if err := held.Release(ctx); err != nil {
		log.Fatal(err)
	}
	p, err := mb.TryAcquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("once they are done: granted", p.N())
	if err := p.Release(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// size: 1
	// while 2 are in flight: true
	// 2 at once, ever: true
	// once they are done: granted 1
}
