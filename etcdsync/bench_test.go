package etcdsync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// The benchmarks put etcdsync.Lock beside etcd's own concurrency.Mutex on
// the same embedded server (started by TestMain). Nothing here runs
// without -bench, and nothing is done at init. bench/run.sh runs them the
// way the README's numbers were taken.

// benchTimeout bounds every run of a benchmark function: each blocking
// call and poll in it uses a context that ends at the latest then.
const benchTimeout = 5 * time.Minute

// benchRun makes every run of a benchmark function use a key prefix of its
// own, so that nothing a run leaves behind (it should leave nothing) can
// slow or block the next.
var benchRun atomic.Int64

func benchPrefix(b *testing.B) string {
	return fmt.Sprintf("%sr%d/", testPrefix(b), benchRun.Add(1))
}

// A benchLocker is one contender for the lock: it is used by one goroutine
// at a time. lock returns the function that unlocks what it took.
type benchLocker interface {
	lock(ctx context.Context) (unlock func(context.Context) error, err error)
}

// A benchImpl makes n contenders for one lock, spread round-robin over
// nclients clients of their own (so that the first nclients contenders are
// on different clients), and a function that counts the requests in line
// while the lock is held.
type benchImpl struct {
	name string
	open func(b *testing.B, nclients, n int, tr *watchTrace) (contenders []benchLocker, waiting func(context.Context) (int, error))
}

// benchClient is newClient, or a client whose watch events are counted in
// tr if tr is not nil.
func benchClient(b *testing.B, tr *watchTrace) *clientv3.Client {
	if tr == nil {
		return newClient(b)
	}
	cli := watchTracedClientInto(b, tr)
	b.Cleanup(func() { _ = cli.Close() })
	return cli
}

var benchImpls = []benchImpl{
	{"etcdsync", openEtcdsync},
	{"concurrency.Mutex", openMutex},
}

type etcdsyncLocker struct{ l *etcdsync.Lock }

func (e etcdsyncLocker) lock(ctx context.Context) (func(context.Context) error, error) {
	p, err := e.l.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return p.Release, nil
}

// openEtcdsync makes one Session per client (the normal use: one per
// process); every contender on a client shares its session and Lock value,
// and each Lock call is a ticket of its own.
func openEtcdsync(b *testing.B, nclients, n int, tr *watchTrace) ([]benchLocker, func(context.Context) (int, error)) {
	prefix := benchPrefix(b)
	locks := make([]*etcdsync.Lock, nclients)
	for i := range locks {
		s := newSession(b, benchClient(b, tr), etcdsync.WithPrefix(prefix))
		locks[i] = etcdsync.NewLock(s, "bench")
	}
	cs := make([]benchLocker, n)
	for i := range cs {
		cs[i] = etcdsyncLocker{locks[i%nclients]}
	}
	return cs, locks[0].Waiting
}

type mutexLocker struct{ m *concurrency.Mutex }

func (m mutexLocker) lock(ctx context.Context) (func(context.Context) error, error) {
	if err := m.m.Lock(ctx); err != nil {
		return nil, err
	}
	return m.m.Unlock, nil
}

// openMutex makes one concurrency.Session and Mutex per contender:
// a Mutex's key is its session's, so two contenders on one session would
// both "hold" the lock.
func openMutex(b *testing.B, nclients, n int, tr *watchTrace) ([]benchLocker, func(context.Context) (int, error)) {
	pfx := benchPrefix(b) + "mutex"
	clis := make([]*clientv3.Client, nclients)
	for i := range clis {
		clis[i] = benchClient(b, tr)
	}
	cs := make([]benchLocker, n)
	for i := range cs {
		s, err := concurrency.NewSession(clis[i%nclients], concurrency.WithTTL(60))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		cs[i] = mutexLocker{concurrency.NewMutex(s, pfx)}
	}
	waiting := func(ctx context.Context) (int, error) {
		resp, err := clis[0].Get(ctx, pfx+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		return int(resp.Count) - 1, nil // all but the holder
	}
	return cs, waiting
}

// pollUntil calls cond every pause until it reports true, fails, or ctx
// ends.
func pollUntil(ctx context.Context, pause time.Duration, cond func(context.Context) (bool, error)) error {
	for {
		ok, err := cond(ctx)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// failer reports the first error of a run and cancels its context, so
// that every goroutine of the run ends; the errors that the cancellation
// causes are not reported.
type failer struct {
	b      *testing.B
	cancel context.CancelFunc
	once   sync.Once
}

func (f *failer) fail(err error) {
	f.once.Do(func() { f.b.Error(err) })
	f.cancel()
}

// processCPU is the CPU time this process has used so far, user and
// system, in every thread: the embedded server's as well as the clients'.
// It comes from /proc/self/stat, in the kernel's ticks of 10 ms (USER_HZ
// is 100 wherever Linux shows it); ok is false where there is no /proc.
// Unlike ns/op it hardly moves when other processes load the machine.
func processCPU() (cpu time.Duration, ok bool) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(data, ')') // the command name may hold anything
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:])) // from field 3, the state
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// cpuMeter reports cpu-ns/op: the process's CPU time from start to
// report, divided by b.N.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	c, ok := processCPU()
	return cpuMeter{c, ok}
}

