package etcdsync

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Option configures a Session.
type Option func(*options)

type options struct {
	ttl    time.Duration
	prefix string
}

// WithTTL sets the session's lease TTL, rounded up to whole seconds (the
// server may raise it to its minimum). The default is 15 s. The TTL is how
// long a crashed or cut-off process keeps what it held, and about how late
// it learns that it lost it. A TTL below one nanosecond panics.
func WithTTL(d time.Duration) Option {
	if d <= 0 {
		panic("etcdsync: WithTTL needs a positive duration")
	}
	return func(o *options) { o.ttl = d }
}

// WithPrefix sets the key namespace under which every object made through
// the session keeps its keys. The default is "/ctxsync/". Processes that
// share an object must use the same prefix.
func WithPrefix(p string) Option {
	return func(o *options) { o.prefix = p }
}

// A Session is one etcd lease, kept alive in the background, to which every
// ticket and permit made through the session is attached. When the process
// dies or is cut off from etcd for longer than the TTL, the lease expires
// and etcd removes everything the session held, so those waiting behind it
// go on.
//
// One Session per process is the normal use; any number of goroutines and
// objects share it, and every call still has a key of its own. A Session
// runs two goroutines (the lease keeper and the cleaner that retries
// cleanups etcd could not be reached for); both end by Close, or when the
// lease is lost. The etcd client runs goroutines of its own, which end when
// the client is closed.
type Session struct {
	cli    *clientv3.Client
	lease  clientv3.LeaseID
	prefix string

	// ctx is cancelled, with cause ErrSessionLost, when the session ends
	// for any reason: every blocked call selects on it.
	ctx    context.Context
	end    context.CancelCauseFunc
	stopKA context.CancelFunc
	wg     sync.WaitGroup

	seq atomic.Uint64 // makes every ticket key of this session unique

	mu      sync.Mutex
	free    []string             // ticket ids that no request still in flight can name
	held    map[*Permit]struct{} // granted and not released: their Lost closes at the end
	pending [][]clientv3.Op      // cleanups etcd could not be reached for
	kick    chan struct{}        // wakes the cleaner

	closeOnce sync.Once
	closeErr  error

	feeds feedSet // the watches the session's calls share (watch.go)
}

// NewSession grants a lease on cli and keeps it alive until Close. A nil
// client panics.
func NewSession(ctx context.Context, cli *clientv3.Client, opts ...Option) (*Session, error) {
	if cli == nil {
		panic("etcdsync: NewSession with a nil client")
	}
	o := options{ttl: 15 * time.Second, prefix: "/ctxsync/"}
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	secs := int64(math.Ceil(o.ttl.Seconds()))
	grant, err := cli.Grant(ctx, secs)
	if err != nil {
		return nil, rpcError(ctx, "grant lease", err)
	}
	kaCtx, stopKA := context.WithCancel(context.Background())
	ka, err := cli.KeepAlive(kaCtx, grant.ID)
	if err != nil {
		stopKA()
		// Best effort: the lease would expire by itself within its TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_, _ = cli.Revoke(rctx, grant.ID)
		cancel()
		return nil, rpcError(ctx, "keep lease alive", err)
	}
	s := &Session{
		cli:    cli,
		lease:  grant.ID,
		prefix: o.prefix,
		stopKA: stopKA,
		held:   map[*Permit]struct{}{},
		kick:   make(chan struct{}, 1),
	}
	s.ctx, s.end = context.WithCancelCause(context.Background())
	s.wg.Go(func() { s.keepAlive(ka) })
	s.wg.Go(s.cleaner)
	return s, nil
}

// keepAlive drains the lease keeper's responses. The etcd client closes
// the channel when the lease is gone (revoked, expired, or no answer within
// the TTL) or when Close stopped it: either way the session has ended.
func (s *Session) keepAlive(ka <-chan *clientv3.LeaseKeepAliveResponse) {
	for range ka {
	}
	s.finish()
}

// finish ends the session: blocked calls see ErrSessionLost, and every
// permit still held is lost.
func (s *Session) finish() {
	s.end(ErrSessionLost)
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.pending = nil // the lease's end removes everything they would have
	s.mu.Unlock()
	for p := range held {
		p.lose()
	}
}

// Done is closed when the lease is gone or the session was closed.
func (s *Session) Done() <-chan struct{} {
	s.mustBeMade()
	return s.ctx.Done()
}

// mustBeMade refuses a zero Session, which has no lease.
func (s *Session) mustBeMade() {
	if s.cli == nil {
		panic("etcdsync: zero Session; make one with NewSession")
	}
}

// Lease is the lease that everything held through this session is attached
// to.
func (s *Session) Lease() clientv3.LeaseID {
	s.mustBeMade()
	return s.lease
}

// Close revokes the lease, which releases everything held through the
// session, and then fails every call blocked on it with ErrSessionLost: by
// the time such a call returns, its ticket is gone from etcd. It waits for
// the session's goroutines to end. If etcd cannot be reached before ctx
// ends, the lease expires by itself within its TTL, and Close returns
// ctx.Err() (or the etcd error). Closing again returns the first Close's
// result.
func (s *Session) Close(ctx context.Context) error {
	s.mustBeMade()
	s.closeOnce.Do(func() {
		if err := ctxErr(ctx); err != nil {
			s.closeErr = err
		} else if _, err := s.cli.Revoke(ctx, s.lease); err != nil && !isLeaseGone(err) {
			s.closeErr = rpcError(ctx, "revoke lease", err)
		}
		// Only now, with the lease gone (or given up on), do blocked
		// calls learn that the session ended.
		s.finish()
		s.feeds.close()
		s.stopKA()
		s.wg.Wait()
	})
	return s.closeErr
}

