package etcdsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ctxsync/ctxsync"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Barrier lets a fixed number of parties in any number of processes wait
// for each other, like ctxsync.Barrier across processes: "the 4 shards line
// up before phase 2". Each party calls Wait; once parties of them wait,
// they are all released together, each with a distinct index from 0 to
// parties-1 by the order etcd committed their arrivals (the last to arrive
// gets parties-1). The barrier is cyclic: it then starts a new round, and
// parties that arrive while a tripped round is leaving wait for the next.
// A round that has tripped is final: its parties get their indexes
// whatever happens afterwards.
//
// A Barrier needs a Session: each waiting party is attached to its
// session's lease, and a party whose session ends while it waits (its
// process died, was cut off for longer than the TTL, or closed the
// session) is withdrawn, so a round never trips with a dead party; its Wait
// returns ErrSessionLost. A waiter whose context ends before its round
// trips withdraws too: Wait returns exactly ctx.Err() and the barrier is
// not broken. Abort breaks the barrier for every process until some
// process calls Reset; waiters at a Reset or an Abort return
// ctxsync.ErrBrokenBarrier.
//
// The barrier's size and round live in etcd on no lease, so they outlive
// every process. A round's parties are written in one etcd transaction, so
// parties above about 120 exceed etcd's default limit of operations per
// transaction.
//
// A Barrier value is safe for use by any number of goroutines. Make it with
// NewBarrier; a zero Barrier panics on first use.
type Barrier struct {
	s       *Session
	name    string
	parties int
	state   string // the state key
	markers string // key prefix of the parties' markers
	tombs   string // key prefix of the tombstones of abandoned arrivals

	// broken is what this value knows without asking etcd: it aborted
	// the barrier, or the last state it read was broken (D8).
	broken atomic.Bool
}

// The state key holds barrierState as JSON. Every write to it is a
// compare-and-swap on its mod revision, made together with the marker
// writes it implies.
//
// Each arrival has an id of its own and a marker key, attached to its
// session's lease, whose value says where the arrival is:
//
//	w       waiting in the round
//	t <i>   released by a trip with index i
//	a, r    sent away by an Abort or a Reset
//
// An arrival counts in its round while its id is in Arrived and its marker
// still reads w (it was not modified since it was created). A marker goes
// when its lease ends, or when its waiter withdraws (it deletes its own
// marker, on the condition that it still reads w): either way the arrival
// no longer counts, and the next compare-and-swap prunes its id. A trip
// compares every counted marker, so if any of them went in the meantime,
// it fails and is tried again on a fresh read.
type barrierState struct {
	Round   uint64   `json:"round"`
	Broken  bool     `json:"broken,omitempty"`
	Arrived []string `json:"arrived,omitempty"` // ids in etcd's commit order
}

const (
	markWaiting = "w"
	markAbort   = "a"
	markReset   = "r"
)

