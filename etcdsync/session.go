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
// long a crashed or cut-off process keeps what it held; a cut-off process
// learns of the loss a margin before it (D9). A TTL that is not positive
// panics.
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
// A process that is cut off learns of it first (D9): the session keeps
// its own record of the latest keep-alive that etcd acknowledged, and gives
// up a margin before the lease could end on the server (see Expiry). A
// process that is paused learns nothing in time, so the resource a permit
// protects must still check the permit's Token.
//
// One Session per process is the normal use; any number of goroutines and
// objects share it, and every call still has a key of its own. A Session
// runs the lease keeper (with one more goroutine for each keep-alive in
// flight), the cleaner that retries cleanups etcd could not be reached
// for, and one goroutine for each object whose keys it follows (the shared
// watch of watch.go, stopped a while after its last use); all have ended
// when Close returns. The etcd client runs
// goroutines of its own, which end when the client is closed.
//
// Make a Session with NewSession; a zero Session panics on first use. A
// Session must not be copied after first use (it is used through the
// pointer NewSession returns).
//
// When Close revokes the lease, the revoke happens before Done is closed,
// before the Lost channels of the permits still held close, and before any
// call blocked on the session returns ErrSessionLost: whoever sees one of
// these also sees, in etcd, that the session holds nothing.
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

	// The lease keeper's record (D9): the send time of the latest
	// keep-alive etcd acknowledged, plus the TTL it granted.
	expMu  sync.Mutex
	expiry time.Time
	ttl    time.Duration

	mu      sync.Mutex
	free    []string             // ticket ids that no request still in flight can name
	held    map[*Permit]struct{} // granted and not released: their Lost closes at the end
	pending []cleanupJob         // cleanups etcd could not be reached for
	kick    chan struct{}        // wakes the cleaner

	closeMu sync.Mutex // one Close at a time
	revoked bool       // a Close revoked the lease (or found it gone)
	// gone is set once etcd has said that the lease no longer exists:
	// there is nothing left for Close to revoke.
	gone atomic.Bool

	feeds feedSet // the watches the session's calls share (watch.go)
}

// NewSession grants a lease on cli and keeps it alive until Close or until
// it is lost. A nil client panics. If ctx ends before etcd granted the
// lease, it returns exactly ctx.Err().
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
	// The grant is the lease's first refresh: the lease cannot end before
	// the time it was sent plus the TTL the server granted.
	sent := time.Now()
	grant, err := cli.Grant(ctx, secs)
	if err != nil {
		return nil, rpcError(ctx, "grant lease", err)
	}
	ttl := time.Duration(grant.TTL) * time.Second
	if window := ttl - margin(ttl); time.Since(sent) > window/3 {
		// A slow grant (the first request on a new connection, a loaded
		// machine) has used up much of the time before the session would
		// give up on the lease: refresh it at once, so that the session
		// starts with the whole of it.
		kctx, cancel := context.WithTimeout(ctx, window)
		again := time.Now()
		if resp, err := cli.KeepAliveOnce(kctx, grant.ID); err == nil && resp.TTL > 0 {
			sent, ttl = again, time.Duration(resp.TTL)*time.Second
		}
		cancel()
	}
	kaCtx, stopKA := context.WithCancel(context.Background())
	s := &Session{
		cli:    cli,
		lease:  grant.ID,
		prefix: o.prefix,
		stopKA: stopKA,
		expiry: sent.Add(ttl),
		ttl:    ttl,
		held:   map[*Permit]struct{}{},
		kick:   make(chan struct{}, 1),
	}
	s.ctx, s.end = context.WithCancelCause(context.Background())
	s.wg.Go(func() { s.keepAlive(kaCtx) })
	s.wg.Go(s.cleaner)
	return s, nil
}

// Expiry is the time until which the lease lasts at least (D9): the send
// time of the latest keep-alive that etcd acknowledged plus the TTL it
// granted. etcd cannot end the lease before then, whatever happens to the
// network, provided this process's clock runs at the server's rate. The
// session gives up a margin before it (a tenth of the TTL, at least 500 ms)
// if no newer acknowledgement arrived: it ends as if lost, so that its
// permits' Lost channels close before anyone else can be granted what they
// held.
func (s *Session) Expiry() time.Time {
	s.mustBeMade()
	s.expMu.Lock()
	defer s.expMu.Unlock()
	return s.expiry
}

