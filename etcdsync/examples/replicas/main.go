// Command replicas shows one vendor limit kept by 6 replicas of a service,
// each a real OS process (copies of this program), through etcd.
//
// A vendor API (a stub in this process) answers 429 Too Many Requests above
// 10 concurrent requests. The 6 replicas (-replicas), each with 12 requests
// in flight at most (-inflight), send it 1,000 requests in all (-requests):
//
//  1. each through a ctxsync.Semaphore(10) of its own: each replica keeps
//     its own 10, the vendor sees up to 60 at once and answers 429;
//  2. each through one etcdsync.Semaphore(10) shared in etcd: the vendor
//     sees at most 10 at once and never answers 429;
//  3. the same (300 requests, more for over 15 replicas), and one replica is killed (SIGKILL) while it
//     holds permits: the others finish, and the dead replica's permits come back when its
//     session's lease expires, within its TTL (2 s here).
//
// It starts an embedded etcd server, or uses an existing cluster:
//
//	go run ./examples/replicas
//	go run ./examples/replicas -endpoints 127.0.0.1:2379
//	go run ./examples/replicas -replicas 20 -inflight 4
//	go run ./examples/replicas -replicas 20 -inflight 100 -requests 4000
//
// It exits with status 1 when an outcome is wrong.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Set by the flags -replicas, -inflight and -requests.
var (
	replicas = 6
	workers  = 12 // requests in flight per replica: by default more than 10, so that each one's own Semaphore(10) is what limits it
	victim   = 4  // the replica killed in part 3: min(4, replicas-1)
	requests = 1000
	// killRequests is part 3's total, smaller: it is about the crash, and
	// a run of its own takes a while on a slow machine. More replicas
	// need more (see stallAfter).
	killRequests = 300
)

const (
	ttl = 2 * time.Second
	// slack is how much later than the TTL the dead replica's permits may
	// come back: etcd checks for expired leases twice a second, and the
	// machine may be slow.
	slack = 3 * time.Second
)

func main() {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(replica(conf))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err != nil && interrupted:
		fmt.Println("interrupted:", err)
		os.Exit(1)
	case err != nil:
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}

