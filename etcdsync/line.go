package etcdsync

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A line is the FIFO line of one Lock or Semaphore in etcd: one ticket key
// per call under tickets, attached to the caller's lease, with the weight
// as its value. etcd's commit order is the line's order: tickets sort by
// the revision that created them. A ticket is granted when its weight plus
// the weights of every ticket ahead of it fit the size. That is a fact of
// the keys alone, so every process computes the same answer, and it only
// ever turns from false to true (tickets join at the end, and leave only by
// being released, withdrawn or losing their lease), so a grant once seen
// stays a grant. A weighted request at the head that does not fit holds back
// the smaller ones behind it, since they count it among those ahead: that is
// what keeps a large request from starving.
type line struct {
	s       *Session
	what    string // "lock" or "semaphore", for error messages
	name    string
	tickets string // key prefix of the line
	tombs   string // key prefix of the tombstones of abandoned tickets
	size    int
}

func newLine(s *Session, kind, what, name string, size int) *line {
	base := s.prefix + kind + "/" + objectKey(name)
	return &line{s: s, what: what, name: name, tickets: base + "/q/", tombs: base + "/x/", size: size}
}

// objectKey escapes a name so that no name's keys are a prefix of
// another's ("a" and "a/q" must not share a line).
func objectKey(name string) string { return url.PathEscape(name) }

func (l *line) op(verb string) string { return fmt.Sprintf("%s %s %q", verb, l.what, l.name) }

func (l *line) readOp() clientv3.Op {
	return clientv3.OpGet(l.tickets, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
}

// tally is what a read of the line shows.
type tally struct {
	granted int // permits held by granted tickets
	waiting int // tickets not granted
}

func (l *line) count(kvs []*mvccpb.KeyValue) tally {
	var t tally
	sum := 0
	for _, kv := range kvs {
		sum += weight(kv)
		if sum <= l.size {
			t.granted += weight(kv)
		} else {
			t.waiting++
		}
	}
	return t
}

func weight(kv *mvccpb.KeyValue) int {
	n, err := strconv.Atoi(string(kv.Value))
	if err != nil || n < 0 {
		// Not written by this package: count it as too big, so it holds
		// the line rather than letting anyone past it.
		return 1 << 40
	}
	return n
}

func (l *line) read(ctx context.Context) (tally, error) {
	if err := ctxErr(ctx); err != nil {
		return tally{}, err
	}
	rctx, stop := l.s.bind(ctx)
	defer stop()
	resp, err := l.s.cli.Do(rctx, l.readOp())
	if err != nil {
		return tally{}, l.s.rpcError(ctx, l.op("read"), err)
	}
	return l.count(resp.Get().Kvs), nil
}

// absent compares true while key does not exist.
func absent(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
}

// acquire joins the line with a ticket of weight n and waits until it is
// granted, ctx ends or the session ends.
func (l *line) acquire(ctx context.Context, n int) (*Permit, error) {
	if err := l.s.alive(); err != nil {
		return nil, err
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	rctx, stop := l.s.bind(ctx)
	defer stop()
	id := l.s.newID()
	key, tomb := l.tickets+id, l.tombs+id
	// One round trip: the ticket and a read of the line at the revision
	// that created it. The put is conditional on the ticket's tombstone,
	// so that if this RPC's outcome is unknown and the server applies it
	// only after the cleanup below, it lands nowhere.
	resp, err := l.s.cli.Txn(rctx).If(absent(tomb)).Then(
		clientv3.OpPut(key, strconv.Itoa(n), clientv3.WithLease(l.s.lease)),
		l.readOp(),
	).Commit()
	if err != nil {
		return nil, l.abandon(ctx, key, tomb, err)
	}
	token := resp.Header.Revision // the txn's one write created the ticket
	ahead := map[string]int{}
	sum := n
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		if kv.CreateRevision < token {
			ahead[string(kv.Key)] = weight(kv)
			sum += weight(kv)
		}
	}
	if sum <= l.size {
		return newPermit(l.s, key, token, n), nil
	}
	return l.wait(ctx, rctx, key, token, n, ahead, sum, token)
}

// wait watches the line for the deletions of tickets ahead of this one
// until their weights and its own fit the size. Only deletions matter:
// tickets created later are behind it. A watch that is cut or compacted is
// re-established from a fresh read: a missed event can delay the grant, but
// the read is the truth, so it can never make a wrong one.
//
// RPCs use rctx, which is ctx also cancelled when the session ends.
func (l *line) wait(ctx, rctx context.Context, key string, token int64, n int, ahead map[string]int, sum int, rev int64) (*Permit, error) {
	for {
		granted, lost, err := l.watch(ctx, rctx, key, n, ahead, &sum, rev)
		switch {
		case granted:
			return newPermit(l.s, key, token, n), nil
		case lost:
			return nil, ErrSessionLost
		case err != nil:
			return nil, err
		}
		// Re-read the line, retrying while etcd cannot answer.
		for pause := 10 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
			resp, err := l.s.cli.Do(rctx, l.readOp())
			if err == nil {
				ahead, sum = map[string]int{}, n
				mine := false
				for _, kv := range resp.Get().Kvs {
					switch {
					case string(kv.Key) == key:
						mine = kv.CreateRevision == token
					case kv.CreateRevision < token:
						ahead[string(kv.Key)] = weight(kv)
						sum += weight(kv)
					}
				}
				if !mine {
					// Only the lease's end removes a waiting ticket.
					return nil, ErrSessionLost
				}
				if sum <= l.size {
					return newPermit(l.s, key, token, n), nil
				}
				rev = resp.Get().Header.Revision
				break
			}
			if err := l.interrupted(ctx, key, token); err != nil {
				return nil, err
			}
			timer := time.NewTimer(pause)
			select {
			case <-timer.C:
			case <-ctx.Done():
			case <-l.s.ctx.Done():
			}
			timer.Stop()
			if err := l.interrupted(ctx, key, token); err != nil {
				return nil, err
			}
		}
	}
}