// margin is how long before Expiry the session gives up when no newer
// keep-alive was acknowledged: room for this process to tell its holders
// before etcd can grant what they held to others.
func margin(ttl time.Duration) time.Duration {
	return max(ttl/10, 500*time.Millisecond)
}

// refreshed records an acknowledged keep-alive sent at sent. An answer
// that overtook a later one must not move Expiry back.
func (s *Session) refreshed(sent time.Time, ttl time.Duration) {
	s.expMu.Lock()
	if e := sent.Add(ttl); e.After(s.expiry) {
		s.expiry, s.ttl = e, ttl
	}
	s.expMu.Unlock()
}

// keeper is the lease keeper's view of the lease: when the session gives
// up unless a newer keep-alive is acknowledged first, how long one
// keep-alive's answer can still matter, and the pause between keep-alives.
func (s *Session) keeper() (giveUp time.Time, window, cadence time.Duration) {
	s.expMu.Lock()
	defer s.expMu.Unlock()
	m := margin(s.ttl)
	window = s.ttl - m
	// About TTL/3 (a third of the time before giving up), but more often
	// for a short TTL, whose margin is a large part of it: the time since
	// the latest acknowledged keep-alive was sent is the cadence plus the
	// answer's delay, and a loaded machine or a busy server can delay
	// answers by a second or more. So at least 2 s of the time before
	// giving up is left for the answer, or four fifths of it if it is
	// shorter.
	cadence = max(min(window/3, max(window/5, window-2*time.Second)), 10*time.Millisecond)
	return s.expiry.Add(-m), window, cadence
}

// maxKeepAlives bounds the keep-alives in flight at once.
const maxKeepAlives = 6

// keepAliveAck is the outcome of one keep-alive, sent at sent.
type keepAliveAck struct {
	sent time.Time
	resp *clientv3.LeaseKeepAliveResponse
	err  error
}

// keepAlive keeps the lease alive with one keep-alive every cadence, and
// ends the session when etcd says the lease is gone, or when no keep-alive
// has been acknowledged for so long that the lease may end on the server
// within the margin (D9). The etcd client's own keeper cannot be used for
// this: it does not tell when a keep-alive was sent, and it gives up only
// after the TTL has passed, when others may already hold what this session
// held.
//
// A keep-alive is sent every cadence even while earlier ones are still
// unanswered (a few at most): a slow answer, on a loaded machine or from a
// member that lost its leader, then does not delay the next keep-alive,
// which the client may send to another member. Each waits for its answer
// as long as that answer can still matter. It returns when ctx ends
// (Close), with every keep-alive it sent over.
func (s *Session) keepAlive(ctx context.Context) {
	acks := make(chan keepAliveAck, maxKeepAlives)
	var sending sync.WaitGroup
	defer sending.Wait()
	sctx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	inFlight := 0

	// The grant was the first refresh: the first keep-alive is due a
	// cadence after it.
	giveUp, window, cadence := s.keeper()
	next := giveUp.Add(-window + cadence)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		timer.Reset(time.Until(minTime(next, giveUp)))
		select {
		case <-ctx.Done():
			return
		case a := <-acks:
			inFlight--
			if s.takeAck(a) {
				return
			}
			if a.err != nil && ctx.Err() == nil {
				// Try again soon: the time left before giving up is
				// short.
				next = minTime(next, time.Now().Add(min(cadence/2, 250*time.Millisecond)))
			}
			giveUp, _, cadence = s.keeper()
			continue
		case <-timer.C:
		}
		// Answers that arrived while the timer fired count first: a
		// process that was not scheduled for a while finds both ready.
		for drained := false; !drained; {
			select {
			case a := <-acks:
				inFlight--
				if s.takeAck(a) {
					return
				}
			default:
				drained = true
			}
		}
		giveUp, window, cadence = s.keeper()
		now := time.Now()
		if !now.Before(giveUp) {
			stopSending()
			s.giveUp(ctx)
			return
		}
		if now.Before(next) {
			continue
		}
		next = now.Add(cadence)
		if inFlight == maxKeepAlives {
			continue
		}
		inFlight++
		window := window // the loop assigns the outer one again
		sending.Go(func() {
			sent := time.Now()
			kctx, cancel := context.WithDeadline(sctx, sent.Add(window))
			resp, err := s.cli.KeepAliveOnce(kctx, s.lease)
			cancel()
			acks <- keepAliveAck{sent, resp, err} // never blocks: room for every one in flight
		})
	}
}

