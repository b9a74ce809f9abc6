package etcdsync

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Permit is one grant of a Lock or a Semaphore: its ticket key in etcd,
// attached to the session's lease. It is held until Release, or until the
// session ends.
//
// A Permit is safe for use by several goroutines; Release calls are
// serialized.
type Permit struct {
	s     *Session
	id    string // the ticket's id within its line
	key   string
	token int64
	n     int

	// lost is cancelled, with cause ErrSessionLost, once the permit is no
	// longer held for any reason but its own Release.
	lost     context.Context
	loseOnce context.CancelCauseFunc

	mu       sync.Mutex
	released bool // a Release removed the ticket: another Release panics
	// tried means a Release was sent whose outcome is unknown: the ticket
	// may already be gone by this permit's own hand.
	tried bool
}

func newPermit(s *Session, id, key string, token int64, n int) *Permit {
	p := &Permit{s: s, id: id, key: key, token: token, n: n}
	p.lost, p.loseOnce = context.WithCancelCause(context.Background())
	s.track(p)
	return p
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
// own Release: the session's lease expired or was revoked, or the session
// was closed. It is late by design (up to about one TTL after the lease is
// gone in etcd), so it cannot replace checking the Token.
func (p *Permit) Lost() <-chan struct{} {
	p.mustBeMade()
	return p.lost.Done()
}

// Context returns a context derived from parent that is cancelled when the
// permit is lost; its context.Cause is then ErrSessionLost. Call the
// CancelFunc when the work is done.
func (p *Permit) Context(parent context.Context) (context.Context, context.CancelFunc) {
	p.mustBeMade()
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
// earlier Release of it removed it; ErrSessionLost if it was lost before any
// Release (or when etcd can no longer tell the two apart: a Release whose
// outcome was unknown, then the lease ended); ctx.Err() if ctx ended before
// the outcome is known, and then Release may be called again. A Release
// after a successful Release panics.
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
	if p.s.alive() != nil {
		return ErrSessionLost
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	rctx, stop := p.s.bind(ctx)
	defer stop()
	resp, err := p.s.cli.Txn(rctx).If(p.Guard()).Then(clientv3.OpDelete(p.key)).Commit()
	if err != nil {
		// The delete may or may not have been applied: a retry will tell.
		p.tried = true
		return p.s.rpcError(ctx, "release", err)
	}
	if !resp.Succeeded {
		alive := false
		if p.tried {
			if alive, err = p.leaseAlive(rctx); err != nil {
				return p.s.rpcError(ctx, "release", err)
			}
		}
		if !alive {
			// The ticket went without this permit's Release: its lease
			// ended.
			p.lose()
			return ErrSessionLost
		}
	}
	p.released = true
	p.s.untrack(p)
	if resp.Succeeded && !p.tried {
		// This Release's own delete removed the ticket, and no earlier
		// one is still in flight: the id can name another ticket.
		p.s.reuseID(p.id)
	}
	return nil
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