func (m cpuMeter) report(b *testing.B) {
	end, ok := processCPU()
	if m.ok && ok && b.N > 0 {
		b.ReportMetric(float64(end-m.start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkLockUncontended is Lock then unlock by one process with the
// lock to itself: two round trips to etcd for either.
func BenchmarkLockUncontended(b *testing.B) {
	for _, im := range benchImpls {
		b.Run(im.name, func(b *testing.B) {
			cs, _ := im.open(b, 1, 1, nil)
			ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
			defer cancel()
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				unlock, err := cs[0].lock(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := unlock(ctx); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkLockAfterHistory is BenchmarkLockUncontended on a lock that
// has already been taken and released historyCalls times since etcd last
// compacted (the embedded server never does), done off the clock. A range
// read in etcd visits the index entry of every key ever written in the
// range until a compaction removes the deleted ones, so a lock whose
// every call writes a key of its own gets slower with its history: this
// shows by how much. concurrency.Mutex reuses one key per session.
func BenchmarkLockAfterHistory(b *testing.B) {
	b.Run(fmt.Sprintf("calls=%d", historyCalls), func(b *testing.B) {
		for _, im := range benchImpls {
			b.Run(im.name, func(b *testing.B) {
				cs, _ := im.open(b, 1, 1, nil)
				ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
				defer cancel()
				lockUnlock := func() {
					unlock, err := cs[0].lock(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if err := unlock(ctx); err != nil {
						b.Fatal(err)
					}
				}
				for range historyCalls {
					lockUnlock()
				}
				cpu := startCPU()
				for b.Loop() {
					lockUnlock()
				}
				cpu.report(b)
			})
		}
	})
}

// historyCalls is the history of BenchmarkLockAfterHistory.
const historyCalls = 5000

// BenchmarkHandOff ping-pongs one lock between two processes (two clients,
// a session each). The holder waits, off the clock, until the other is in
// line, then releases at once; ns/op is one hand-off: from the moment the
// holder calls unlock to the moment the waiter's Lock returns. p50-ns and
// p99-ns are of the same hand-offs.
func BenchmarkHandOff(b *testing.B) {
	for _, im := range benchImpls {
		b.Run(im.name, func(b *testing.B) { benchHandOff(b, im, 0) })
	}
}

// BenchmarkHandOffSettled is BenchmarkHandOff with the holder waiting a
// further 150 ms, off the clock, once the other is in line: long enough
// for etcd's watch resync loop (every 100 ms) to have caught up every
// watch, so it times the notification path alone.
func BenchmarkHandOffSettled(b *testing.B) {
	for _, im := range benchImpls {
		b.Run(im.name, func(b *testing.B) { benchHandOff(b, im, 150*time.Millisecond) })
	}
}

func benchHandOff(b *testing.B, im benchImpl, settle time.Duration) {
	cs, waiting := im.open(b, 2, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	f := &failer{b: b, cancel: cancel}
	base := time.Now()
	var (
		handedAt atomic.Int64 // ns since base, +1, when a hand-off began; 0: none pending
		stop     atomic.Bool
		mu       sync.Mutex
		lat      []time.Duration // one per hand-off
	)
	otherInLine := func(ctx context.Context) (bool, error) {
		n, err := waiting(ctx)
		return n >= 1, err
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for !stop.Load() {
				unlock, err := c.lock(ctx)
				if err != nil {
					f.fail(err)
					return
				}
				// The lock excludes the two, but through etcd, which the
				// race detector cannot see: hence atomics and mu.
				if t := handedAt.Swap(0); t != 0 {
					d := time.Duration(int64(time.Since(base)) + 1 - t)
					mu.Lock()
					lat = append(lat, d)
					if len(lat) == b.N {
						stop.Store(true)
					}
					mu.Unlock()
				}
				if !stop.Load() {
					if err := pollUntil(ctx, 100*time.Microsecond, otherInLine); err != nil {
						f.fail(err)
						return
					}
					if settle > 0 {
						t := time.NewTimer(settle)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
						}
					}
					handedAt.Store(int64(time.Since(base)) + 1)
				}
				if err := unlock(ctx); err != nil {
					f.fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(lat) == 0 {
		return
	}
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	slices.Sort(lat)
	b.ReportMetric(float64(total)/float64(len(lat)), "ns/op")
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[(len(lat)*99)/100]), "p99-ns")
}

// BenchmarkGrantWithWaiters measures a grant with a line of W waiters
// behind the holder, spread round-robin over S sessions (processes, each
// with a client of its own; concurrency.Mutex needs a session per waiter,
// so there S is the number of clients): each waiter takes the lock,
// unlocks at once and joins the line again, so the line stays W long
// (W-1 for the moment between an unlock and the re-join). ns/op is one
// grant; cpu-ns/op is the CPU of the whole test binary (server included)
// per grant; events/op is the watch events the server sent per grant, to
// every client. Queueing the W waiters first, and withdrawing them at the
// end, is off the clock; b.Loop makes that happen once per -count, not
// once per b.N tried. waiters=10000 runs for etcdsync only: as many
// concurrency sessions, each with its lease, take minutes to set up.
func BenchmarkGrantWithWaiters(b *testing.B) {
	for _, w := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("waiters=%d", w), func(b *testing.B) {
			for _, sessions := range []int{1, 10, 100} {
				if sessions > w {
					continue
				}
				b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
					for _, im := range benchImpls {
						if w > 1000 && im.name != "etcdsync" {
							continue
						}
						b.Run(im.name, func(b *testing.B) { benchGrant(b, im, w, sessions) })
					}
				})
			}
		})
	}
}

// joinBatch is how many waiters join the line at once while it is set up.
const joinBatch = 50

// queueInBatches starts wait(c) in a goroutine of wg for each contender,
// joinBatch at a time, and returns once waiting counts them all in line.
// A thousand joins at once, each a write and a read of the line, can make
// the server time requests out on two cores (and do, under -race).
func queueInBatches(ctx context.Context, wg *sync.WaitGroup, cs []benchLocker, waiting func(context.Context) (int, error), wait func(benchLocker)) error {
	inLine := func(k int) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			n, err := waiting(ctx)
			return n >= k, err
		}
	}
	for i, c := range cs {
		if i > 0 && i%joinBatch == 0 {
			if err := pollUntil(ctx, time.Millisecond, inLine(i)); err != nil {
				return err
			}
		}
		wg.Go(func() { wait(c) })
	}
	return pollUntil(ctx, time.Millisecond, inLine(len(cs)))
}

func benchGrant(b *testing.B, im benchImpl, w, sessions int) {
	tr := &watchTrace{}
	cs, waiting := im.open(b, sessions, w+1, tr)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	f := &failer{b: b, cancel: cancel}
	unlockHolder, err := cs[0].lock(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// The waiters' own context: cancelling it at the end withdraws the
	// line; their unlocks use ctx, so that none is cut short.
	wctx, withdraw := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer withdraw()
	granted := make(chan struct{}) // one send per grant, to the b.Loop
	if err := queueInBatches(ctx, &wg, cs[1:], waiting, func(c benchLocker) {
		for {
			unlock, err := c.lock(wctx)
			if err != nil {
				if ctx.Err() != nil || wctx.Err() == nil {
					f.fail(err) // not the withdrawal at the end
				}
				return
			}
			select {
			case granted <- struct{}{}:
			case <-wctx.Done():
			}
			if err := unlock(ctx); err != nil {
				f.fail(err)
				return
			}
		}
	}); err != nil {
		f.fail(err)
		return
	}
	// etcd delivers events to a watch that started behind the store's
	// revision (concurrency.Mutex's always do) only from a loop that runs
	// every 100 ms: let the last waiters' watches catch up, so that the
	// first grants timed are like the rest.
	settle := time.NewTimer(250 * time.Millisecond)
	select {
	case <-settle.C:
	case <-ctx.Done():
		settle.Stop()
	}
	started := false
	events := tr.get().events
	cpu := startCPU()
	for b.Loop() {
		if !started {
			started = true
			if err := unlockHolder(ctx); err != nil {
				f.fail(err)
				break
			}
		}
		select {
		case <-granted:
		case <-ctx.Done():
			f.fail(ctx.Err())
		}
		if ctx.Err() != nil {
			break // failed: b.Loop need not run to the end
		}
	}
	cpu.report(b)
	b.ReportMetric(float64(tr.get().events-events)/float64(b.N), "events/op")
}

// BenchmarkJoinLine measures the cost for etcdsync of joining a line of W waiters
// (spread over 10 sessions, behind a holder) and leaving it again: one
// more contender calls Lock; once its request is in etcd (a watch of the
// benchmark's own sees it), its context is cancelled and the call returns.
// ns/op is the whole (join, then withdraw); cpu-ns/op is the test binary's
// CPU (server included) per join.
func BenchmarkJoinLine(b *testing.B) {
	for _, w := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("waiters=%d", w), func(b *testing.B) {
			// concurrency.Mutex is left out: with it this loop stalled
			// after a few joins (not diagnosed); its join is a
			// transaction that reads the line's first key by creation
			// revision, and a second read of the key just ahead.
			b.Run("etcdsync", func(b *testing.B) { benchJoin(b, benchImpls[0], w) })
		})
	}
}

func benchJoin(b *testing.B, im benchImpl, w int) {
	cs, waiting := im.open(b, 10, w+2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	f := &failer{b: b, cancel: cancel}
	unlockHolder, err := cs[0].lock(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = unlockHolder(ctx) }()
	wctx, withdraw := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer withdraw()
	if err := queueInBatches(ctx, &wg, cs[1:w+1], waiting, func(c benchLocker) {
		if _, err := c.lock(wctx); err == nil || wctx.Err() == nil {
			f.fail(fmt.Errorf("a waiter returned: %v", err))
		}
	}); err != nil {
		f.fail(err)
		return
	}
	// Every creation of a key under the benchmark's keys is a join (with
	// clientv3.WithFilterDelete, this watch missed every put after the
	// first on etcd 3.7.3; the deletes are skipped here instead).
	watcher := newClient(b)
	wch := watcher.Watch(clientv3.WithRequireLeader(ctx), testPrefix(b), clientv3.WithPrefix(),
		clientv3.WithCreatedNotify())
	if wr := <-wch; !wr.Created {
		b.Fatalf("watch not created: %v", wr.Err())
	}
	joiner := cs[w+1]
	cpu := startCPU()
	for b.Loop() {
		jctx, leave := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := joiner.lock(jctx)
			done <- err
		}()
		joined := false
		for !joined && ctx.Err() == nil {
			select {
			case wr := <-wch:
				for _, ev := range wr.Events {
					joined = joined || (ev.Type == clientv3.EventTypePut && ev.Kv.Version == 1)
				}
			case <-ctx.Done():
			}
		}
		leave()
		if err := <-done; err == nil {
			f.fail(errors.New("the joiner was granted"))
		}
		if ctx.Err() != nil {
			break
		}
	}
	cpu.report(b)
}

// BenchmarkWatchFanout is the floor under GrantWithWaiters when the
// waiters are spread over P sessions, measured with etcd's client alone:
// P clients each follow one prefix with one watch, as every process
// follows a line it waits in, and each op is what a grant in
// GrantWithWaiters sends through them: a delete (the release) and a put
// (the holder joining again), from one client in turn. An op ends when the
// next client in turn has seen the delete. No etcdsync code runs, so the
// ns/op and cpu-ns/op here are what the P-fold fan-out of two events costs
// on this machine; a grant cannot cost less while every process follows
// the whole line.
func BenchmarkWatchFanout(b *testing.B) {
	for _, p := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("sessions=%d", p), func(b *testing.B) { benchFanout(b, p) })
	}
}

func benchFanout(b *testing.B, p int) {
	tr := &watchTrace{}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	prefix := benchPrefix(b)
	clis := make([]*clientv3.Client, p)
	// seen[i] is the revision of the last delete client i's watch showed;
	// told[i] is signalled after each.
	seen := make([]atomic.Int64, p)
	told := make([]chan struct{}, p)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range clis {
		clis[i] = benchClient(b, tr)
		told[i] = make(chan struct{}, 1)
		wch := clis[i].Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		if wr := <-wch; !wr.Created {
			b.Fatalf("watch not created: %v", wr.Err())
		}
		wg.Go(func() {
			for wr := range wch {
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						seen[i].Store(ev.Kv.ModRevision)
						select {
						case told[i] <- struct{}{}:
						default:
						}
					}
				}
			}
		})
	}
	key := func(n int) string { return fmt.Sprintf("%sq/%08d", prefix, n) }
	for n := range p {
		if _, err := clis[n].Put(ctx, key(n), "1"); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	events := tr.get().events
	cpu := startCPU()
	for b.Loop() {
		from, next := clis[n%p], (n+1)%p
		resp, err := from.Delete(ctx, key(n))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := from.Put(ctx, key(n+p), "1"); err != nil {
			b.Fatal(err)
		}
		for seen[next].Load() < resp.Header.Revision {
			select {
			case <-told[next]:
			case <-ctx.Done():
				b.Fatal(ctx.Err())
			}
		}
		n++
	}
	cpu.report(b)
	b.ReportMetric(float64(tr.get().events-events)/float64(b.N), "events/op")
}
