package etcdsync

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A feed follows the keys of one object (a Lock's or a Semaphore's line, an
// Event, a Barrier's markers) for one Session, with one etcd watch that
// every call of the process shares, and keeps an in-memory view of them:
// one read to start, then the watch's puts and deletes in revision order.
// A watch that breaks (a cut stream, a member that lost its leader, a
// compaction) is opened again, and the view rebuilt from a fresh read,
// after a pause that grows while etcd keeps failing.
//
// Every view is a state the keys were in at some revision (or a later one),
// never a mix: a call decides from it exactly as it would from a read of
// its own, and waits until the view has caught up with the revision its
// decision needs. Calls that wait for a change are woken by the view.
//
// Before, each waiting call had a watch of its own and read the whole line
// at every start: with W waiters in one process, every change of the line
// made etcd send W events, and a line of W cost W reads of W keys to join.
// Now etcd sends one event per process per change, and joining is one
// write.
type feed struct {
	fs     *feedSet
	key    string
	prefix bool
	idle   chan struct{} // told when refs falls to zero

	// refs counts the calls using the feed; guarded by fs.mu.
	refs int

	mu sync.Mutex // guards v
	v  view
}

// A view is what a feed keeps of its keys. Its methods run under the
// feed's mutex. rev is the revision the view shows: every change up to it.
type view interface {
	// reset replaces the view by a read made at rev.
	reset(kvs []*mvccpb.KeyValue, rev int64)
	// apply adds the changes of one watch response, all newer than the
	// view.
	apply(evs []*clientv3.Event)
}

// feedLinger is how long a feed that no call uses goes on, so that calls
// made one after the other (a Lock, its Release, the next Lock) do not
// open a watch and read the keys each time.
const feedLinger = 2 * time.Second

// A feedSet is the feeds of one Session, by key. Its zero value is ready.
type feedSet struct {
	mu     sync.Mutex
	feeds  map[string]*feed
	closed bool
	wg     sync.WaitGroup // the feeds' goroutines
}

// use returns the feed of key (made with newView if there is none), counted
// as used until done. It fails once the session has ended.
func (s *Session) use(key string, prefix bool, newView func() view) (*feed, error) {
	fs := &s.feeds
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed || s.ctx.Err() != nil {
		return nil, ErrSessionLost
	}
	f := fs.feeds[key]
	if f == nil {
		if fs.feeds == nil {
			fs.feeds = map[string]*feed{}
		}
		f = &feed{fs: fs, key: key, prefix: prefix, idle: make(chan struct{}, 1), v: newView()}
		fs.feeds[key] = f
		fs.wg.Go(func() { f.run(s) })
	}
	f.refs++
	return f, nil
}

// done ends one use of f.
func (f *feed) done() {
	f.fs.mu.Lock()
	f.refs--
	if f.refs == 0 {
		select {
		case f.idle <- struct{}{}:
		default:
		}
	}
	f.fs.mu.Unlock()
}

// close waits for the feeds' goroutines, which end with the session (the
// caller has ended it); no feed starts afterwards.
func (fs *feedSet) close() {
	fs.mu.Lock()
	fs.closed = true
	fs.mu.Unlock()
	fs.wg.Wait()
}

// stopIfIdle removes f if no call uses it; f's goroutine then ends.
func (f *feed) stopIfIdle() bool {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.refs > 0 {
		return false
	}
	delete(f.fs.feeds, f.key)
	return true
}

// run follows the keys until the session ends or nobody uses the feed for
// feedLinger.
func (f *feed) run(s *Session) {
	const firstPause, maxPause = 10 * time.Millisecond, 500 * time.Millisecond
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	pause := firstPause
	for {
		followed, stop := f.follow(s, linger)
		if stop {
			return
		}
		if followed {
			pause = firstPause // the watch worked: start over at once
			continue
		}
		if f.pause(s, pause, linger) {
			return
		}
		pause = min(2*pause, maxPause)
	}
}

// pause waits d before the watch is tried again, and reports whether the
// feed must stop instead: the session ended, or nobody used the feed for
// feedLinger (a feed that etcd cannot serve is not kept for nothing).
func (f *feed) pause(s *Session, d time.Duration, linger *time.Timer) (stop bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return false
		case <-s.ctx.Done():
			return true
		case <-f.idle:
			linger.Reset(feedLinger)
		case <-linger.C:
			if f.stopIfIdle() {
				return true
			}
		}
	}
}

// follow opens the watch, reads the keys, and then follows the watch until
// it breaks (followed tells whether it worked first), the session ends or
// the feed lingered unused (stop).
//
// The watch starts at the current revision and the read comes after it, so
// no change falls between them; events the read already shows are skipped
// by their revision. A watch that starts from an older revision would work
// too, but etcd delivers to such a watch only every 100 ms until it has
// caught up, which would delay every grant.
func (f *feed) follow(s *Session, linger *time.Timer) (followed, stop bool) {
	// A watch that requires a leader is cancelled by a member that lost
	// its leader, rather than going silent.
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if f.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	wch := s.cli.Watch(ctx, f.key, opts...)
	var readRev int64 // the revision of the read after the watch started
	for {
		select {
		case <-s.ctx.Done():
			return followed, true
		case <-f.idle:
			linger.Reset(feedLinger)
		case <-linger.C:
			if f.stopIfIdle() {
				return followed, true
			}
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.Err() != nil {
				return followed, s.ctx.Err() != nil
			}
			if wr.Created {
				getOpts := []clientv3.OpOption{}
				if f.prefix {
					getOpts = append(getOpts, clientv3.WithPrefix(),
						clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
				}
				resp, err := s.cli.Get(ctx, f.key, getOpts...)
				if err != nil {
					return false, s.ctx.Err() != nil
				}
				readRev = resp.Header.Revision
				f.mu.Lock()
				f.v.reset(resp.Kvs, readRev)
				f.mu.Unlock()
				followed = true
			}
			evs := wr.Events
			for len(evs) > 0 && evs[0].Kv.ModRevision <= readRev {
				// The read shows this already: a member that lags
				// behind starts "now" at an older revision and sends
				// such events.
				evs = evs[1:]
			}
			if followed && len(evs) > 0 {
				f.mu.Lock()
				f.v.apply(evs)
				f.mu.Unlock()
			}
		}
	}
}

// wait blocks until ch is told, ctx ends or the session ends, and reports
// which: nil, or ctx's or the session's error.
func (s *Session) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrSessionLost
	}
}

// A broadcast wakes every goroutine waiting for the next change of a view.
// Its zero value is ready; use it under the view's feed's mutex.
type broadcast struct{ ch chan struct{} }

// next is closed at the next change.
func (b *broadcast) next() <-chan struct{} {
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) tell() {
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
