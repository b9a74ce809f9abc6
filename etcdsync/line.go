package etcdsync

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ctxsync/ctxsync"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A line is the FIFO line of one Lock or Semaphore in etcd: one ticket key
// per call under tickets, attached to the caller's lease, with the weight
// as its value. etcd's commit order is the line's order: tickets sort by
// the revision that created them.
//
// A ticket is granted when every ticket ahead of it is granted and it was
// granted before the size was last lowered (its creation revision is at
// most keep, kept in the size key), or its weight plus the weights of the
// tickets ahead of it fit the size, or its weight is 0. That is a fact of
// the keys alone, so every process computes the same answer, and it only
// ever turns from false to true: tickets join at the end and leave only by
// being released, withdrawn or losing their lease; raising the size lets
// more fit; and a SetSize that lowers it writes, in the same transaction
// and on the condition that the line did not change since it read it, the
// keep that covers every ticket granted until then. So a grant once seen
// stays a grant, and the granted tickets are always the front of the line.
// (A lowering with more holders than a transaction can name is conditional
// on its first waiter only, and mends keep after its write if that waiter
// was granted in between; until the mend, a process reading the line
// afresh counts such a ticket as waiting, which only holds back those
// behind it. See Semaphore.SetSize.)
// A weighted request at the head that does not fit holds back the smaller
// ones behind it: that is what keeps a large request from starving.
//
// Each process follows a line it uses with one watch (a feed), shared by
// its calls: a call joins with one write, waits until the feed's view shows
// its ticket, and is granted from the view.
type line struct {
	s       *Session
	what    string // "lock" or "semaphore", for error messages
	name    string
	base    string // prefix of every key of the line: what its feed follows
	tickets string // key prefix of the tickets
	tombs   string // key prefix of the tombstones of abandoned tickets
	sizeKey string // the size and keep of a Semaphore; "" for a Lock (size 1)

	// size is the size as this process last saw it (D8).
	size atomic.Int64
}

func newLine(s *Session, kind, what, name string, size int) *line {
	base := s.prefix + kind + "/" + objectKey(name) + "/"
	l := &line{s: s, what: what, name: name, base: base, tickets: base + "q/", tombs: base + "x/"}
	if kind == "sem" {
		l.sizeKey = base + "size"
	}
	l.size.Store(int64(size))
	return l
}

// objectKey escapes a name so that no name's keys are a prefix of
// another's ("a" and "a/q" must not share a line).
func objectKey(name string) string { return url.PathEscape(name) }

func (l *line) op(verb string) string { return fmt.Sprintf("%s %s %q", verb, l.what, l.name) }

// readOp reads every key of the line: tickets, in line order, and the size
// (with more options, e.g. as of an earlier revision).
func (l *line) readOp(opts ...clientv3.OpOption) clientv3.Op {
	return clientv3.OpGet(l.base, append([]clientv3.OpOption{clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)}, opts...)...)
}

type ticket struct {
	key    string
	create int64
	w      int
}

// lineState is the line at one revision.
type lineState struct {
	tickets []ticket // in line order
	size    int
	keep    int64 // tickets created at or before keep are granted
	sizeRev int64 // mod revision of the size key; 0 while it does not exist

	// The first front tickets are granted, and hold held permits. A view
	// keeps them as the line changes, so that an event costs it the
	// tickets the event grants, not a walk of the whole line (with 10,000
	// in line, a walk of 10,000 tickets in every process for every event).
	front, held int
}

// sizeValue is the size key's value: the size, and keep if there is one.
func sizeValue(size int, keep int64) string {
	v := strconv.Itoa(size)
	if keep > 0 {
		v += " " + strconv.FormatInt(keep, 10)
	}
	return v
}