// NewBarrier returns the Barrier called name, for parties parties. The
// first process to make name fixes its number of parties in etcd (for
// good: it outlives every session); making it again with another number
// returns ErrSizeMismatch. parties < 1 or a nil Session panics.
func NewBarrier(ctx context.Context, s *Session, name string, parties int) (*Barrier, error) {
	if s == nil {
		panic("etcdsync: NewBarrier with a nil Session")
	}
	if parties < 1 {
		panic("etcdsync: Barrier needs at least 1 party")
	}
	if err := s.alive(); err != nil {
		return nil, err
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	base := s.prefix + "barrier/" + objectKey(name)
	b := &Barrier{
		s: s, name: name, parties: parties,
		state: base + "/state", markers: base + "/p/", tombs: base + "/x/",
	}
	sizeKey := base + "/parties"
	resp, err := s.cli.Txn(ctx).If(absent(sizeKey)).
		Then(clientv3.OpPut(sizeKey, strconv.Itoa(parties))).
		Else(clientv3.OpGet(sizeKey)).Commit()
	if err != nil {
		// A put whose outcome is unknown is harmless: it can only write
		// the same number, and only if none was there.
		return nil, rpcError(ctx, b.op("make"), err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) != 1 || string(kvs[0].Value) != strconv.Itoa(parties) {
			return nil, fmt.Errorf("%w: barrier %q", ErrSizeMismatch, name)
		}
	}
	return b, nil
}

func (b *Barrier) op(verb string) string { return fmt.Sprintf("%s barrier %q", verb, b.name) }

// Parties is the number of parties needed to trip the barrier.
func (b *Barrier) Parties() int {
	b.mustBeMade()
	return b.parties
}

// mustBeMade refuses a zero Barrier, which has no parties.
func (b *Barrier) mustBeMade() {
	if b.s == nil {
		panic("etcdsync: zero Barrier; make one with NewBarrier")
	}
}

// snapshot is one consistent read of the state key and every marker.
type snapshot struct {
	st      barrierState
	rev     int64                       // mod revision of the state key; 0 while it does not exist
	markers map[string]*mvccpb.KeyValue // by id
	at      int64                       // the revision read
}

// live lists the arrivals that count in the round, in commit order.
func (sn *snapshot) live() []string {
	var ids []string
	for _, id := range sn.st.Arrived {
		if kv, ok := sn.markers[id]; ok && string(kv.Value) == markWaiting && kv.ModRevision == kv.CreateRevision {
			ids = append(ids, id)
		}
	}
	return ids
}

func (b *Barrier) readOps() []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(b.state), clientv3.OpGet(b.markers, clientv3.WithPrefix())}
}

// parse reads a snapshot from the responses of readOps, found at
// responses[i] and responses[i+1].
func (b *Barrier) parse(resp *clientv3.TxnResponse, i int) (*snapshot, error) {
	sn := &snapshot{markers: map[string]*mvccpb.KeyValue{}, at: resp.Header.Revision}
	if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
		sn.rev = kvs[0].ModRevision
		if err := json.Unmarshal(kvs[0].Value, &sn.st); err != nil {
			return nil, fmt.Errorf("etcdsync: %s: state not written by etcdsync: %w", b.op("read"), err)
		}
	}
	for _, kv := range resp.Responses[i+1].GetResponseRange().Kvs {
		sn.markers[strings.TrimPrefix(string(kv.Key), b.markers)] = kv
	}
	b.broken.Store(sn.st.Broken)
	return sn, nil
}

func (b *Barrier) read(ctx context.Context) (*snapshot, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	resp, err := b.s.cli.Txn(ctx).Then(b.readOps()...).Commit()
	if err != nil {
		return nil, rpcError(ctx, b.op("read"), err)
	}
	return b.parse(resp, 0)
}

// unchanged compares true while the state key is as sn read it.
func (sn *snapshot) unchanged(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(key), "=", sn.rev)
}

func stateValue(st barrierState) string {
	v, err := json.Marshal(st)
	if err != nil {
		panic(err) // a struct of strings and numbers always marshals
	}
	return string(v)
}

// Waiting reports how many parties wait in the current round.
func (b *Barrier) Waiting(ctx context.Context) (int, error) {
	b.mustBeMade()
	sn, err := b.read(ctx)
	if err != nil {
		return 0, err
	}
	return len(sn.live()), nil
}

// Broken reports whether the barrier is broken (aborted and not reset).
func (b *Barrier) Broken(ctx context.Context) (bool, error) {
	b.mustBeMade()
	sn, err := b.read(ctx)
	if err != nil {
		return false, err
	}
	return sn.st.Broken, nil
}

// Reset returns the barrier to its empty, unbroken state. Parties waiting
// at that moment, in every process, return ctxsync.ErrBrokenBarrier. If
// Reset returns an error, the barrier may or may not have been reset.
func (b *Barrier) Reset(ctx context.Context) error { return b.endRound(ctx, false) }

// Abort breaks the barrier: parties waiting now, in every process, and
// every Wait until the next Reset, return ctxsync.ErrBrokenBarrier. If
// Abort returns an error, the barrier may or may not have been broken.
func (b *Barrier) Abort(ctx context.Context) error { return b.endRound(ctx, true) }

