package etcdsync

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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
// Clear, Wait returns at once. Setting a set event does nothing. If Set
// returns an error, the event may or may not have been set (a request whose
// outcome is unknown may still be applied by the server).
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
// nil. Clearing a clear event does nothing.
func (e *Event) Clear(ctx context.Context) error { return e.change(ctx, false) }

// change moves the event to set by a compare-and-swap on the key's mod
// revision, so that concurrent Sets raise the generation once.
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
	for {
		if st.set == set {
			return nil
		}
		next := eventState{gen: st.gen, set: set}
		if set {
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
func (e *Event) Wait(ctx context.Context) error {
	e.mustBeMade()
	if err := e.s.alive(); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	first, _, err := e.read(ctx)
	if err != nil {
		return err
	}
	if first.set {
		return nil
	}
	for {
		woken, err := e.watch(ctx, first.gen)
		if woken || err != nil {
			return err
		}
		// The watch broke (compacted, cut, no leader): the key is the
		// truth, and its generation tells a pulse that the watch missed.
		for pause := 10 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
			st, _, err := e.read(ctx)
			if err == nil {
				if st.set || st.gen > first.gen {
					return nil
				}
				break
			}
			if err := e.stopped(ctx); err != nil {
				return err
			}
			timer := time.NewTimer(pause)
			select {
			case <-timer.C:
			case <-ctx.Done():
			case <-e.s.ctx.Done():
			}
			timer.Stop()
			if err := e.stopped(ctx); err != nil {
				return err
			}
		}
	}
}

// read returns the event's state and the revision it was read at.
func (e *Event) read(ctx context.Context) (eventState, int64, error) {
	cctx, stop := e.s.bind(ctx)
	defer stop()
	resp, err := e.s.cli.Get(cctx, e.key)
	if err != nil {
		if serr := e.stopped(ctx); serr != nil {
			return eventState{}, 0, serr
		}
		return eventState{}, 0, rpcError(ctx, e.op("read"), err)
	}
	return parseEvent(resp.Kvs), resp.Header.Revision, nil
}

// stopped reports why a Wait must stop: its session ended, or its ctx.
func (e *Event) stopped(ctx context.Context) error {
	if err := e.s.alive(); err != nil {
		return err
	}
	return ctxErr(ctx)
}

// watch follows the key from revision rev+1. It reports woken once a put
// raised the event or its generation past gen, an error if ctx or the
// session ended, and neither if the watch broke and the key must be read
// again.
func (e *Event) watch(ctx context.Context, gen uint64) (woken bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The watch starts at the current revision, and a read after it
	// covers what changed since rev: the generation tells a pulse that
	// came in between. A watch from rev+1 would do too, but etcd serves a
	// watch that starts in the past only every 100 ms until it has caught
	// up, which would make every wake-up late.
	wch := e.s.cli.Watch(wctx, e.key, clientv3.WithFilterDelete(), clientv3.WithCreatedNotify())
	var readRev int64 // the revision of the read after the watch started
	for {
		select {
		case <-ctx.Done():
			return false, ctxErr(ctx)
		case <-e.s.ctx.Done():
			return false, ErrSessionLost
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.Err() != nil {
				if err := e.stopped(ctx); err != nil {
					return false, err
				}
				return false, nil
			}
			if wr.Created {
				st, rev, err := e.read(ctx)
				if err != nil {
					if err := e.stopped(ctx); err != nil {
						return false, err
					}
					return false, nil // the caller reads again
				}
				if st.set || st.gen > gen {
					return true, nil
				}
				readRev = rev
			}
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision <= readRev {
					// The read shows this already: a member that lags
					// behind starts "now" at an older revision, and a
					// Set from before the first read must not wake it.
					continue
				}
				st := parseEvent([]*mvccpb.KeyValue{ev.Kv})
				if st.set || st.gen > gen {
					return true, nil
				}
			}
		}
	}
}
