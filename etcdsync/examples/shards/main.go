// Command shards shows 4 shard processes lining up at an etcdsync.Barrier
// between two phases of a job, each shard a real OS process (a copy of
// this program), coordinated through etcd.
//
// In phase 1 each shard computes its part of a sum and writes it to etcd;
// in phase 2 each reads every part, so none may start phase 2 before all
// have finished phase 1: they wait at a Barrier of 4 parties.
//
//  1. shards 0 and 1 and a first shard 3 finish phase 1 and wait at the
//     barrier;
//  2. shard 3 is killed (SIGKILL) while it waits: its session's lease
//     expires within the TTL (2 s here) and it is withdrawn;
//  3. shard 2 arrives: the barrier does not trip, since it never counts a
//     dead party (3 wait, not 4);
//  4. a replacement shard 3 arrives: the round trips, the 4 live shards
//     are released with the indexes 0..3 in the order they arrived, and
//     each finds all 4 parts in phase 2.
//
// It starts an embedded etcd server, or uses an existing cluster:
//
//	go run ./examples/shards
//	go run ./examples/shards -endpoints 127.0.0.1:2379
//
// It exits with status 1 when an outcome is wrong.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	shards  = 4
	ttl     = 2 * time.Second
	barrier = "phase-1-done"
	// slack is how much later than the TTL the dead shard may still be
	// counted: etcd checks for expired leases twice a second, and the
	// machine may be slow.
	slack = 3 * time.Second
	// roleEnv, when set, makes this program a shard with that
	// configuration (JSON) instead of the coordinator.
	roleEnv = "ETCDSYNC_SHARDS_ROLE"
	// rows is the size of the job: the sum of 1..rows, split by shard.
	rows = 1_000_000
)

func main() {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(shard(conf))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}

// config is what a shard process is told.
type config struct {
	Endpoints []string
	Prefix    string
	Shard     int
	Name      string // "shard 3", "shard 3 (replacement)"
	TTL       time.Duration
}

// run is the coordinator: the etcd server (or a client of an existing
// one), the shard processes, and the checks.
func run(ctx context.Context, args []string, w io.Writer) (err error) {
	// What run prints goes through out, which keeps the first write error:
	// run returns it at the end.
	out := proc.NewNarrator(w)
	fs := flag.NewFlagSet("shards", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "", "comma-separated etcd endpoints (host:port,...) of an existing cluster; default: start an embedded etcd server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	etcd, err := proc.ConnectEtcd(ctx, "shards", *endpoints, out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, etcd.Close(ctx)) }()
	eps, prefix, s := etcd.Endpoints, etcd.Prefix, etcd.Session
	// The coordinator makes the barrier too, only to watch it: it never
	// waits at it.
	b, err := etcdsync.NewBarrier(ctx, s, barrier, shards)
	if err != nil {
		return err
	}

	events := make(chan event, 256) // a few lines per shard: never full
	var procs []*proc.Child
	defer func() { proc.KillAll(procs) }()
	start := func(n int, name string) (*proc.Child, error) {
		c, err := proc.Start(name, roleEnv, config{Endpoints: eps, Prefix: prefix, Shard: n, Name: name, TTL: ttl})
		if err != nil {
			return nil, err
		}
		procs = append(procs, c)
		go forward(c, events)
		return c, nil
	}
	// arrive starts a shard and returns once the barrier counts it as the
	// waiting-th party of the round.
	arrive := func(n int, name string, waiting int) (*proc.Child, error) {
		p, err := start(n, name)
		if err != nil {
			return nil, err
		}
		if err := until(ctx, b, waiting, events); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out.Printf("   %s finished phase 1 and waits at the barrier (%d of %d waiting)\n", name, waiting, shards)
		return p, nil
	}

	out.Printf("job: the sum of 1..%d in %d shard processes; phase 2 needs every shard's phase 1 (barrier of %d parties, session TTL %s)\n\n",
		rows, shards, shards, ttl)
	out.Println("1) three shards arrive:")
	for i, n := range []int{0, 1, 3} {
		if _, err := arrive(n, fmt.Sprintf("shard %d", n), i+1); err != nil {
			return err
		}
	}
	victim := procs[2]

	out.Println("2) shard 3 is killed (SIGKILL) while it waits:")
	killed := time.Now()
	victim.Kill()
	if err := until(ctx, b, 2, events); err != nil {
		return fmt.Errorf("after the kill: %w", err)
	}
	gone := time.Since(killed)
	out.Printf("   its lease expired %.1fs after the kill: it is withdrawn (2 of %d waiting)\n", gone.Seconds(), shards)
	if bound := ttl + slack; gone > bound {
		return fmt.Errorf("the dead shard was withdrawn %.1fs after the kill, want within %s", gone.Seconds(), bound)
	}

	out.Println("3) shard 2 arrives:")
	// Waiting reaches 3 only if its arrival did not trip the round: a
	// trip would take it from 2 to 0.
	if _, err := arrive(2, "shard 2", 3); err != nil {
		return err
	}
	out.Println("   the barrier did not trip: the dead shard is not counted")

	out.Println("4) a replacement shard 3 arrives:")
	if _, err := start(3, "shard 3 (replacement)"); err != nil {
		return err
	}
	released := map[string]int{}
	sums := map[string]string{}
	for len(sums) < shards {
		select {
		case ev := <-events:
			switch ev.word {
			case "released":
				released[ev.name], _ = strconv.Atoi(ev.fields["index"])
				out.Printf("   %s released with index %s\n", ev.name, ev.fields["index"])
			case "phase2":
				sums[ev.name] = ev.fields["sum"]
			case "exit":
				if _, ok := sums[ev.name]; !ok && ev.child != victim {
					return fmt.Errorf("%s exited early: %s", ev.name, ev.fields["err"])
				}
			case "failed":
				return fmt.Errorf("%s: %s", ev.name, ev.fields["err"])
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for phase 2: %w (released: %v)", ctx.Err(), released)
		}
	}
	for _, c := range procs {
		if c == victim {
			continue
		}
		if err := c.Wait(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
	}

	// The checks: the 4 live shards, indexes 0..3 by arrival, and every
	// shard saw every part in phase 2.
	want := map[string]int{"shard 0": 0, "shard 1": 1, "shard 2": 2, "shard 3 (replacement)": 3}
	if len(released) != shards {
		return fmt.Errorf("%d shards released, want %d: %v", len(released), shards, released)
	}
	for name, i := range want {
		if got, ok := released[name]; !ok || got != i {
			return fmt.Errorf("%s released with index %d (%v), want %d", name, got, ok, i)
		}
	}
	total := strconv.Itoa(rows * (rows + 1) / 2)
	for name, sum := range sums {
		if sum != total {
			return fmt.Errorf("%s computed %s in phase 2, want %s: it started before every part was in", name, sum, total)
		}
	}
	n, err := b.Waiting(ctx)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%d still waiting after the trip, want 0", n)
	}
	out.Printf("   phase 2: each of the 4 live shards read all %d parts and computed %s\n", shards, total)
	out.Println("\nOK: the shards lined up at one etcdsync.Barrier; a shard killed while it waited was withdrawn, and the round tripped only with 4 live shards")
	return out.Err()
}

// until waits until the barrier counts waiting parties, failing early if a
// shard reports a failure or is released.
func until(ctx context.Context, b *etcdsync.Barrier, waiting int, events <-chan event) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := b.Waiting(ctx)
		if err != nil {
			return err
		}
		if n == waiting {
			return nil
		}
		select {
		case ev := <-events:
			switch ev.word {
			case "released":
				return fmt.Errorf("%s was released while only %d of %d should wait", ev.name, waiting, shards)
			case "failed":
				return fmt.Errorf("%s: %s", ev.name, ev.fields["err"])
			}
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d parties at the barrier (%d now): %w", waiting, n, ctx.Err())
		}
	}
}