// endRound ends the round without a trip (a Reset or an Abort): the state
// moves to the next round, broken or not, and every counted marker is
// told, in one transaction.
func (b *Barrier) endRound(ctx context.Context, broken bool) error {
	b.mustBeMade()
	verb, mark := "reset", markReset
	if broken {
		verb, mark = "abort", markAbort
	}
	sn, err := b.read(ctx)
	if err != nil {
		return err
	}
	for {
		live := sn.live()
		cmps := []clientv3.Cmp{sn.unchanged(b.state)}
		ops := []clientv3.Op{clientv3.OpPut(b.state, stateValue(barrierState{Round: sn.st.Round + 1, Broken: broken}))}
		for _, id := range live {
			kv := sn.markers[id]
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
			ops = append(ops, clientv3.OpPut(string(kv.Key), mark, clientv3.WithIgnoreLease()))
		}
		resp, err := b.s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(b.readOps()...).Commit()
		if err != nil {
			return rpcError(ctx, b.op(verb), err)
		}
		if resp.Succeeded {
			b.broken.Store(broken)
			return nil
		}
		if sn, err = b.parse(resp, 0); err != nil {
			return err
		}
	}
}

// Wait blocks until parties parties wait in the round, then returns the
// caller's index in it (0 to parties-1, by the order etcd committed the
// arrivals) and nil.
//
// On any error Wait returns -1. ctxsync.ErrBrokenBarrier if the barrier is
// broken, or is reset or aborted while the caller waits; a Barrier value
// that aborted the barrier or saw it broken in the last state it read
// returns it also when ctx is already done, without asking etcd. Else, with
// a ctx already done, Wait sends nothing and returns ctx.Err(). If ctx ends
// before the round trips, the caller withdraws (it is no longer counted,
// and the barrier is not broken) and Wait returns exactly ctx.Err(); if the
// round tripped in that moment, Wait returns the index and nil instead.
// ErrSessionLost if the session ends first: the party is withdrawn as its
// lease ends.
//
// An arrival whose request had an unknown outcome is resolved like a
// withdrawal: it is never counted twice, and a late copy of the request
// that the server applies after Wait returned lands nowhere. Only if etcd
// cannot be reached at all to withdraw (the session then keeps trying) may
// a round trip in that time counting a party whose Wait returned ctx.Err().
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	b.mustBeMade()
	if err := b.s.alive(); err != nil {
		return -1, err
	}
	if err := ctxErr(ctx); err != nil {
		if b.broken.Load() {
			return -1, ctxsync.ErrBrokenBarrier
		}
		return -1, err
	}
	// The feed of the markers starts (if the process does not follow the
	// barrier yet) while the caller arrives.
	f, err := b.s.use(b.markers, true, func() view { return &markerView{markers: map[string]*mvccpb.KeyValue{}} })
	if err != nil {
		return -1, err
	}
	defer f.done()
	id := b.s.newID()
	marker, tomb := b.markers+id, b.tombs+id
	sn, err := b.read(ctx)
	if err != nil {
		return -1, err
	}
	for {
		if sn.st.Broken {
			return -1, ctxsync.ErrBrokenBarrier
		}
		live := sn.live()
		// Every write prunes the ids that no longer count.
		cmps := []clientv3.Cmp{sn.unchanged(b.state), absent(tomb)}
		var ops []clientv3.Op
		trip := len(live)+1 >= b.parties
		if trip {
			// The caller completes the round: the trip is atomic with its
			// arrival. Its own marker records its index too, for the
			// case that the outcome of this request is unknown.
			released, rest := live[:b.parties-1], live[b.parties-1:]
			ops = append(ops,
				clientv3.OpPut(b.state, stateValue(barrierState{Round: sn.st.Round + 1, Arrived: rest})),
				clientv3.OpPut(marker, "t "+strconv.Itoa(b.parties-1), clientv3.WithLease(b.s.lease)))
			for i, other := range released {
				kv := sn.markers[other]
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
				ops = append(ops, clientv3.OpPut(string(kv.Key), "t "+strconv.Itoa(i), clientv3.WithIgnoreLease()))
			}
		} else {
			ops = append(ops,
				clientv3.OpPut(b.state, stateValue(barrierState{Round: sn.st.Round, Arrived: append(slices.Clip(live), id)})),
				clientv3.OpPut(marker, markWaiting, clientv3.WithLease(b.s.lease)))
		}
		resp, err := b.s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(b.readOps()...).Commit()
		if err != nil {
			return b.abandon(ctx, marker, tomb, err)
		}
		if !resp.Succeeded {
			if sn, err = b.parse(resp, 0); err != nil {
				return -1, err
			}
			continue
		}
		if trip {
			b.s.cleanup(ctx, clientv3.OpDelete(marker))
			return b.parties - 1, nil
		}
		return b.wait(ctx, f, marker, resp.Header.Revision)
	}
}

