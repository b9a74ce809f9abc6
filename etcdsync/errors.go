package etcdsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

var (
	// ErrSessionLost means the session's lease is gone (it expired, was
	// revoked, or the Session was closed): what was held through it is no
	// longer held, and calls made through it fail.
	ErrSessionLost = errors.New("etcdsync: session lost")
	// ErrSizeMismatch means a Semaphore or Barrier of that name already
	// exists in etcd with another size.
	ErrSizeMismatch = errors.New("etcdsync: size differs from the existing one")
	// ErrWouldBlock is returned by TryLock and TryAcquireN when the request
	// cannot be granted at once.
	ErrWouldBlock = errors.New("etcdsync: would block")
)

// ctxErr is ctx.Err(), and also context.DeadlineExceeded once the deadline
// has passed: ctx.Err() only says so after the context's timer has fired,
// and in between the etcd server may already have answered the client's
// deadline with its own "request timed out" (D2).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// rpcError turns an etcd failure of the call named by op into what the
// caller sees: exactly the context's error when the context is done (the
// etcd client or server may have reported it as something else), else
// ErrSessionLost when the lease is gone, else the etcd error wrapped.
func rpcError(ctx context.Context, op string, err error) error {
	if cerr := ctxErr(ctx); cerr != nil {
		return cerr
	}
	if isLeaseGone(err) {
		return ErrSessionLost
	}
	return fmt.Errorf("etcdsync: %s: %w", op, err)
}

func isLeaseGone(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound)
}