// run is the parent: the etcd server (or client of an existing one), the
// vendor stub, and the three parts.
func run(ctx context.Context, args []string, w io.Writer) (err error) {
	// What run prints goes through out, which keeps the first write error:
	// run returns it at the end.
	out := proc.NewNarrator(w)
	fs := flag.NewFlagSet("replicas", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "", "comma-separated etcd endpoints (host:port,...) of an existing cluster; default: start an embedded etcd server")
	fs.IntVar(&replicas, "replicas", replicas, "number of replica processes (at least 2: part 3 kills one)")
	fs.IntVar(&workers, "inflight", workers, "requests each replica keeps in flight at most (its worker goroutines)")
	fs.IntVar(&requests, "requests", requests, "requests all replicas send in parts 1 and 2")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if replicas < 2 || workers < 1 || requests < 1 {
		return fmt.Errorf("-replicas %d -inflight %d -requests %d: need at least 2 replicas, 1 request in flight and 1 request", replicas, workers, requests)
	}
	victim = min(4, replicas-1)
	killRequests = killRequestsFor(replicas)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	etcd, err := proc.ConnectEtcd(ctx, "replicas", *endpoints, out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, etcd.Close(ctx)) }()
	eps, cli, prefix, s := etcd.Endpoints, etcd.Client, etcd.Prefix, etcd.Session
	sem, err := etcdsync.NewSemaphore(ctx, s, "vendor", vendorLimit)
	if err != nil {
		return err
	}
	out.Printf("vendor: answers 429 above %d concurrent requests; %d replica processes send %d requests in all\n\n",
		vendorLimit, replicas, requests)
	base := replicaConfig{Endpoints: eps, Prefix: prefix, TTL: ttl, Workers: workers}

	// Part 1: a semaphore per replica.
	out.Printf("1) each replica limits itself with its own ctxsync.Semaphore(%d):\n", vendorLimit)
	base.Mode = "local"
	r, err := runReplicas(ctx, base, requests, nil, nil)
	if err != nil {
		return err
	}
	out.Printf("   the vendor saw up to %d requests in flight (limit %d) and answered 429 to %d of %d (%.1fs)\n",
		r.most, vendorLimit, r.tooMany, r.sent, r.took.Seconds())
	if r.sent != requests {
		return fmt.Errorf("part 1: %d requests answered, want %d", r.sent, requests)
	}
	// Only if the replicas can send more than the limit at once, each
	// within its own 10, can they overload the vendor.
	if canOverload := replicas*min(workers, vendorLimit) > vendorLimit; canOverload && (r.most <= vendorLimit || r.tooMany == 0) {
		return fmt.Errorf("part 1: separate semaphores should overload the vendor, but it saw at most %d in flight and %d 429s", r.most, r.tooMany)
	}

	// Part 2: one semaphore in etcd.
	out.Printf("2) all replicas share one etcdsync.Semaphore(%d):\n", vendorLimit)
	base.Mode = "etcd"
	r, err = runReplicas(ctx, base, requests, nil, nil)
	if err != nil {
		return err
	}
	out.Printf("   the vendor saw up to %d requests in flight and answered 429 to %d; %d/%d ok (%.1fs)\n",
		r.most, r.tooMany, r.ok, requests, r.took.Seconds())
	if err := r.check(requests); err != nil {
		return fmt.Errorf("part 2: %w", err)
	}

	// Part 3: a replica dies holding permits.
	out.Printf("3) the same with %d requests, and replica %d is killed (SIGKILL) while it holds permits (session TTL %s):\n",
		killRequests, victim, ttl)
	st := &stall{replica: strconv.Itoa(victim), after: stallAfter(shareOf(killRequests, victim)), n: hang, hung: make(chan struct{})}
	k := &kill{sem: sem, cli: cli}
	r, err = runReplicas(ctx, base, killRequests, st, k)
	if err != nil {
		return err
	}
	out.Printf("   replica %d had %d requests hanging at the vendor, each under a permit of its own, after %d requests in all: killed\n",
		victim, hang, k.okAtKill)
	out.Printf("   its lease (TTL %ds) expired %.1fs after the kill; until then its permits stayed held and the others had the rest:\n",
		k.ttl, k.expired.Seconds())
	out.Printf("   the vendor answered %d requests in that time, and %d after it\n", k.okAtExpiry-k.okAtKill, int64(r.sent)-k.okAtExpiry)
	out.Printf("   the other %d replicas finished their %d requests and exited %.1fs after the kill, with up to %d in flight and %d 429s all along;\n",
		replicas-1, r.ok-k.victimOK, k.othersDone.Seconds(), r.most, r.tooMany)
	held := ""
	if k.availableThen < vendorLimit {
		held = fmt.Sprintf(" (the dead replica's %d permits out)", vendorLimit-k.availableThen)
	}
	out.Printf("   Available was %d then%s, and %d of %d %.1fs after the kill\n", k.availableThen, held, vendorLimit, vendorLimit, k.restored.Seconds())
	if err := r.check(killRequests - shareOf(killRequests, victim) + k.victimOK); err != nil {
		return fmt.Errorf("part 3: %w", err)
	}
	if bound := time.Duration(k.ttl)*time.Second + slack; k.expired > bound {
		return fmt.Errorf("part 3: the dead replica's lease expired %.1fs after the kill, want within %s", k.expired.Seconds(), bound)
	}
	out.Printf("\nOK: one etcdsync.Semaphore kept %d processes within the vendor's limit, and a crash gave its permits back within the TTL\n", replicas)
	return out.Err()
}

// shareOf is replica i's part of total requests.
// hang is how many of the victim's requests hang at the vendor in part 3,
// each under a permit, when it is killed.
const hang = 4

// stallAfter is after how many answered requests of a share of part 3 the
// vendor makes the victim's requests hang: late in the share, but with at
// least hang of them sure to arrive afterwards. Requests that reach the
// vendor before then are answered; there are at most after-1 answered and
// vendorLimit in flight among them, so a share of at least
// after+vendorLimit-1+hang leaves hang to hang. (With 20 replicas and 300
// requests, a share of 15 left too few, and the victim finished its share
// before it could be killed.)
func stallAfter(share int) int {
	return max(0, min(share*3/5, share-hang-(vendorLimit-1)))
}

// killRequestsFor is part 3's total for n replicas: 300, or enough that
// every share leaves room for stallAfter.
func killRequestsFor(n int) int { return max(300, n*(hang+vendorLimit+6)) }

func shareOf(total, i int) int {
	n := total / replicas
	if i < total%replicas {
		n++
	}
	return n
}

// result is what the vendor measured during one part, and what the
// replicas reported.
type result struct {
	most, tooMany, sent int // sent: requests the vendor answered (200 or 429)
	ok                  int
	took                time.Duration
}

func (r result) check(ok int) error {
	if r.tooMany != 0 {
		return fmt.Errorf("the vendor answered 429 to %d requests", r.tooMany)
	}
	if r.most > vendorLimit {
		return fmt.Errorf("the vendor saw %d requests in flight at once, limit %d", r.most, vendorLimit)
	}
	if r.ok != ok {
		return fmt.Errorf("%d requests succeeded, want %d", r.ok, ok)
	}
	return nil
}