// shard is the program in a shard process: phase 1, the barrier, phase 2.
// It reports on stdout, one line each, and exits when its stdin ends (the
// coordinator is gone), so that it never outlives the coordinator.
func shard(conf string) (code int) {
	var c config
	if err := json.Unmarshal([]byte(conf), &c); err != nil {
		fmt.Println("failed err=" + strconv.Quote(err.Error()))
		return 1
	}
	_ = proc.Commands() // exits when stdin ends: the coordinator is gone
	fail := func(err error) int {
		fmt.Printf("failed err=%s\n", strconv.Quote(err.Error()))
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// closed reports a failed close, and fails the shard.
	closed := func(what string, err error) {
		if err != nil {
			code = fail(fmt.Errorf("close %s: %w", what, err))
		}
	}
	cli, err := proc.NewClient(c.Endpoints)
	if err != nil {
		return fail(err)
	}
	defer func() { closed("etcd client", cli.Close()) }()
	s, err := etcdsync.NewSession(ctx, cli, etcdsync.WithPrefix(c.Prefix), etcdsync.WithTTL(c.TTL))
	if err != nil {
		return fail(err)
	}
	defer func() { closed("session", s.Close(context.WithoutCancel(ctx))) }()
	b, err := etcdsync.NewBarrier(ctx, s, barrier, shards)
	if err != nil {
		return fail(err)
	}

	// Phase 1: this shard's part of the sum, written to etcd.
	part := 0
	for i := c.Shard + 1; i <= rows; i += shards {
		part += i
	}
	if _, err := cli.Put(ctx, c.Prefix+"parts/"+strconv.Itoa(c.Shard), strconv.Itoa(part)); err != nil {
		return fail(err)
	}
	fmt.Println("arrived")
	index, err := b.Wait(ctx)
	if err != nil {
		return fail(err)
	}
	fmt.Printf("released index=%d\n", index)

	// Phase 2: every part.
	resp, err := cli.Get(ctx, c.Prefix+"parts/", clientv3.WithPrefix())
	if err != nil {
		return fail(err)
	}
	sum := 0
	for _, kv := range resp.Kvs {
		n, _ := strconv.Atoi(string(kv.Value))
		sum += n
	}
	fmt.Printf("phase2 parts=%d sum=%d\n", len(resp.Kvs), sum)
	return 0
}

// event is one line a shard process printed, or its exit.
type event struct {
	child  *proc.Child
	name   string
	word   string
	fields map[string]string
}

// forward passes the lines a shard prints on to events, and then its exit.
// It ends when the shard has exited: the parent kills every shard on its
// way out.
func forward(c *proc.Child, events chan<- event) {
	for {
		line, err := c.Next(context.Background())
		if err != nil { // io.EOF: its stdout has ended
			break
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		ev := event{child: c, name: c.Name(), word: f[0], fields: map[string]string{}}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			ev.fields[k] = v
		}
		events <- ev
	}
	<-c.Exited()
	msg := "exit status 0"
	if c.Err() != nil {
		msg = c.Err().Error()
	}
	events <- event{child: c, name: c.Name(), word: "exit", fields: map[string]string{"err": msg}}
}
