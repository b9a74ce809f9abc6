package etcdsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// exampleReplica is one process of the examples: a client of its own and a
// session on it. In a real service each replica runs this once at start.
type exampleReplica struct {
	cli *clientv3.Client
	s   *etcdsync.Session
}

// exampleConnect plays one replica starting up. The examples run against
// the etcd server that TestMain started; a real service dials its own.
func exampleConnect(prefix string) exampleReplica {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   server.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		log.Fatal(err)
	}
	s, err := etcdsync.NewSession(context.Background(), cli, etcdsync.WithPrefix(prefix))
	if err != nil {
		log.Fatal(err)
	}
	return exampleReplica{cli, s}
}

// close plays the replica shutting down: Close revokes the lease, which
// gives back everything the replica still held.
func (r exampleReplica) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.s.Close(ctx); err != nil {
		log.Print(err)
	}
	_ = r.cli.Close()
}

func ExampleNewSession() {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   server.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := cli.Close(); err != nil {
			log.Print(err)
		}
	}()

	ctx := context.Background()
	// One session per process; every Lock and Semaphore of the process
	// shares it. A process that dies loses what it held after the TTL.
	s, err := etcdsync.NewSession(ctx, cli,
		etcdsync.WithTTL(10*time.Second),
		etcdsync.WithPrefix("/example/session/"))
	if err != nil {
		log.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx, s.Lease())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("lease TTL:", ttl.GrantedTTL, "s")

	// Close at shutdown gives back at once what the process still holds.
	if err := s.Close(ctx); err != nil {
		log.Fatal(err)
	}
	<-s.Done()
	fmt.Println("session done")
	// Output:
	// lease TTL: 10 s
	// session done
}

// Only one replica runs the migration: the others find the lock taken and
// go on, or wait for it.
func ExampleLock() {
	const prefix = "/example/lock/"
	replicas := []exampleReplica{exampleConnect(prefix), exampleConnect(prefix)}
	defer func() {
		for _, r := range replicas {
			r.close()
		}
	}()
	ctx := context.Background()

	var running *etcdsync.Permit
	for i, r := range replicas {
		p, err := etcdsync.NewLock(r.s, "migration").TryLock(ctx)
		switch {
		case errors.Is(err, etcdsync.ErrWouldBlock):
			fmt.Printf("replica %d: another replica migrates\n", i)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("replica %d: migrating\n", i)
			running = p
		}
	}

	// Replica 1 waits for the lock; replica 0 releases it when done.
	granted := make(chan *etcdsync.Permit)
	go func() {
		p, err := etcdsync.NewLock(replicas[1].s, "migration").Lock(ctx)
		if err != nil {
			log.Fatal(err)
		}
		granted <- p
	}()
	if err := running.Release(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("replica 0: done")
	p := <-granted
	fmt.Println("replica 1: has the lock, token higher:", p.Token() > running.Token())
	if err := p.Release(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// replica 0: migrating
	// replica 1: another replica migrates
	// replica 0: done
	// replica 1: has the lock, token higher: true
}

// The vendor allows 2 concurrent requests; the service runs as 3 replicas.
func ExampleSemaphore() {
	const prefix = "/example/semaphore/"
	var vendor []*etcdsync.Semaphore
	ctx := context.Background()
	for range 3 {
		r := exampleConnect(prefix)
		defer r.close()
		// Every replica names the same size; the first fixes it.
		m, err := etcdsync.NewSemaphore(ctx, r.s, "vendor", 2)
		if err != nil {
			log.Fatal(err)
		}
		vendor = append(vendor, m)
	}

	call := func(i int) *etcdsync.Permit {
		p, err := vendor[i].TryAcquireN(ctx, 1)
		if errors.Is(err, etcdsync.ErrWouldBlock) {
			fmt.Printf("replica %d: vendor busy\n", i)
			return nil
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("replica %d: calling the vendor\n", i)
		return p
	}
	p0, p1 := call(0), call(1)
	_ = call(2)
	free, err := vendor[2].Available(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("available:", free)

	// Replica 0's request is over: replica 2 can go.
	if err := p0.Release(ctx); err != nil {
		log.Fatal(err)
	}
	p2, err := vendor[2].Acquire(ctx) // waits, in line, when none is free
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("replica 2: calling the vendor")
	for _, p := range []*etcdsync.Permit{p1, p2} {
		if err := p.Release(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// replica 0: calling the vendor
	// replica 1: calling the vendor
	// replica 2: vendor busy
	// available: 0
	// replica 2: calling the vendor
}

// When the protected state lives in etcd, make each write conditional on
// still holding the permit: a holder whose lease ended (paused, cut off)
// writes nothing, even before it learns that it lost the lock.
func ExamplePermit_Guard() {
	const prefix = "/example/guard/"
	r := exampleConnect(prefix)
	defer r.close()
	ctx := context.Background()
	key := prefix + "config"

	p, err := etcdsync.NewLock(r.s, "config").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	write := func(value string) bool {
		resp, err := r.cli.Txn(ctx).If(p.Guard()).Then(clientv3.OpPut(key, value)).Commit()
		if err != nil {
			log.Fatal(err)
		}
		return resp.Succeeded
	}
	fmt.Println("write while held:", write("v1"))
	if err := p.Release(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("write after release:", write("v2"))

	resp, err := r.cli.Get(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s\n", resp.Kvs[0].Key, resp.Kvs[0].Value)
	// Output:
	// write while held: true
	// write after release: false
	// /example/guard/config = v1
}

// exampleStorage is a resource outside etcd that fences its writers: it
// refuses a token lower than the highest it has seen.
type exampleStorage struct {
	highest int64
	data    string
}

func (st *exampleStorage) Write(token int64, data string) error {
	if token < st.highest {
		return fmt.Errorf("stale token %d < %d", token, st.highest)
	}
	st.highest, st.data = token, data
	return nil
}

// A lease-based lock cannot stop a paused holder from writing after it
// lost the lock; the token lets the resource refuse it.
func ExamplePermit_Token() {
	const prefix = "/example/token/"
	a, b := exampleConnect(prefix), exampleConnect(prefix)
	defer a.close()
	defer b.close()
	ctx := context.Background()
	var storage exampleStorage

	first, err := etcdsync.NewLock(a.s, "storage").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first holder writes:", storage.Write(first.Token(), "a"))
	// Here the first holder would pause past its TTL; its lock goes to
	// the next process. Released here to keep the example short.
	if err := first.Release(ctx); err != nil {
		log.Fatal(err)
	}

	second, err := etcdsync.NewLock(b.s, "storage").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second holder writes:", storage.Write(second.Token(), "b"))
	// The first holder wakes up and writes with its old token.
	fmt.Println("late write refused:", storage.Write(first.Token(), "late") != nil)
	fmt.Println("data:", storage.data)
	if err := second.Release(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// first holder writes: <nil>
	// second holder writes: <nil>
	// late write refused: true
	// data: b
}