// kill is part 3's plan and what it saw: once the vendor hangs on enough
// of the victim's requests, the victim is killed; then the lease expiry
// and the semaphore's Available are followed from the parent.
type kill struct {
	sem *etcdsync.Semaphore
	cli *clientv3.Client

	ttl           int64 // the victim's lease TTL as granted, in seconds
	victimOK      int   // requests the victim completed before it died
	othersDone    time.Duration
	availableThen int
	okAtKill      int64         // requests the vendor had answered at the kill
	okAtExpiry    int64         // and when the victim's lease was seen gone
	expired       time.Duration // from the kill to the victim's lease being gone
	restored      time.Duration // from the kill to Available == size
}

// runReplicas runs one part: the vendor, the replicas, that all start on one
// "go" and send total requests between them, and their results. With st and k, the victim is killed once st has
// hung.
func runReplicas(ctx context.Context, base replicaConfig, total int, st *stall, k *kill) (result, error) {
	v := newVendor(st)
	defer v.close()
	var cs []*proc.Child
	defer func() { proc.KillAll(cs) }()
	leases := make([]clientv3.LeaseID, replicas)
	ttls := make([]int64, replicas)
	for i := range replicas {
		cfg := base
		cfg.ID, cfg.Vendor, cfg.Requests = i, v.URL(), shareOf(total, i)
		c, err := proc.Start(fmt.Sprintf("replica %d", i), roleEnv, cfg)
		if err != nil {
			return result{}, err
		}
		cs = append(cs, c)
	}
	// Every replica is set up (client, session, semaphore) before any
	// sends a request, so they really run at the same time.
	for i, c := range cs {
		kv, err := c.Expect(ctx, "ready")
		if err != nil {
			return result{}, err
		}
		if kv["lease"] != "" {
			l, _ := strconv.ParseInt(kv["lease"], 10, 64)
			t, _ := strconv.ParseInt(kv["ttl"], 10, 64)
			leases[i], ttls[i] = clientv3.LeaseID(l), t
		}
	}
	start := time.Now()
	for _, c := range cs {
		if err := c.Send("go"); err != nil {
			return result{}, err
		}
	}

	var killedAt time.Time
	var expired chan time.Duration
	if k != nil {
		select {
		case <-st.hung:
		case <-cs[victim].Exited():
			return result{}, fmt.Errorf("replica %d exited before it was killed: %v", victim, cs[victim].Err())
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
		cs[victim].Kill()
		killedAt = time.Now()
		k.okAtKill = v.ok.Load()
		v.mu.Lock()
		k.victimOK = v.okBy[strconv.Itoa(victim)]
		v.mu.Unlock()
		k.ttl = ttls[victim]
		expired = make(chan time.Duration, 1)
		go func() {
			d := leaseGone(ctx, k.cli, leases[victim], killedAt)
			k.okAtExpiry = v.ok.Load()
			expired <- d
		}()
	}

	var r result
	for i, c := range cs {
		if k != nil && i == victim {
			continue
		}
		kv, err := c.Expect(ctx, "result")
		if err != nil {
			return result{}, err
		}
		if err := c.Wait(ctx); err != nil {
			return result{}, fmt.Errorf("%s: %w", c.Name(), err)
		}
		n, _ := strconv.Atoi(kv["ok"])
		r.ok += n
	}
	r.took = time.Since(start)
	if k != nil {
		r.ok += k.victimOK
		k.othersDone = time.Since(killedAt)
		n, err := k.sem.Available(ctx)
		if err != nil {
			return result{}, err
		}
		k.availableThen = n
		// Poll until every permit is back: the dead replica's come back
		// when its lease expires, within the TTL (and slack) of the kill;
		// if the others took longer than that, at once. Past that, the
		// outcome is wrong.
		deadline := max(time.Until(killedAt.Add(time.Duration(k.ttl)*time.Second+slack)), time.Second)
		pctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		for n != vendorLimit {
			if err := pause(pctx, 20*time.Millisecond); err != nil {
				return result{}, fmt.Errorf("the semaphore has %d available, not %d, %.1fs after the kill", n, vendorLimit, time.Since(killedAt).Seconds())
			}
			if n, err = k.sem.Available(ctx); err != nil {
				return result{}, err
			}
		}
		k.restored = time.Since(killedAt)
		k.expired = <-expired
		if k.expired < 0 {
			return result{}, errors.New("the dead replica's lease did not expire")
		}
	}
	r.most, r.tooMany = int(v.most.Load()), int(v.tooMany.Load())
	r.sent = int(v.ok.Load()) + r.tooMany
	return r, nil
}

// leaseGone polls etcd until the lease is gone, and returns how long after
// since that was; -1 if ctx ended first.
func leaseGone(ctx context.Context, cli *clientv3.Client, lease clientv3.LeaseID, since time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		resp, err := cli.TimeToLive(ctx, lease)
		if err == nil && resp.TTL == -1 {
			return time.Since(since)
		}
		if pause(ctx, 20*time.Millisecond) != nil {
			return -1
		}
	}
}

// pause waits d, or less if ctx ends (then it returns ctx.Err()): the
// interval of a poll that has a deadline.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
