// Command etcdserver runs one etcd server member built from this module's
// go.etcd.io/etcd/server/v3 (the newest etcd we support), as a process of
// its own, so that etcdsync can be tried against it from the outside as it
// is against a distribution's etcd binary (etcdsync/compat/run.sh does).
// Its flags are a subset of etcd's own, with the same names and meaning,
// so a script can start either with the same command line:
//
//	go run ./internal/cmd/etcdserver -data-dir /tmp/x \
//	    -listen-client-urls http://127.0.0.1:23790 -listen-peer-urls http://127.0.0.1:23800
//
// It stops on SIGINT or SIGTERM, and exits 1 if the server fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdserver:", err)
		os.Exit(1)
	}
}

// run starts the member that args describe, says on w where it serves once
// it is ready, and serves until ctx ends or the server fails.
func run(ctx context.Context, args []string, w io.Writer) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fmt.Errorf("start: %w", err)
	case <-ctx.Done():
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("not ready within 60s")
	}
	if _, err := fmt.Fprintf(w, "etcd %s ready: name %s, clients %s, data %s\n",
		version.Version, cfg.Name, joinURLs(cfg.AdvertiseClientUrls), cfg.Dir); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("serve: %w", err)
	case <-e.Server.StopNotify():
		return errors.New("server stopped")
	}
}

// parse turns etcd-style flags into an embed.Config. The advertised URLs
// and the initial cluster default to what a lone member on the listen URLs
// needs, so a single member takes only a data dir and two URLs. The rest
// is checked by embed.StartEtcd.
func parse(args []string) (*embed.Config, error) {
	cfg := embed.NewConfig()
	fs := flag.NewFlagSet("etcdserver", flag.ContinueOnError)
	fs.StringVar(&cfg.Name, "name", cfg.Name, "human-readable name for this member")
	fs.StringVar(&cfg.Dir, "data-dir", "", "path to the data directory (required)")
	listenClient := fs.String("listen-client-urls", "http://127.0.0.1:2379", "URLs to listen on for client traffic")
	advertiseClient := fs.String("advertise-client-urls", "", "client URLs to advertise (default: -listen-client-urls)")
	listenPeer := fs.String("listen-peer-urls", "http://127.0.0.1:2380", "URLs to listen on for peer traffic")
	advertisePeer := fs.String("initial-advertise-peer-urls", "", "peer URLs to advertise (default: -listen-peer-urls)")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "initial cluster configuration (default: this member alone)")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", cfg.InitialClusterToken, "initial cluster token")
	fs.UintVar(&cfg.TickMs, "heartbeat-interval", cfg.TickMs, "time (in milliseconds) of a heartbeat interval")
	fs.UintVar(&cfg.ElectionMs, "election-timeout", cfg.ElectionMs, "time (in milliseconds) for an election to time out")
	fs.BoolVar(&cfg.UnsafeNoFsync, "unsafe-no-fsync", false, "disable fsync: data may be lost on a crash (tests only)")
	fs.StringVar(&cfg.LogLevel, "log-level", "warn", "debug, info, warn, error, panic or fatal")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.Dir == "" {
		return nil, errors.New("-data-dir is required")
	}
	if *advertiseClient == "" {
		*advertiseClient = *listenClient
	}
	if *advertisePeer == "" {
		*advertisePeer = *listenPeer
	}
	var err error
	for _, f := range []struct {
		name string
		val  string
		dst  *[]url.URL
	}{
		{"listen-client-urls", *listenClient, &cfg.ListenClientUrls},
		{"advertise-client-urls", *advertiseClient, &cfg.AdvertiseClientUrls},
		{"listen-peer-urls", *listenPeer, &cfg.ListenPeerUrls},
		{"initial-advertise-peer-urls", *advertisePeer, &cfg.AdvertisePeerUrls},
	} {
		if *f.dst, err = parseURLs(f.val); err != nil {
			return nil, fmt.Errorf("-%s: %w", f.name, err)
		}
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	cfg.LogOutputs = []string{"stderr"}
	return cfg, nil
}

func parseURLs(s string) ([]url.URL, error) {
	var us []url.URL
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		us = append(us, *u)
	}
	return us, nil
}

func joinURLs(us []url.URL) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}
