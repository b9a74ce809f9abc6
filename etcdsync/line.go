package etcdsync

import (
	"context"
	"fmt"
	"net/url"
	"slices"
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
	id := l.s.ticketID()
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
	if _, sum := l.ahead(resp.Responses[1].GetResponseRange().Kvs, token, n); sum <= l.size {
		return newPermit(l.s, id, key, token, n), nil
	}
	return l.wait(ctx, rctx, id, key, token, n)
}

// ahead returns the weights of the tickets ahead of the one created at
// token, and their sum plus n.
func (l *line) ahead(kvs []*mvccpb.KeyValue, token int64, n int) (map[string]int, int) {
	ahead := map[string]int{}
	sum := n
	for _, kv := range kvs {
		if kv.CreateRevision < token {
			ahead[string(kv.Key)] = weight(kv)
			sum += weight(kv)
		}
	}
	return ahead, sum
}

// wait follows the line until the ticket is granted, ctx ends or the
// session ends. RPCs use rctx: ctx, also cancelled when the session ends.
// When etcd cannot answer or the watch breaks (a cut stream, a member that
// lost its leader, a compaction), it starts over from a fresh read, after a
// pause that grows while etcd keeps failing.
func (l *line) wait(ctx, rctx context.Context, id, key string, token int64, n int) (*Permit, error) {
	const firstPause, maxPause = 10 * time.Millisecond, 500 * time.Millisecond
	pause := firstPause
	for {
		granted, followed, err := l.follow(ctx, rctx, key, token, n)
		switch {
		case granted:
			return newPermit(l.s, id, key, token, n), nil
		case err != nil:
			return nil, err
		case followed:
			pause = firstPause // the watch worked: start over at once
			continue
		}
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-ctx.Done():
		case <-l.s.ctx.Done():
		}
		timer.Stop()
		if l.s.alive() != nil {
			return nil, ErrSessionLost
		}
		if ctxErr(ctx) != nil {
			return nil, l.withdraw(ctx, key)
		}
		pause = min(2*pause, maxPause)
	}
}

// follow opens a watch on the line's deletions, reads the line, and then
// follows the watch until the tickets still ahead fit with this one. Only
// deletions matter: tickets created later are behind this one.
//
// The watch starts at the current revision and the read comes after it, so
// no deletion falls between them; events the read already shows are
// skipped by their revision. A watch that starts from an older revision
// would work too, but etcd delivers to such a watch only every 100 ms
// until it has caught up, which would delay every grant.
//
// It reports granted; or an error when the call must end (exactly ctx.Err()
// after withdrawing the ticket, or ErrSessionLost); or neither, when the
// line must be read again, with followed telling whether the watch worked
// before it broke.
func (l *line) follow(ctx, rctx context.Context, key string, token int64, n int) (granted, followed bool, err error) {
	// A watch that requires a leader is cancelled by a member that lost
	// its leader, rather than going silent.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(rctx))
	defer cancel()
	wch := l.s.cli.Watch(wctx, l.tickets, clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	var ahead map[string]int
	sum := 0
	var readRev int64 // the revision of the read after the watch started
	for {
		select {
		case <-ctx.Done():
			return false, followed, l.withdraw(ctx, key)
		case <-l.s.ctx.Done():
			return false, followed, ErrSessionLost
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.Err() != nil {
				return false, followed, nil
			}
			if wr.Created {
				resp, err := l.s.cli.Do(rctx, l.readOp())
				if err != nil {
					return false, false, nil
				}
				kvs := resp.Get().Kvs
				if !slices.ContainsFunc(kvs, func(kv *mvccpb.KeyValue) bool {
					return string(kv.Key) == key && kv.CreateRevision == token
				}) {
					// Only the lease's end removes a waiting ticket.
					return false, false, ErrSessionLost
				}
				ahead, sum = l.ahead(kvs, token, n)
				readRev = resp.Get().Header.Revision
				followed = true
			}
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision <= readRev {
					// The read shows this already. A member that lags
					// behind starts "now" at an older revision and
					// sends such events: one may be the deletion of an
					// earlier ticket of the same name (ids are reused),
					// which must not count as this one's.
					continue
				}
				k := string(ev.Kv.Key)
				if k == key {
					return false, followed, ErrSessionLost // its lease ended
				}
				if w, ok := ahead[k]; ok {
					delete(ahead, k)
					sum -= w
				}
			}
			if followed && sum <= l.size {
				return true, true, nil
			}
		}
	}
}

// withdraw deletes the ticket of a call whose ctx ended and returns
// ctx.Err(). If the ticket was granted in the same moment, its permits pass
// on to those behind: the call returns the error and holds nothing. The
// delete cannot remove anyone else's key (keys are per call, and the id of
// a withdrawn ticket is never reused: the delete may still be retried by
// the session's cleaner), so it needs no comparison.
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
	id := l.s.ticketID()
	key, tomb := l.tickets+id, l.tombs+id
	for range 8 {
		t := l.count(kvs)
		if t.waiting > 0 || t.granted+n > l.size {
			l.s.reuseID(id) // never written: every put with it was refused
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
			return newPermit(l.s, id, key, tresp.Header.Revision, n), nil
		}
		kvs, rev = tresp.Responses[0].GetResponseRange().Kvs, tresp.Header.Revision
	}
	l.s.reuseID(id)
	return nil, ErrWouldBlock
}
