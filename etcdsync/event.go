package etcdsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// An Event is a flag kept in etcd that processes can wait for, like
// ctxsync.Event across processes: "workers wait until the index is built".
// Set raises it and wakes every waiter in every process, Clear lowers it
// again. A Wait that is woken by a Set returns nil even if a Clear follows
// at once: a pulse is never missed.
//
// The event's state is not tied to any session: it is not attached to a
// lease, so it outlives the process that set it, and stays until some
// process clears it. An Event still needs a Session, which names the etcd
// client and the key prefix and bounds every Wait: when the session ends
// (its lease is lost, or it is closed), a blocked Wait returns
// ErrSessionLost. When the context of a call ends first, the call returns
// exactly ctx.Err(); Wait then leaves the event as it was.
//
// An Event value is safe for use by any number of goroutines. Make it with
// NewEvent; a zero Event panics on first use.
type Event struct {
	s    *Session
	name string
	key  string
}

// The event's key holds "<generation> <set>": set is 1 or 0, and the
// generation counts the Sets that raised the event. A Clear keeps the
// generation. A waiter that lost track of the key's history (a compacted
// or broken watch) can still tell that a Set happened since it first read
// the key: the generation has grown, even if a Clear lowered the flag
// again.
type eventState struct {
	gen uint64
	set bool
	rev int64 // mod revision of the key; 0 while it does not exist
}

// NewEvent returns the Event called name, reached through s. It sends
// nothing to etcd; an event that was never set is not set. A nil Session
// panics.
func NewEvent(s *Session, name string) *Event {
	if s == nil {
		panic("etcdsync: NewEvent with a nil Session")
	}
	return &Event{s: s, name: name, key: s.prefix + "event/" + objectKey(name)}
}

func (e *Event) op(verb string) string { return fmt.Sprintf("%s event %q", verb, e.name) }

func parseEvent(kvs []*mvccpb.KeyValue) eventState {
	if len(kvs) == 0 {
		return eventState{}
	}
	st := eventState{rev: kvs[0].ModRevision}
	g, s, ok := strings.Cut(string(kvs[0].Value), " ")
	if !ok {
		return st // not written by this package: not set, generation 0
	}
	st.gen, _ = strconv.ParseUint(g, 10, 64)
	st.set = s == "1"
	return st
}

func (st eventState) value() string {
	v := "0"
	if st.set {
		v = "1"
	}
	return strconv.FormatUint(st.gen, 10) + " " + v
}

// Set raises the event and wakes every Wait, in every process. Until
// Clear, Wait returns at once. Setting a set event changes nothing (it
// still writes the key, so that an earlier Clear whose outcome was unknown
// cannot take effect after it). If Set returns an error, the event may or
// may not have been set (a request whose outcome is unknown may still be
// applied by the server, but not after a later Set or Clear returned).
//
// Set works as long as the client reaches etcd, also after the session has
// ended: the state belongs to no session.
func (e *Event) Set(ctx context.Context) error { return e.change(ctx, true) }

// mustBeMade refuses a zero Event, which names no key.
func (e *Event) mustBeMade() {
	if e.s == nil {
		panic("etcdsync: zero Event; make one with NewEvent")
	}
}

// Clear lowers the event, so that Wait blocks again until the next Set. A
// Wait that began before a Set and the Clear that follows it still returns
// nil. Clearing a clear event changes nothing (and writes the key, as Set
// on a set event does).
func (e *Event) Clear(ctx context.Context) error { return e.change(ctx, false) }