// watch follows the line from revision rev+1. It reports granted once the
// tickets ahead that are left fit with this one, lost if this ticket was
// deleted (its lease ended), an error if ctx or the session ended, and
// none of these if the watch broke and the line must be read again.
func (l *line) watch(ctx, rctx context.Context, key string, n int, ahead map[string]int, sum *int, rev int64) (granted, lost bool, err error) {
	// A watch that requires a leader is cancelled by a member that lost
	// its leader, rather than going silent.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(rctx))
	defer cancel()
	wch := l.s.cli.Watch(wctx, l.tickets, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	for {
		select {
		case <-ctx.Done():
			return false, false, l.withdraw(ctx, key)
		case <-l.s.ctx.Done():
			return false, false, ErrSessionLost
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.Err() != nil {
				return false, false, nil
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if k == key {
					return false, true, nil
				}
				if w, ok := ahead[k]; ok {
					delete(ahead, k)
					*sum -= w
				}
			}
			if *sum <= l.size {
				return true, false, nil
			}
		}
	}
}

// interrupted reports why a waiting call must stop, after withdrawing its
// ticket, or nil to go on waiting.
func (l *line) interrupted(ctx context.Context, key string, token int64) error {
	if l.s.alive() != nil {
		return ErrSessionLost
	}
	if ctxErr(ctx) != nil {
		return l.withdraw(ctx, key)
	}
	return nil
}

// withdraw deletes the ticket of a call whose ctx ended and returns
// ctx.Err(). If the ticket was granted in the same moment, its permits pass
// on to those behind: the call returns the error and holds nothing. The
// delete cannot remove anyone else's key (keys are per call), so it needs
// no comparison and may be retried.
func (l *line) withdraw(ctx context.Context, key string) error {
	l.s.cleanup(ctx, clientv3.OpDelete(key))
	return ctxErr(ctx)
}

// abandon cleans up after a put whose outcome is unknown: a tombstone makes
// the put, if the server applies it later, a no-op, and the ticket goes if
// it landed already. The tombstone lives on the session's lease, so it
// lasts exactly as long as the late put could still land.
func (l *line) abandon(ctx context.Context, key, tomb string, err error) error {
	if isLeaseGone(err) {
		return ErrSessionLost // nothing was written: a lease put needs its lease
	}
	l.s.cleanup(ctx,
		clientv3.OpPut(tomb, "", clientv3.WithLease(l.s.lease)),
		clientv3.OpDelete(key))
	return l.s.rpcError(ctx, l.op("join line of"), err)
}

// tryAcquire takes n permits if that can be done at once without passing
// anyone, and otherwise leaves no trace: it reads the line, and only if
// nobody waits and n fits does it put its ticket, conditional on no ticket
// having joined since the read. A ticket that joined in between may be one
// that now waits; the failed transaction returns the line afresh, and the
// check is made again, a few times at most.
func (l *line) tryAcquire(ctx context.Context, n int) (*Permit, error) {
	if err := l.s.alive(); err != nil {
		return nil, err
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	rctx, stop := l.s.bind(ctx)
	defer stop()
	resp, err := l.s.cli.Do(rctx, l.readOp())
	if err != nil {
		return nil, l.s.rpcError(ctx, l.op("read"), err)
	}
	kvs, rev := resp.Get().Kvs, resp.Get().Header.Revision
	id := l.s.newID()
	key, tomb := l.tickets+id, l.tombs+id
	for range 8 {
		t := l.count(kvs)
		if t.waiting > 0 || t.granted+n > l.size {
			return nil, ErrWouldBlock
		}
		unchanged := clientv3.Compare(clientv3.ModRevision(l.tickets), "<", rev+1).WithPrefix()
		tresp, err := l.s.cli.Txn(rctx).If(absent(tomb), unchanged).Then(
			clientv3.OpPut(key, strconv.Itoa(n), clientv3.WithLease(l.s.lease)),
		).Else(l.readOp()).Commit()
		if err != nil {
			return nil, l.abandon(ctx, key, tomb, err)
		}
		if tresp.Succeeded {
			return newPermit(l.s, key, tresp.Header.Revision, n), nil
		}
		kvs, rev = tresp.Responses[0].GetResponseRange().Kvs, tresp.Header.Revision
	}
	return nil, ErrWouldBlock
}