// parseSize reads a size key's value; ok is false if etcdsync did not
// write it.
func parseSize(v []byte) (size int, keep int64, ok bool) {
	f := strings.Fields(string(v))
	if len(f) < 1 || len(f) > 2 {
		return 0, 0, false
	}
	size, err := strconv.Atoi(f[0])
	if err != nil || size < 0 {
		return 0, 0, false
	}
	if len(f) == 2 {
		if keep, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return size, keep, true
}

// parse reads the line from the keys of readOp, in creation order.
func (l *line) parse(kvs []*mvccpb.KeyValue) lineState {
	st := lineState{size: int(l.size.Load())}
	if l.sizeKey == "" {
		st.size = 1
	}
	for _, kv := range kvs {
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, l.tickets):
			st.tickets = append(st.tickets, ticket{key: k, create: kv.CreateRevision, w: weight(kv)})
		case k == l.sizeKey:
			if size, keep, ok := parseSize(kv.Value); ok {
				st.size, st.keep = size, keep
			}
			st.sizeRev = kv.ModRevision
		}
	}
	return st
}

// grant extends the front of granted tickets as far as it goes, and
// returns how many tickets it holds and the permits they hold. Tickets
// granted already stay granted.
func (st *lineState) grant(told func(key string)) (n, held int) {
	for st.front < len(st.tickets) {
		t := &st.tickets[st.front]
		if t.create > st.keep && st.held+t.w > st.size && t.w > 0 {
			break
		}
		st.front++
		st.held += t.w
		if told != nil {
			told(t.key)
		}
	}
	return st.front, st.held
}

// remove takes the ticket at i out of the line.
func (st *lineState) remove(i int) {
	if i < st.front {
		st.front--
		st.held -= st.tickets[i].w
	}
	if i == 0 {
		// The usual case, a release at the front: no copy of the line.
		st.tickets[0] = ticket{}
		st.tickets = st.tickets[1:]
		return
	}
	st.tickets = slices.Delete(st.tickets, i, i+1)
}

// reweigh sets the weight of the ticket at i: only a key etcdsync did not
// write changes it.
func (st *lineState) reweigh(i, w int) {
	if i < st.front {
		st.held += w - st.tickets[i].w
	}
	st.tickets[i].w = w
}

// tally is what a read of the line shows.
type tally struct {
	granted int // permits held by granted tickets
	waiting int // tickets not granted
	size    int
}

func (st *lineState) tally() tally {
	n, held := st.grant(nil)
	return tally{granted: held, waiting: len(st.tickets) - n, size: st.size}
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

// read reads the line once, and notes the size it shows.
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
	st := l.parse(resp.Get().Kvs)
	l.size.Store(int64(st.size))
	return st.tally(), nil
}

// A lineView is a feed's view of a line.
type lineView struct {
	l       *line
	st      lineState
	rev     int64
	byKey   map[string]int64         // creation revision of each ticket
	waiters map[string]chan struct{} // the calls waiting in this process, by ticket
	held    map[string]*Permit       // permits of this process whose loss is watched, by ticket
	lines   map[*line]struct{}       // the values of the line in this process: told the size
	ready   broadcast                // told at every change
}

func (l *line) newView() view {
	return &lineView{l: l, byKey: map[string]int64{}, waiters: map[string]chan struct{}{}, held: map[string]*Permit{}, lines: map[*line]struct{}{}}
}