// takeAck records the answer to one keep-alive, and reports whether it
// said that etcd ended the lease (it expired or was revoked), which ends
// the session: what it held is gone already.
func (s *Session) takeAck(a keepAliveAck) bool {
	switch {
	case a.err == nil && a.resp.TTL > 0:
		s.refreshed(a.sent, time.Duration(a.resp.TTL)*time.Second)
	case a.err == nil || isLeaseGone(a.err):
		s.gone.Store(true)
		s.endAsLost()
		return true
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// giveUp ends the session before etcd can end its lease (D9), and then
// asks etcd to revoke the lease at once, best effort: if etcd can be
// reached after all, what the session held passes on without waiting out
// the TTL. Close stops the attempt.
func (s *Session) giveUp(ctx context.Context) {
	s.endAsLost()
	rctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	if _, err := s.cli.Revoke(rctx, s.lease); err == nil || isLeaseGone(err) {
		s.gone.Store(true)
	}
	cancel()
}

// endAsLost ends the session: blocked calls see ErrSessionLost, every
// permit still held is lost (its Lost closes), and the cleanups still
// pending are dropped (the lease's end removes everything they would
// have). Ending twice does nothing more.
func (s *Session) endAsLost() {
	s.end(ErrSessionLost)
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.pending = nil
	s.mu.Unlock()
	for p := range held {
		p.lose()
	}
}

// Done is closed when the lease is gone or the session was closed, or when
// the session gave up on a lease it could not keep alive (see Expiry).
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
// the session's goroutines to end.
//
// If the revoke fails (ctx is done, or etcd cannot be reached), the session
// has ended all the same, and Close returns exactly ctx.Err() or the etcd
// error; the lease then expires by itself within its TTL, unless a later
// Close, which tries the revoke again, succeeds first. Once a Close has
// returned nil, Close returns nil at once. A lease already gone counts as
// revoked.
func (s *Session) Close(ctx context.Context) error {
	s.mustBeMade()
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.revoked {
		return nil
	}
	var err error
	if !s.gone.Load() { // else there is nothing left to revoke
		err = s.revoke(ctx)
	}
	// Only now, with the lease gone (or given up on), do blocked calls
	// learn that the session ended.
	s.endAsLost()
	s.feeds.close()
	s.stopKA()
	s.wg.Wait()
	s.revoked = err == nil
	return err
}

// revoke asks etcd to end the lease; a lease already gone counts as
// revoked.
func (s *Session) revoke(ctx context.Context) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if _, err := s.cli.Revoke(ctx, s.lease); err != nil && !isLeaseGone(err) {
		return rpcError(ctx, "revoke lease", err)
	}
	return nil
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

// A cleanupJob is one transaction the cleaner retries: ops, run if every
// cmp holds. done, if set, hears whether the comparisons held, once the
// transaction committed.
type cleanupJob struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	done func(succeeded bool)
}

// retryLater hands ops that etcd could not be reached for to the cleaner,
// without another try first (the caller just tried): it retries them until
// they succeed or the session ends.
func (s *Session) retryLater(ops ...clientv3.Op) {
	s.retryJob(cleanupJob{ops: ops})
}

func (s *Session) retryJob(job cleanupJob) {
	s.mu.Lock()
	if s.held != nil { // not ended
		s.pending = append(s.pending, job)
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
	return s.applyJob(ctx, cleanupJob{ops: ops})
}

func (s *Session) applyJob(ctx context.Context, job cleanupJob) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	resp, err := s.cli.Txn(cctx).If(job.cmps...).Then(job.ops...).Commit()
	if err != nil && !isLeaseGone(err) {
		return err
	}
	if job.done != nil && err == nil {
		job.done(resp.Succeeded)
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
		var failed []cleanupJob
		for _, job := range work {
			ctx, cancel := context.WithTimeout(s.ctx, cleanupTimeout)
			if err := s.applyJob(ctx, job); err != nil {
				failed = append(failed, job)
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