// outcome is what a marker's value says about its arrival: done is false
// while it waits.
func (b *Barrier) outcome(kv *mvccpb.KeyValue) (index int, done bool, err error) {
	if kv == nil {
		// Only the lease's end deletes a marker behind its waiter's back.
		return -1, true, ErrSessionLost
	}
	switch v := string(kv.Value); {
	case v == markWaiting:
		return -1, false, nil
	case v == markAbort:
		b.broken.Store(true)
		return -1, true, ctxsync.ErrBrokenBarrier
	case v == markReset:
		b.broken.Store(false)
		return -1, true, ctxsync.ErrBrokenBarrier
	case strings.HasPrefix(v, "t "):
		if i, err := strconv.Atoi(v[2:]); err == nil {
			return i, true, nil
		}
	}
	return -1, true, fmt.Errorf("etcdsync: %s: marker not written by etcdsync: %q", b.op("wait at"), kv.Value)
}

// collect returns a marker's outcome to its waiter, and deletes the
// marker: the waiter has read it.
func (b *Barrier) collect(ctx context.Context, kv *mvccpb.KeyValue) (int, error) {
	i, _, err := b.outcome(kv)
	if kv != nil {
		b.s.cleanup(ctx, clientv3.OpDelete(string(kv.Key)))
	}
	return i, err
}

// wait follows the caller's own marker, created at revision created, in
// the feed of the barrier's markers (one watch, shared by the Waits of the
// process), until a trip, a Reset or an Abort writes it, ctx ends, or the
// session ends.
func (b *Barrier) wait(ctx context.Context, f *feed, marker string, created int64) (int, error) {
	v := f.v.(*markerView)
	for {
		f.mu.Lock()
		kv, ok := v.markers[marker]
		caughtUp := v.rev >= created
		ch := v.changed.next()
		f.mu.Unlock()
		switch {
		case caughtUp && !ok:
			return b.collect(ctx, nil) // only the lease's end deletes it
		case caughtUp && kv.ModRevision != created:
			// The marker leaves "waiting" once: this is the outcome.
			return b.collect(ctx, kv)
		}
		switch err := b.s.wait(ctx, ch); {
		case errors.Is(err, ErrSessionLost):
			return b.sessionEnded(ctx, marker, created)
		case err != nil:
			return b.cancelled(ctx, marker, created)
		}
	}
}

// A markerView is a feed's view of a barrier's markers.
type markerView struct {
	markers map[string]*mvccpb.KeyValue
	rev     int64
	changed broadcast
}

func (v *markerView) reset(kvs []*mvccpb.KeyValue, rev int64) {
	clear(v.markers)
	for _, kv := range kvs {
		v.markers[string(kv.Key)] = kv
	}
	v.rev = rev
	v.changed.tell()
}

func (v *markerView) apply(evs []*clientv3.Event) {
	for _, ev := range evs {
		v.rev = max(v.rev, ev.Kv.ModRevision)
		if ev.Type == mvccpb.DELETE {
			delete(v.markers, string(ev.Kv.Key))
		} else {
			v.markers[string(ev.Kv.Key)] = ev.Kv
		}
	}
	v.changed.tell()
}

