// Command migrate shows "only one replica runs the migration" with an
// etcdsync.Lock across real OS processes (copies of this program), and why
// the lock's fencing token must be checked by what it protects.
//
//  1. 5 processes start at once. Each takes the Lock; the first to hold it
//     runs the migration (a write to a storage stub, with its fencing
//     token) and marks it done in etcd, in a transaction guarded by its
//     permit; the others find it done and skip it.
//  2. A process holds the Lock and pauses for longer than its TTL (the
//     parent revokes its session's lease, as etcd does when the TTL runs
//     out). Another process gets the Lock, with a higher token, and writes.
//     The first wakes up and writes with its old token: the storage, which
//     remembers the highest token it has seen, refuses it, and so does an
//     etcd transaction guarded by its permit.
//
// It starts an embedded etcd server, or uses an existing cluster:
//
//	go run ./examples/migrate
//	go run ./examples/migrate -endpoints 127.0.0.1:2379
//
// It exits with status 1 when an outcome is wrong.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	migrators = 5
	ttl       = 2 * time.Second
)

func main() {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(worker(conf))
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
// storage stub, and the two parts.
func run(ctx context.Context, args []string, w io.Writer) (err error) {
	// What run prints goes through out, which keeps the first write error:
	// run returns it at the end.
	out := proc.NewNarrator(w)
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "", "comma-separated etcd endpoints (host:port,...) of an existing cluster; default: start an embedded etcd server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	etcd, err := proc.ConnectEtcd(ctx, "migrate", *endpoints, out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, etcd.Close(ctx)) }()
	eps, cli, prefix, s := etcd.Endpoints, etcd.Client, etcd.Prefix, etcd.Session
	lock := etcdsync.NewLock(s, lockName) // the parent only looks at it
	st := newStorage()
	defer st.close()
	out.Println("storage: refuses a write whose fencing token is lower than one it has seen")
	out.Println()
	base := workerConfig{Endpoints: eps, Prefix: prefix, TTL: ttl, Storage: st.URL()}

	if err := migrate(ctx, out, base, st); err != nil {
		return fmt.Errorf("part 1: %w", err)
	}
	if err := stale(ctx, out, base, st, cli, lock); err != nil {
		return fmt.Errorf("part 2: %w", err)
	}
	out.Println("\nOK: the migration ran exactly once, and the stale holder's write was refused by its token")
	return out.Err()
}

// migrate is part 1.
func migrate(ctx context.Context, out *proc.Narrator, base workerConfig, st *storage) error {
	out.Printf("1) %d processes start at once; each takes the Lock %q and runs the migration unless it is done:\n", migrators, lockName)
	var cs []*proc.Child
	defer func() { proc.KillAll(cs) }()
	for i := 1; i <= migrators; i++ {
		cfg := base
		cfg.Name, cfg.Role = fmt.Sprintf("process-%d", i), "migrate"
		c, err := proc.Start(cfg.Name, roleEnv, cfg)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	// All are set up (client, session) before any takes the Lock, so they
	// really race for it.
	for _, c := range cs {
		if _, err := c.Expect(ctx, "ready"); err != nil {
			return err
		}
	}
	// "go" in a random order, so that no process has a head start.
	for _, i := range rand.Perm(len(cs)) {
		if err := cs[i].Send("go"); err != nil {
			return err
		}
	}
	type outcome struct {
		name   string
		ran    bool
		token  int64
		doneBy string
	}
	var outs []outcome
	for _, c := range cs {
		line, err := c.Next(ctx)
		if err != nil {
			<-c.Exited()
			return fmt.Errorf("%s said nothing (exit: %v)", c.Name(), c.Err())
		}
		f := strings.Fields(line)
		kv := fields(f)
		o := outcome{name: c.Name(), doneBy: kv["doneBy"]}
		o.token, _ = strconv.ParseInt(kv["token"], 10, 64)
		switch {
		case len(f) > 0 && f[0] == "migrated":
			o.ran = true
		case len(f) > 0 && f[0] == "skipped":
		default:
			return fmt.Errorf("%s said %q", c.Name(), line)
		}
		outs = append(outs, o)
		if err := c.Wait(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
	}
	slices.SortFunc(outs, func(x, y outcome) int { return cmp.Compare(x.token, y.token) })
	var ran, skipped []string
	var ranToken int64
	for _, o := range outs {
		if o.ran {
			ran, ranToken = append(ran, o.name), o.token
			out.Printf("   %s took the Lock with fencing token %d, ran the migration, and marked it done (a Txn guarded by its permit)\n", o.name, o.token)
			continue
		}
		skipped = append(skipped, o.name)
		out.Printf("   %s took the Lock with token %d, found it done (by %s), and skipped it\n", o.name, o.token, o.doneBy)
	}
	accepted, _ := st.writes()
	out.Printf("   the storage saw %d migration write%s\n", len(accepted), plural(len(accepted)))
	if len(ran) != 1 || len(skipped) != migrators-1 {
		return fmt.Errorf("%d processes ran the migration (%v), %d skipped it; want 1 and %d", len(ran), ran, len(skipped), migrators-1)
	}
	if len(accepted) != 1 || accepted[0].token != ranToken || accepted[0].who != ran[0] {
		return fmt.Errorf("the storage saw %v, want one write by %s with token %d", accepted, ran[0], ranToken)
	}
	// The Lock's tokens rise from one holder to the next, so the one that
	// ran it, which held the Lock first, has the lowest.
	if !outs[0].ran {
		return fmt.Errorf("%s ran the migration with token %d, but %s held the Lock before it with token %d", ran[0], ranToken, outs[0].name, outs[0].token)
	}
	return nil
}

// stale is part 2.
func stale(ctx context.Context, out *proc.Narrator, base workerConfig, st *storage, cli *clientv3.Client, lock *etcdsync.Lock) error {
	out.Println("2) a holder loses the Lock without noticing (paused longer than its TTL), then writes with its old token:")
	var cs []*proc.Child
	defer func() { proc.KillAll(cs) }()
	start := func(name string) (*proc.Child, clientv3.LeaseID, error) {
		cfg := base
		cfg.Name, cfg.Role = name, "write"
		c, err := proc.Start(name, roleEnv, cfg)
		if err != nil {
			return nil, 0, err
		}
		cs = append(cs, c)
		kv, err := c.Expect(ctx, "ready")
		if err != nil {
			return nil, 0, err
		}
		l, _ := strconv.ParseInt(kv["lease"], 10, 64)
		return c, clientv3.LeaseID(l), c.Send("go")
	}
	a, leaseA, err := start("process-A")
	if err != nil {
		return err
	}
	kv, err := a.Expect(ctx, "holding")
	if err != nil {
		return err
	}
	tokenA, _ := strconv.ParseInt(kv["token"], 10, 64)
	b, _, err := start("process-B")
	if err != nil {
		return err
	}
	// B is in line behind A: poll, with a deadline, until etcd shows it.
	if err := poll(ctx, 20*time.Second, func() (bool, error) {
		n, err := lock.Waiting(ctx)
		return n == 1, err
	}); err != nil {
		return fmt.Errorf("process-B never waited for the Lock: %w", err)
	}
	out.Printf("   process-A holds the Lock with token %d; process-B waits behind it\n", tokenA)

	if _, err := cli.Revoke(ctx, leaseA); err != nil {
		return fmt.Errorf("revoke process-A's lease: %w", err)
	}
	kv, err = b.Expect(ctx, "holding")
	if err != nil {
		return err
	}
	tokenB, _ := strconv.ParseInt(kv["token"], 10, 64)
	out.Printf("   process-A pauses; its lease ends (revoked here, as etcd does when the TTL runs out): process-B gets the Lock with token %d\n", tokenB)
	if tokenB <= tokenA {
		return fmt.Errorf("process-B's token %d is not above process-A's %d", tokenB, tokenA)
	}

	if err := b.Send("write"); err != nil {
		return err
	}
	kv, err = b.Expect(ctx, "wrote")
	if err != nil {
		return err
	}
	out.Printf("   process-B writes with token %d: storage %s; its guarded etcd Txn %s\n", tokenB, verdict(kv["storage"]), verdict(kv["etcd"]))
	if kv["storage"] != "200" || kv["etcd"] != "true" {
		return fmt.Errorf("process-B, the holder, was refused: storage %s, etcd %s", kv["storage"], kv["etcd"])
	}
	if err := b.Wait(ctx); err != nil {
		return fmt.Errorf("process-B: %w", err)
	}

	if err := a.Send("write"); err != nil {
		return err
	}
	kv, err = a.Expect(ctx, "wrote")
	if err != nil {
		return err
	}
	out.Printf("   process-A wakes up and writes with its old token %d: storage %s; its guarded etcd Txn %s\n", tokenA, verdict(kv["storage"]), verdict(kv["etcd"]))
	if kv["storage"] != strconv.Itoa(http.StatusConflict) || kv["etcd"] != "false" {
		return fmt.Errorf("process-A's stale write was accepted: storage %s, etcd %s", kv["storage"], kv["etcd"])
	}
	if err := a.Wait(ctx); err != nil {
		return fmt.Errorf("process-A: %w", err)
	}

	accepted, refused := st.writes()
	last := accepted[len(accepted)-1]
	out.Printf("   the storage holds %s's write (token %d) and refused %d stale write%s\n", last.who, last.token, len(refused), plural(len(refused)))
	if last.who != "process-B" || len(refused) != 1 || refused[0].who != "process-A" {
		return fmt.Errorf("storage: last write by %s, refused %v", last.who, refused)
	}
	resp, err := cli.Get(ctx, stateKey(base.Prefix))
	if err != nil {
		return err
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "process-B" {
		return fmt.Errorf("etcd state is %v, want process-B's", resp.Kvs)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func verdict(s string) string {
	switch s {
	case "200", "true":
		return "accepted"
	case "409":
		return "refused (409: a higher token was seen)"
	case "false":
		return "refused (its permit's Guard fails)"
	}
	return s
}

func fields(f []string) map[string]string {
	kv := map[string]string{}
	for _, s := range f {
		k, v, _ := strings.Cut(s, "=")
		kv[k] = v
	}
	return kv
}

// poll calls cond every 20 ms until it reports true, fails, or within
// passes.
func poll(ctx context.Context, within time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