// bind returns the context for the RPCs of one call: ctx, also cancelled
// when the session ends, so that a call blocked on an etcd that cannot be
// reached still returns ErrSessionLost when its session ends.
func (s *Session) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return rctx, func() {
		stop()
		cancel()
	}
}

// rpcError is the package's rpcError for a call made through s: once the
// session has ended, that is the reason.
func (s *Session) rpcError(ctx context.Context, op string, err error) error {
	if cerr := ctxErr(ctx); cerr != nil {
		return cerr
	}
	if s.alive() != nil {
		return ErrSessionLost
	}
	return rpcError(ctx, op, err)
}

// alive reports ErrSessionLost once the session has ended.
func (s *Session) alive() error {
	s.mustBeMade()
	if s.ctx.Err() != nil {
		return ErrSessionLost
	}
	return nil
}

// newID names one call's ticket: unique across sessions (the lease ID) and
// within this one (the sequence), so no two calls ever share a key.
func (s *Session) newID() string {
	return strconv.FormatInt(int64(s.lease), 16) + "-" + strconv.FormatUint(s.seq.Add(1), 10)
}

// ticketID names the ticket of one Lock or Semaphore call: an id whose
// last use is over, or a new one. Reusing ids matters because etcd keeps
// every deleted key name in its index until the next compaction, and each
// read of a line walks them all: with a new name per call, a lock that has
// been taken a hundred thousand times since the last compaction gets
// slower with every call. A reused name makes a new ticket with a new
// creation revision, so tokens stay unique and a Guard or Release of the
// name's earlier permit compares false.
func (s *Session) ticketID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		id := s.free[n-1]
		s.free = s.free[:n-1]
		return id
	}
	return s.newID()
}

// maxFreeIDs bounds the ids kept for reuse: about the most calls of one
// session that are ever in line at once.
const maxFreeIDs = 1024

// reuseID offers id for a later call. Only an id that no request still in
// flight can name may be offered: one whose ticket was removed by a delete
// whose answer came back, or that was never written. An id whose put or
// delete had an unknown outcome is never reused (its tombstone must stay
// alone with it).
func (s *Session) reuseID(id string) {
	s.mu.Lock()
	if len(s.free) < maxFreeIDs {
		s.free = append(s.free, id)
	}
	s.mu.Unlock()
}

// track registers a granted permit so that the session's end closes its
// Lost channel; a permit granted as the session ends is lost at once.
func (s *Session) track(p *Permit) {
	s.mu.Lock()
	if s.held != nil {
		s.held[p] = struct{}{}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	p.lose()
}

func (s *Session) untrack(p *Permit) {
	s.mu.Lock()
	delete(s.held, p)
	s.mu.Unlock()
}

// cleanupTimeout bounds the cleanup a failed call makes before it returns,
// so that a call ended by its context returns at most this much late when
// etcd cannot be reached; past it the session's cleaner goes on trying.
const cleanupTimeout = 2 * time.Second

// cleanup removes what a failed call may have left in etcd, before the call
// returns (D3). The ops must be idempotent. If etcd cannot be reached, the
// cleaner retries them until they succeed or the session ends (and with it,
// the lease and all it held).
func (s *Session) cleanup(ctx context.Context, ops ...clientv3.Op) {
	if s.ctx.Err() != nil {
		return
	}
	cctx, cancel := s.cleanupContext(ctx)
	err := s.apply(cctx, ops)
	cancel()
	if err != nil {
		s.retryLater(ops...)
	}
}

// cleanupContext is the context for the cleanup of a call made with ctx:
// its values but not its end (it has ended, often), at most cleanupTimeout
// long, and over when the session ends.
func (s *Session) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	bound, stop := s.bind(context.WithoutCancel(ctx))
	cctx, cancel := context.WithTimeout(bound, cleanupTimeout)
	return cctx, func() {
		cancel()
		stop()
	}
}

// retryLater hands ops that etcd could not be reached for to the cleaner,
// without another try first (the caller just tried): it retries them until
// they succeed or the session ends.
func (s *Session) retryLater(ops ...clientv3.Op) {
	s.mu.Lock()
	if s.held != nil { // not ended
		s.pending = append(s.pending, ops)
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// apply runs ops in one transaction; a lease that is gone has already
// removed what the ops would remove.
func (s *Session) apply(ctx context.Context, ops []clientv3.Op) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	_, err := s.cli.Txn(cctx).Then(ops...).Commit()
	if err != nil && !isLeaseGone(err) {
		return err
	}
	return nil
}

// cleaner retries the cleanups etcd could not be reached for, with a
// growing pause, until they succeed or the session ends.
func (s *Session) cleaner() {
	pause := 50 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		work := s.pending
		s.pending = nil
		s.mu.Unlock()
		var failed [][]clientv3.Op
		for _, ops := range work {
			ctx, cancel := context.WithTimeout(s.ctx, cleanupTimeout)
			if err := s.apply(ctx, ops); err != nil {
				failed = append(failed, ops)
			}
			cancel()
		}
		wait := time.Duration(-1)
		if len(failed) > 0 {
			s.mu.Lock()
			if s.held != nil {
				s.pending = append(failed, s.pending...)
			}
			s.mu.Unlock()
			wait = pause
			pause = min(2*pause, time.Second)
		} else {
			pause = 50 * time.Millisecond
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-timer.C:
		}
	}
}