// withdraw takes back the caller's arrival after its ctx ended, or after
// an arrival whose outcome was unknown turned out to have landed: it
// deletes the marker on the condition that it still waits, so that no trip
// can count it any more, and reports withdrawn. If a trip, a Reset or an
// Abort came first, that is the outcome. If etcd cannot be reached, the
// session goes on trying to delete the marker, and withdrawn is reported.
func (b *Barrier) withdraw(ctx context.Context, marker string, created int64) (index int, withdrawn bool, err error) {
	wctx, cancel := b.s.cleanupContext(ctx)
	defer cancel()
	resp, err := b.s.cli.Txn(wctx).
		If(clientv3.Compare(clientv3.ModRevision(marker), "=", created)).
		Then(clientv3.OpDelete(marker)).
		Else(clientv3.OpGet(marker)).Commit()
	if err != nil {
		if b.s.alive() != nil {
			return -1, false, ErrSessionLost
		}
		b.s.retryLater(clientv3.OpDelete(marker))
		return -1, true, nil
	}
	if resp.Succeeded {
		return -1, true, nil
	}
	var kv *mvccpb.KeyValue
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		kv = kvs[0]
	}
	index, err = b.collect(ctx, kv)
	return index, false, err
}

// cancelled withdraws a waiter whose ctx ended; it returns exactly
// ctx.Err() unless its round tripped or ended first.
func (b *Barrier) cancelled(ctx context.Context, marker string, created int64) (int, error) {
	i, withdrawn, err := b.withdraw(ctx, marker, created)
	if withdrawn {
		return -1, ctxErr(ctx)
	}
	return i, err
}

// sessionEnded answers a Wait whose session ended: ErrSessionLost, unless
// the round tripped with the caller before its lease went (a tripped round
// is final). The marker goes with the lease; if the session was closed
// and its lease is not revoked yet, one short try deletes it at once.
func (b *Barrier) sessionEnded(ctx context.Context, marker string, created int64) (int, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	resp, err := b.s.cli.Txn(wctx).
		If(clientv3.Compare(clientv3.ModRevision(marker), "=", created)).
		Then(clientv3.OpDelete(marker)).
		Else(clientv3.OpGet(marker)).Commit()
	if err != nil || resp.Succeeded {
		return -1, ErrSessionLost
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) > 0 {
		if i, _, err := b.outcome(kvs[0]); err == nil {
			_, _ = b.s.cli.Delete(wctx, marker)
			return i, nil
		}
		_, _ = b.s.cli.Delete(wctx, marker)
	}
	return -1, ErrSessionLost
}

// abandon resolves an arrival whose request had an unknown outcome like a
// withdrawal. A tombstone, on the session's lease, makes the request a
// no-op if the server applies it later (the arrival is conditional on its
// absence); the same transaction reads the marker, which then tells for
// good whether the arrival landed: if it waits, it is withdrawn; if its
// round tripped, the index is the answer. If etcd cannot be reached, the
// session goes on trying to write the tombstone and delete the marker.
func (b *Barrier) abandon(ctx context.Context, marker, tomb string, err error) (int, error) {
	if isLeaseGone(err) {
		return -1, ErrSessionLost // nothing was written: a lease put needs its lease
	}
	rctx, cancel := b.s.cleanupContext(ctx)
	defer cancel()
	resp, rerr := b.s.cli.Txn(rctx).Then(
		clientv3.OpPut(tomb, "", clientv3.WithLease(b.s.lease)),
		clientv3.OpGet(marker)).Commit()
	if rerr != nil {
		if b.s.alive() != nil || isLeaseGone(rerr) {
			return -1, ErrSessionLost
		}
		b.s.retryLater(
			clientv3.OpPut(tomb, "", clientv3.WithLease(b.s.lease)),
			clientv3.OpDelete(marker))
		return -1, rpcError(ctx, b.op("arrive at"), err)
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return -1, rpcError(ctx, b.op("arrive at"), err) // it did not land, and now never will
	}
	if _, done, _ := b.outcome(kvs[0]); done {
		return b.collect(ctx, kvs[0])
	}
	i, withdrawn, werr := b.withdraw(ctx, marker, kvs[0].ModRevision)
	if withdrawn {
		return -1, rpcError(ctx, b.op("arrive at"), err)
	}
	return i, werr
}
