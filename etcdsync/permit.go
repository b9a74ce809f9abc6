package etcdsync

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A Permit is one grant of a Lock or a Semaphore: its ticket key in etcd,
// attached to the session's lease. It is held until Release, or until the
// session ends.
//
// A Permit is safe for use by several goroutines; Release calls are
// serialized. Permits come from Lock and Semaphore calls; a zero Permit
// panics on first use, and a Permit is used through its pointer, never
// copied.
//
// Within one process, a Release that returned nil happens before the call
// that the release lets in returns; across processes, etcd orders what the
// holders write to it the same way.
type Permit struct {
	s     *Session
	l     *line
	id    string // the ticket's id within its line
	key   string
	token int64
	n     int

	// lost is cancelled, with cause ErrSessionLost, once the permit is no
	// longer held for any reason but its own Release.
	lost     context.Context
	loseOnce context.CancelCauseFunc

	mu       sync.Mutex
	released bool // a Release returned nil: another Release panics
	// tried means a Release was sent whose outcome is unknown: the ticket
	// may already be gone by this permit's own hand.
	tried bool
	// handedOff means a failed Release left its delete to the session's
	// cleaner: the permit was given back, so its Lost no longer closes.
	handedOff bool
	// removed is set by the cleaner once its delete removed the ticket:
	// the next Release returns nil even after the session has ended.
	removed atomic.Bool
	// givenBack is set when a Release starts: from then on, the ticket's
	// removal is the permit's own doing, never a loss.
	givenBack atomic.Bool

	// The line's feed, followed while the permit is held once Lost or
	// Context was asked for, so that a ticket removed from outside closes
	// Lost (watchLoss).
	wmu      sync.Mutex
	watching int // 0: not yet; 1: the feed f is followed; 2: never again
	f        *feed
	v        *lineView
}

func newPermit(l *line, id, key string, token int64, n int) *Permit {
	p := &Permit{s: l.s, l: l, id: id, key: key, token: token, n: n}
	p.lost, p.loseOnce = context.WithCancelCause(context.Background())
	l.s.track(p)
	return p
}

// watchLoss makes the process follow the permit's line while the permit is
// held, so that a ticket removed by anything but the permit's own Release
// (an operator deleting keys, the lease ending before the keeper hears of
// it) closes Lost. Only the permits whose Lost or Context is asked for
// cost that, and they share the one watch per line of the process.
func (p *Permit) watchLoss() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.watching != 0 {
		return
	}
	p.watching = 2
	if p.lost.Err() != nil || p.givenBack.Load() {
		return
	}
	f, v, err := p.l.follow()
	if err != nil {
		return // the session has ended: its end loses the permit
	}
	p.watching, p.f, p.v = 1, f, v
	f.mu.Lock()
	v.held[p.key] = p
	v.checkHeld(p)
	f.mu.Unlock()
	context.AfterFunc(p.lost, p.unwatch)
}

// unwatch stops following the line for p: it was given back or lost.
func (p *Permit) unwatch() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.watching == 1 {
		p.f.mu.Lock()
		if p.v.held[p.key] == p {
			delete(p.v.held, p.key)
		}
		p.f.mu.Unlock()
		p.f.done()
	}
	p.watching = 2
}

func (p *Permit) lose() { p.loseOnce(ErrSessionLost) }

// mustBeMade refuses a zero Permit, which holds nothing.
func (p *Permit) mustBeMade() {
	if p.s == nil {
		panic("etcdsync: zero Permit; permits come from Lock and Semaphore calls")
	}
}

// Token is the permit's fencing token: the etcd revision that created its
// ticket. Tokens are unique, and a Lock's tokens strictly increase from one
// holder to the next, also across a crash. Give it to the protected
// resource with every write, and have the resource refuse a token lower
// than one it has seen: that is what makes a lease-based lock safe against
// a holder that was paused or cut off and has not noticed yet.
func (p *Permit) Token() int64 { return p.token }

// N is the number of permits this grant holds (1 for a Lock).
func (p *Permit) N() int { return p.n }

// Lost is closed once the permit is no longer held for any reason but its
// own Release: the session was closed, its lease was revoked or expired, or
// the session gave up on a lease it could not keep alive (D9). A process
// cut off from etcd sees Lost close before etcd can grant the permit to
// anyone else; a loss that comes from outside (a revoke, an operator
// deleting keys) is seen late, through the process's watch of the
// permit's line (which the first call of Lost or Context keeps going while
// the permit is held), and a paused process sees nothing in time, so Lost
// cannot replace checking the Token. A permit given back by a Release that
// failed (see Release) is not lost: its Lost stays open.
func (p *Permit) Lost() <-chan struct{} {
	p.mustBeMade()
	p.watchLoss()
	return p.lost.Done()
}

