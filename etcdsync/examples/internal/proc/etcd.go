package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd is what a scenario's parent process has of etcd: the endpoints (an
// embedded server's, or those given with -endpoints), a client, a key
// namespace of this run's own, and a session in it.
type Etcd struct {
	Endpoints []string
	Client    *clientv3.Client
	Prefix    string
	Session   *etcdsync.Session
	server    *etcdtest.Cluster // nil when the cluster is someone else's
}

// NewClient dials eps, as every process of a scenario does.
func NewClient(eps []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// ConnectEtcd starts an embedded etcd server when endpoints is empty, or
// else uses the comma-separated endpoints of an existing cluster, says which
// on out, and makes a session under a prefix of this run's own (scenario,
// process, time), so that runs against a shared cluster never meet. Close
// undoes all of it.
func ConnectEtcd(ctx context.Context, scenario, endpoints string, out *Narrator) (e *Etcd, err error) {
	e = &Etcd{}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close(ctx))
			e = nil
		}
	}()
	if endpoints == "" {
		if e.server, err = etcdtest.Start(); err != nil {
			return e, err
		}
		e.Endpoints = e.server.Endpoints()
		out.Printf("etcd: embedded server at %s\n", strings.Join(e.Endpoints, ","))
	} else {
		e.Endpoints = strings.Split(endpoints, ",")
		out.Printf("etcd: %s\n", strings.Join(e.Endpoints, ","))
	}
	if e.Client, err = NewClient(e.Endpoints); err != nil {
		return e, err
	}
	e.Prefix = fmt.Sprintf("/ctxsync-examples/%s/%d-%d/", scenario, os.Getpid(), time.Now().UnixNano())
	// A wrong -endpoints would otherwise hang until the overall timeout.
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if e.Session, err = etcdsync.NewSession(sctx, e.Client, etcdsync.WithPrefix(e.Prefix)); err != nil {
		return e, fmt.Errorf("etcd at %s: %w", strings.Join(e.Endpoints, ","), err)
	}
	return e, nil
}

// Close closes the session, removes the run's namespace, closes the client
// and stops the embedded server, in that order, and reports what failed.
// It does not need ctx to be alive: it gives each step a few seconds of its
// own.
func (e *Etcd) Close(ctx context.Context) error {
	var errs []error
	ctx = context.WithoutCancel(ctx)
	if e.Session != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := e.Session.Close(cctx); err != nil {
			errs = append(errs, fmt.Errorf("close session: %w", err))
		}
		cancel()
	}
	if e.Client != nil {
		if e.Prefix != "" {
			// Best effort: with a wrong -endpoints this fails too, and
			// the error that matters was reported already.
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = e.Client.Delete(dctx, e.Prefix, clientv3.WithPrefix())
			cancel()
		}
		if err := e.Client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close etcd client: %w", err))
		}
	}
	if e.server != nil {
		e.server.Close()
	}
	return errors.Join(errs...)
}
