package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// roleEnv, when set, makes this program a worker process; its value is the
// worker's configuration as JSON.
const roleEnv = "ETCDSYNC_EXAMPLE_MIGRATE"

// lockName is the Lock every process takes.
const lockName = "migration"

// workerConfig is what the parent tells a worker.
type workerConfig struct {
	Name      string
	Role      string // "migrate" (part 1) or "write" (part 2)
	Endpoints []string
	Prefix    string
	TTL       time.Duration
	Storage   string
}

// doneKey marks the migration done, with the token of the holder that ran
// it; stateKey is part 2's state in etcd.
func doneKey(prefix string) string  { return prefix + "app/migration-done" }
func stateKey(prefix string) string { return prefix + "app/state" }

// worker is the whole life of one worker process.
func worker(conf string) (code int) {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(conf), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bad configuration:", err)
		return 2
	}
	cmds := proc.Commands()
	ctx := context.Background()
	cli, err := proc.NewClient(cfg.Endpoints)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd client:", err)
		return 1
	}
	// A failed close is reported, and fails the worker.
	defer func() {
		if err := cli.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close etcd client:", err)
			code = 1
		}
	}()
	s, err := etcdsync.NewSession(ctx, cli, etcdsync.WithTTL(cfg.TTL), etcdsync.WithPrefix(cfg.Prefix))
	if err != nil {
		fmt.Fprintln(os.Stderr, "session:", err)
		return 1
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			fmt.Fprintln(os.Stderr, "close session:", err)
			code = 1
		}
	}()
	w := &member{cfg: cfg, cli: cli, s: s, lock: etcdsync.NewLock(s, lockName)}
	fmt.Printf("ready lease=%d\n", int64(s.Lease()))
	proc.Await(cmds, "go")
	switch cfg.Role {
	case "migrate":
		err = w.migrate(ctx)
	case "write":
		err = w.staleWrite(ctx, cmds)
	default:
		err = fmt.Errorf("unknown role %q", cfg.Role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type member struct {
	cfg  workerConfig
	cli  *clientv3.Client
	s    *etcdsync.Session
	lock *etcdsync.Lock
}

// migrate is part 1: under the Lock, run the migration unless it is done,
// and mark it done in a transaction guarded by the permit, so that the
// marker is only written while the lock is still held.
func (w *member) migrate(ctx context.Context) error {
	p, err := w.lock.Lock(ctx)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() { _ = p.Release(ctx) }()
	resp, err := w.cli.Get(ctx, doneKey(w.cfg.Prefix))
	if err != nil {
		return err
	}
	if len(resp.Kvs) > 0 {
		fmt.Printf("skipped token=%d doneBy=%s\n", p.Token(), resp.Kvs[0].Value)
		return nil
	}
	// The migration itself: a write to the storage, with the token.
	code, body, err := w.store(ctx, p.Token(), "schema-v2")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("the storage refused the migration: %d %s", code, body)
	}
	done := fmt.Sprintf("%s@%d", w.cfg.Name, p.Token())
	tresp, err := w.cli.Txn(ctx).
		If(p.Guard(), clientv3.Compare(clientv3.CreateRevision(doneKey(w.cfg.Prefix)), "=", 0)).
		Then(clientv3.OpPut(doneKey(w.cfg.Prefix), done)).Commit()
	if err != nil {
		return err
	}
	if !tresp.Succeeded {
		return fmt.Errorf("lost the lock (or someone else marked it done) before the migration was marked done")
	}
	fmt.Printf("migrated token=%d\n", p.Token())
	return nil
}

// staleWrite is part 2: take the Lock, say so, then wait for "write" (the
// parent may revoke this process's lease in between: a pause longer than
// the TTL that this process does not notice), then write to the storage
// with the token and, guarded by the permit, to etcd, and report what was
// accepted.
func (w *member) staleWrite(ctx context.Context, cmds <-chan string) error {
	p, err := w.lock.Lock(ctx)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	fmt.Printf("holding token=%d\n", p.Token())
	proc.Await(cmds, "write")
	// A process back from a pause does not look at p.Lost() first (it
	// could not know it was paused): only the token tells.
	code, _, err := w.store(ctx, p.Token(), "state-by-"+w.cfg.Name)
	if err != nil {
		return err
	}
	tresp, err := w.cli.Txn(ctx).If(p.Guard()).Then(clientv3.OpPut(stateKey(w.cfg.Prefix), w.cfg.Name)).Commit()
	if err != nil {
		return err
	}
	lost := false
	select {
	case <-p.Lost():
		lost = true
	default:
	}
	fmt.Printf("wrote storage=%d etcd=%t lost=%t\n", code, tresp.Succeeded, lost)
	if err := p.Release(ctx); err != nil && !errors.Is(err, etcdsync.ErrSessionLost) {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// store writes what to the storage with the fencing token, and returns the
// HTTP status and body.
func (w *member) store(ctx context.Context, token int64, what string) (int, string, error) {
	q := url.Values{"token": {fmt.Sprint(token)}, "who": {w.cfg.Name}, "what": {what}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.Storage+"/?"+q.Encode(), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	if err = errors.Join(err, resp.Body.Close()); err != nil {
		return 0, "", fmt.Errorf("the storage's answer: %w", err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
