package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctxsync/ctxsync"
	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proc"
)

// roleEnv, when set, makes this program a replica; its value is the
// replica's configuration as JSON.
const roleEnv = "ETCDSYNC_EXAMPLE_REPLICA"

// replicaConfig is what the parent tells a replica.
type replicaConfig struct {
	ID        int
	Mode      string // "local": a ctxsync.Semaphore of its own; "etcd": the shared etcdsync.Semaphore
	Endpoints []string
	Prefix    string
	TTL       time.Duration
	Vendor    string
	Requests  int // this replica's share
	Workers   int // goroutines sending requests
}

// replica is the whole life of one replica process: it makes its
// semaphore, says "ready", waits for "go", sends its share of requests with
// its workers, each request under a permit, and reports "result".
func replica(conf string) (code int) {
	var cfg replicaConfig
	if err := json.Unmarshal([]byte(conf), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bad configuration:", err)
		return 2
	}
	cmds := proc.Commands()
	ctx := context.Background()

	// acquire takes one permit and returns what gives it back.
	var acquire func(context.Context) (func() error, error)
	ready := "ready"
	switch cfg.Mode {
	case "local":
		sem := ctxsync.NewSemaphore(vendorLimit)
		acquire = func(ctx context.Context) (func() error, error) {
			if err := sem.Acquire(ctx); err != nil {
				return nil, err
			}
			return func() error { sem.Release(); return nil }, nil
		}
	case "etcd":
		cli, err := proc.NewClient(cfg.Endpoints)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd client:", err)
			return 1
		}
		// A failed close is reported, and fails the replica.
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
		sem, err := etcdsync.NewSemaphore(ctx, s, "vendor", vendorLimit)
		if err != nil {
			fmt.Fprintln(os.Stderr, "semaphore:", err)
			return 1
		}
		acquire = func(ctx context.Context) (func() error, error) {
			p, err := sem.Acquire(ctx)
			if err != nil {
				return nil, err
			}
			return func() error { return p.Release(ctx) }, nil
		}
		ttl, err := cli.TimeToLive(ctx, s.Lease())
		if err != nil {
			fmt.Fprintln(os.Stderr, "lease:", err)
			return 1
		}
		ready += fmt.Sprintf(" lease=%d ttl=%d", int64(s.Lease()), ttl.GrantedTTL)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", cfg.Mode)
		return 2
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers}}
	defer client.CloseIdleConnections()
	id := strconv.Itoa(cfg.ID)

	fmt.Println(ready)
	proc.Await(cmds, "go")

	var next, ok, tooMany, failed atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for next.Add(1) <= int64(cfg.Requests) {
				release, err := acquire(ctx)
				if err != nil {
					fmt.Fprintln(os.Stderr, "acquire:", err)
					failed.Add(1)
					continue
				}
				code, err := call(ctx, client, cfg.Vendor, id)
				switch {
				case err != nil:
					fmt.Fprintln(os.Stderr, "request:", err)
					failed.Add(1)
				case code == http.StatusOK:
					ok.Add(1)
				case code == http.StatusTooManyRequests:
					tooMany.Add(1)
				default:
					failed.Add(1)
				}
				if err := release(); err != nil {
					fmt.Fprintln(os.Stderr, "release:", err)
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("result ok=%d tooMany=%d failed=%d\n", ok.Load(), tooMany.Load(), failed.Load())
	if failed.Load() > 0 {
		return 1
	}
	return 0
}

func call(ctx context.Context, client *http.Client, url, id string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Replica", id)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	if err := drainClose(resp.Body); err != nil {
		return 0, fmt.Errorf("the vendor's answer: %w", err)
	}
	return resp.StatusCode, nil
}

// drainClose reads the rest of body, so that its connection can be reused,
// and closes it; the error is the read's, the close's, or both.
func drainClose(body io.ReadCloser) error {
	_, err := io.Copy(io.Discard, body)
	return errors.Join(err, body.Close())
}