func (v *lineView) tell(key string) {
	if ch, ok := v.waiters[key]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (v *lineView) tellAll() {
	for key := range v.waiters {
		v.tell(key)
	}
	v.ready.tell()
}

func (v *lineView) noteSize() {
	for l := range v.lines {
		l.size.Store(int64(v.st.size))
	}
}

func (v *lineView) reset(kvs []*mvccpb.KeyValue, rev int64) {
	v.st = v.l.parse(kvs)
	v.rev = rev
	clear(v.byKey)
	for _, t := range v.st.tickets {
		v.byKey[t.key] = t.create
	}
	v.st.grant(nil)
	for _, p := range v.held {
		v.checkHeld(p)
	}
	v.noteSize()
	v.tellAll()
}

// checkHeld loses p if the view, which shows p's ticket's revision or a
// later one, no longer has the ticket: something other than p's own
// Release removed it (an operator, the lease's end).
func (v *lineView) checkHeld(p *Permit) {
	if v.rev >= p.token && v.byKey[p.key] != p.token {
		v.lost(p)
	}
}

func (v *lineView) lost(p *Permit) {
	if p.givenBack.Load() {
		return // its own Release removed it, or will
	}
	delete(v.held, p.key)
	p.lose()
}

// find returns the index of the ticket created at create, or -1.
func (v *lineView) find(create int64) int {
	ts := v.st.tickets
	i := sort.Search(len(ts), func(i int) bool { return ts[i].create >= create })
	if i < len(ts) && ts[i].create == create {
		return i
	}
	return -1
}

func (v *lineView) apply(evs []*clientv3.Event) {
	sized := false
	for _, ev := range evs {
		v.rev = max(v.rev, ev.Kv.ModRevision)
		k := string(ev.Kv.Key)
		switch {
		case strings.HasPrefix(k, v.l.tickets):
			// An earlier ticket of the same id was deleted before p's
			// was created: only a later delete is p's.
			if p, ok := v.held[k]; ok && ev.Type == mvccpb.DELETE && ev.Kv.ModRevision > p.token {
				v.lost(p)
			}
			c, known := v.byKey[k]
			switch {
			case ev.Type == mvccpb.DELETE && known:
				if i := v.find(c); i >= 0 {
					v.st.remove(i)
				}
				delete(v.byKey, k)
			case ev.Type == mvccpb.PUT && known:
				if i := v.find(c); i >= 0 {
					v.st.reweigh(i, weight(ev.Kv)) // not written by etcdsync
				}
			case ev.Type == mvccpb.PUT:
				// Events come in revision order: a new ticket is the
				// last of the line.
				v.st.tickets = append(v.st.tickets, ticket{key: k, create: ev.Kv.CreateRevision, w: weight(ev.Kv)})
				v.byKey[k] = ev.Kv.CreateRevision
			}
			v.tell(k)
		case k == v.l.sizeKey && ev.Type == mvccpb.PUT:
			if size, keep, ok := parseSize(ev.Kv.Value); ok {
				v.st.size, v.st.keep = size, keep
			}
			v.st.sizeRev = ev.Kv.ModRevision
			sized = true
		}
	}
	v.st.grant(v.tell)
	if sized {
		v.noteSize()
		v.tellAll()
	}
	v.ready.tell()
}

// ticketStatus is where a waiting ticket stands in the view.
type ticketStatus int

const (
	behind   ticketStatus = iota // the view does not show the ticket yet, or it waits
	granted                      // granted
	gone                         // removed: only the lease's end removes a waiting ticket
	tooLarge                     // waiting, and above the size now in force
)

func (v *lineView) status(key string, token int64, n int) ticketStatus {
	if v.rev < token {
		return behind
	}
	c, ok := v.byKey[key]
	if !ok || c != token {
		return gone
	}
	i := v.find(c)
	switch {
	case i < 0:
		return gone
	case i < v.st.front:
		return granted
	case n > v.st.size:
		return tooLarge
	}
	return behind
}

// follow starts using the line's feed; the caller must call done.
func (l *line) follow() (*feed, *lineView, error) {
	f, err := l.s.use(l.base, true, l.newView)
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	v := f.v.(*lineView)
	v.lines[l] = struct{}{}
	f.mu.Unlock()
	return f, v, nil
}

// caughtUp waits until the feed's view shows revision rev.
func (l *line) caughtUp(ctx context.Context, f *feed, v *lineView, rev int64) error {
	for {
		f.mu.Lock()
		if v.rev >= rev {
			f.mu.Unlock()
			return nil
		}
		ch := v.ready.next()
		f.mu.Unlock()
		if err := l.s.wait(ctx, ch); err != nil {
			return err
		}
	}
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
	// The feed starts (if the process does not follow the line yet) while
	// the ticket is written.
	f, v, err := l.follow()
	if err != nil {
		return nil, err
	}
	defer f.done()
	rctx, stop := l.s.bind(ctx)
	defer stop()
	id := l.s.ticketID()
	key, tomb := l.tickets+id, l.tombs+id
	// One write, which reads no ticket. If the process's view already
	// shows tickets in the line, the write is only the ticket's put, and
	// the call is granted from the view once the view shows its ticket:
	// it would most likely wait anyway. Otherwise the write also counts
	// the tickets, so that a call alone in the line is granted at once,
	// without waiting for its own event. A join behind others does not
	// count because etcd counts a range by visiting every key in it:
	// behind 10,000 the count made the join 1.8 times as long as behind
	// 10 (BENCHMARKS.md). The size (one key) is read to refuse a weight
	// above it at once. The put is conditional on the ticket's tombstone,
	// so that if this RPC's outcome is unknown and the server applies it
	// only after the cleanup below, it lands nowhere.
	f.mu.Lock()
	queued := v.rev > 0 && len(v.st.tickets) > 0
	f.mu.Unlock()
	ops := []clientv3.Op{clientv3.OpPut(key, strconv.Itoa(n), clientv3.WithLease(l.s.lease))}
	count, sizeAt := -1, -1
	if !queued {
		count = len(ops)
		ops = append(ops, clientv3.OpGet(l.tickets, clientv3.WithPrefix(), clientv3.WithCountOnly()))
	}
	if l.sizeKey != "" {
		sizeAt = len(ops)
		ops = append(ops, clientv3.OpGet(l.sizeKey))
	}
	resp, err := l.s.cli.Txn(rctx).If(absent(tomb)).Then(ops...).Commit()
	if err != nil {
		return nil, l.abandon(ctx, key, tomb, err)
	}
	if !resp.Succeeded {
		// A tombstone names only ids that are never used again.
		return nil, fmt.Errorf("etcdsync: %s: ticket id %s used twice", l.op("join line of"), id)
	}
	token := resp.Header.Revision // the txn's one write created the ticket
	size := 1
	if sizeAt >= 0 {
		size = int(l.size.Load())
		if kvs := resp.Responses[sizeAt].GetResponseRange().Kvs; len(kvs) == 1 {
			if sz, _, ok := parseSize(kvs[0].Value); ok {
				size = sz
			}
		}
	}
	switch {
	case n > size:
		l.s.cleanup(ctx, clientv3.OpDelete(key))
		return nil, ctxsync.ErrExceedsBound
	case count >= 0 && resp.Responses[count].GetResponseRange().Count == 1:
		// Alone in the line at the revision that created it.
		return newPermit(l, id, key, token, n), nil
	}
	wake := make(chan struct{}, 1)
	f.mu.Lock()
	v.waiters[key] = wake
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(v.waiters, key)
		f.mu.Unlock()
	}()
	for {
		f.mu.Lock()
		st := v.status(key, token, n)
		f.mu.Unlock()
		switch st {
		case granted:
			return newPermit(l, id, key, token, n), nil
		case gone:
			return nil, ErrSessionLost
		case tooLarge:
			// The size was lowered below n while it waited: it can never
			// be granted.
			l.s.cleanup(ctx, clientv3.OpDelete(key))
			return nil, ctxsync.ErrExceedsBound
		}
		if err := l.s.wait(ctx, wake); err != nil {
			if errors.Is(err, ErrSessionLost) {
				return nil, err
			}
			return nil, l.withdraw(ctx, key)
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
// having joined and the size not having changed since the read. A ticket
// that joined in between may be one that now waits; the failed transaction
// returns the line afresh, and the check is made again, a few times at
// most. Tickets that left in between only make more room.
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
		st := l.parse(kvs)
		l.size.Store(int64(st.size))
		if n > st.size {
			l.s.reuseID(id)
			return nil, ctxsync.ErrExceedsBound
		}
		granted, held := st.grant(nil)
		if granted < len(st.tickets) || (held+n > st.size && n > 0) {
			l.s.reuseID(id) // never written: every put with it was refused
			return nil, ErrWouldBlock
		}
		cmps := []clientv3.Cmp{absent(tomb), clientv3.Compare(clientv3.ModRevision(l.tickets), "<", rev+1).WithPrefix()}
		if l.sizeKey != "" {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.sizeKey), "=", st.sizeRev))
		}
		tresp, err := l.s.cli.Txn(rctx).If(cmps...).Then(
			clientv3.OpPut(key, strconv.Itoa(n), clientv3.WithLease(l.s.lease)),
		).Else(l.readOp()).Commit()
		if err != nil {
			return nil, l.abandon(ctx, key, tomb, err)
		}
		if tresp.Succeeded {
			return newPermit(l, id, key, tresp.Header.Revision, n), nil
		}
		kvs, rev = tresp.Responses[0].GetResponseRange().Kvs, tresp.Header.Revision
	}
	l.s.reuseID(id)
	return nil, ErrWouldBlock
}