// Context returns a context derived from parent that is cancelled when the
// permit is lost; its context.Cause is then ErrSessionLost. Call the
// CancelFunc when the work is done.
func (p *Permit) Context(parent context.Context) (context.Context, context.CancelFunc) {
	p.mustBeMade()
	p.watchLoss()
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(p.lost, func() { cancel(context.Cause(p.lost)) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// Guard is a comparison that holds exactly while the permit is still held:
// its ticket exists with the revision that created it. Use it to make a
// write to state kept in etcd conditional on still holding the permit:
//
//	cli.Txn(ctx).If(p.Guard()).Then(clientv3.OpPut(k, v)).Commit()
func (p *Permit) Guard() clientv3.Cmp {
	p.mustBeMade()
	return clientv3.Compare(clientv3.CreateRevision(p.key), "=", p.token)
}

// Release gives the permits back; the next waiters in line are granted
// them. It returns nil once the permit is no longer held because this or an
// earlier Release of it removed it, and ErrSessionLost if it was lost before
// any Release (or when etcd can no longer tell the two apart: a Release
// whose outcome was unknown, then the lease ended). A Release after a
// Release that returned nil panics.
//
// Transient failures (etcd unavailable or overloaded, a dropped proposal, a
// leader change) are retried until ctx ends; any other etcd error is
// returned at once, wrapped. If ctx ends before etcd answered, Release
// returns exactly ctx.Err() and leaves the delete to the session, which
// retries it in the background until it succeeds or the lease ends: what a
// deferred Release gave back is never held for the rest of the session
// because that Release failed once. Such a permit's Lost does not close (it
// was given back, not lost), and Release may be called again to learn the
// outcome.
//
// Release deletes only this permit's own ticket, compared on the revision
// that created it, so a stale or retried Release never removes anyone
// else's.
func (p *Permit) Release(ctx context.Context) error {
	p.mustBeMade()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		panic("etcdsync: Release of a permit already released")
	}
	if p.removed.Load() {
		return p.releasedNow()
	}
	if p.s.alive() != nil || p.lost.Err() != nil {
		// Lost already, as this process knows without asking etcd (D8).
		return ErrSessionLost
	}
	p.givenBack.Store(true)
	if err := ctxErr(ctx); err != nil {
		p.handOff()
		return err
	}
	rctx, stop := p.s.bind(ctx)
	defer stop()
	pause := 10 * time.Millisecond
	for {
		resp, err := p.s.cli.Txn(rctx).If(p.Guard()).Then(clientv3.OpDelete(p.key)).Commit()
		if err == nil {
			return p.settle(rctx, ctx, resp.Succeeded)
		}
		// The delete may or may not have been applied: a retry will tell.
		p.tried = true
		if p.removed.Load() {
			return p.releasedNow()
		}
		if p.s.alive() != nil {
			return ErrSessionLost
		}
		if ctxErr(ctx) != nil || !isTransient(err) {
			p.handOff()
			return p.s.rpcError(ctx, "release", err)
		}
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-rctx.Done():
		}
		timer.Stop()
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// settle concludes a Release whose delete etcd answered: deleted tells
// whether the ticket was there to delete.
func (p *Permit) settle(rctx, ctx context.Context, deleted bool) error {
	if !deleted && !p.removed.Load() {
		alive := false
		if p.tried || p.handedOff {
			var err error
			if alive, err = p.leaseAlive(rctx); err != nil {
				return p.s.rpcError(ctx, "release", err)
			}
		}
		if !alive {
			// The ticket went without this permit's Release (its lease
			// ended), or etcd can no longer tell. A permit given back
			// earlier is not lost, whatever became of it.
			if !p.handedOff {
				p.lose()
			}
			return ErrSessionLost
		}
	}
	if deleted && !p.tried && !p.handedOff {
		// This Release's own delete removed the ticket, and no earlier
		// one is still in flight: the id can name another ticket.
		p.s.reuseID(p.id)
	}
	return p.releasedNow()
}

func (p *Permit) releasedNow() error {
	p.released = true
	p.s.untrack(p)
	p.unwatch()
	return nil
}

// handOff leaves the delete of a Release that failed to the session's
// cleaner (D3), once per permit: the permit was given back, so the
// session's end no longer closes its Lost.
func (p *Permit) handOff() {
	if p.handedOff {
		return
	}
	p.handedOff = true
	p.s.untrack(p)
	p.unwatch()
	p.s.retryJob(cleanupJob{
		cmps: []clientv3.Cmp{p.Guard()},
		ops:  []clientv3.Op{clientv3.OpDelete(p.key)},
		done: func(deleted bool) {
			if deleted {
				p.removed.Store(true)
			}
		},
	})
}

// isTransient reports whether a failed request is worth sending again at
// once: etcd could not be reached or was overloaded, or it lost the request
// in a leader change. Such a request was not applied, or a retry finds out.
func isTransient(err error) bool {
	code, msg := codes.Unknown, err.Error()
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code, msg = st.Code(), st.Message()
	}
	switch code {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return strings.Contains(msg, "raft proposal dropped") || strings.Contains(msg, "leader changed")
}

// leaseAlive tells, after an earlier Release whose outcome was unknown
// found the ticket gone, whether that Release removed it: only the lease's
// end or this permit's own Release delete a ticket, so if the lease is
// still alive, the Release did.
func (p *Permit) leaseAlive(ctx context.Context) (bool, error) {
	resp, err := p.s.cli.TimeToLive(ctx, p.s.lease)
	if err != nil {
		return false, err
	}
	return resp.TTL > 0, nil
}