// change moves the event to set by a compare-and-swap on the key's mod
// revision, so that concurrent Sets raise the generation once.
//
// It writes even when the event is already as asked: an earlier Set or
// Clear whose outcome was unknown is a compare-and-swap on the revision it
// read, which may be the one read here; only a write past it keeps that
// request from taking effect after this call returns (D3). Once a write of
// anyone's has moved the key past the first read, that is done.
func (e *Event) change(ctx context.Context, set bool) error {
	e.mustBeMade()
	verb := "clear"
	if set {
		verb = "set"
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	resp, err := e.s.cli.Get(ctx, e.key)
	if err != nil {
		return rpcError(ctx, e.op(verb), err)
	}
	st := parseEvent(resp.Kvs)
	for first := true; ; first = false {
		if st.set == set && !first {
			return nil
		}
		next := eventState{gen: st.gen, set: set}
		if set && !st.set {
			next.gen++
		}
		tresp, err := e.s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(e.key), "=", st.rev)).
			Then(clientv3.OpPut(e.key, next.value())).
			Else(clientv3.OpGet(e.key)).Commit()
		if err != nil {
			return rpcError(ctx, e.op(verb), err)
		}
		if tresp.Succeeded {
			return nil
		}
		st = parseEvent(tresp.Responses[0].GetResponseRange().Kvs)
	}
}

// IsSet reports whether the event is set now.
func (e *Event) IsSet(ctx context.Context) (bool, error) {
	e.mustBeMade()
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	resp, err := e.s.cli.Get(ctx, e.key)
	if err != nil {
		return false, rpcError(ctx, e.op("read"), err)
	}
	return parseEvent(resp.Kvs).set, nil
}

// Wait blocks until the event is set, and returns nil. It returns nil at
// once if its first read finds the event set; a Set committed after that
// read wakes it even if a Clear follows at once.
//
// With a ctx already done, Wait sends nothing and returns ctx.Err(): it
// cannot know the state without a read. If ctx ends while Wait blocks, it
// returns exactly ctx.Err(). If the session ends (its lease is lost, or it
// is closed) before the event is set, it returns ErrSessionLost. Wait
// leaves nothing in etcd.
//
// The Waits of one process share one watch of the event.
func (e *Event) Wait(ctx context.Context) error {
	e.mustBeMade()
	if err := e.s.alive(); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	first, rev, err := e.read(ctx)
	if err != nil {
		return err
	}
	if first.set {
		return nil
	}
	f, err := e.s.use(e.key, false, func() view { return &eventView{} })
	if err != nil {
		return err
	}
	defer f.done()
	v := f.v.(*eventView)
	for {
		f.mu.Lock()
		// The view may be older than the first read: only a state at
		// least as new tells by its flag, but any Set since the first
		// read shows in the generation, even after a Clear, or a
		// compaction that made the view start over from a read.
		woken := v.st.gen > first.gen || (v.rev >= rev && v.st.set)
		ch := v.changed.next()
		f.mu.Unlock()
		if woken {
			return nil
		}
		if err := e.s.wait(ctx, ch); err != nil {
			if errors.Is(err, ErrSessionLost) {
				return err
			}
			return ctxErr(ctx)
		}
	}
}

// An eventView is a feed's view of an event's key.
type eventView struct {
	st      eventState
	rev     int64
	changed broadcast
}

func (v *eventView) reset(kvs []*mvccpb.KeyValue, rev int64) {
	v.st, v.rev = parseEvent(kvs), rev
	v.changed.tell()
}

func (v *eventView) apply(evs []*clientv3.Event) {
	for _, ev := range evs {
		v.rev = max(v.rev, ev.Kv.ModRevision)
		if ev.Type == mvccpb.DELETE {
			// Deleted by hand: the generation starts over.
			v.st = eventState{}
			continue
		}
		v.st = parseEvent([]*mvccpb.KeyValue{ev.Kv})
	}
	v.changed.tell()
}

// read returns the event's state and the revision it was read at.
func (e *Event) read(ctx context.Context) (eventState, int64, error) {
	cctx, stop := e.s.bind(ctx)
	defer stop()
	resp, err := e.s.cli.Get(cctx, e.key)
	if err != nil {
		return eventState{}, 0, e.s.rpcError(ctx, e.op("read"), err)
	}
	return parseEvent(resp.Kvs), resp.Header.Revision, nil
}
