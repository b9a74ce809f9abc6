package etcdsync_test

// A fencing check in the Jepsen style (D5, D6, D9): replicas, each with a
// client and session of its own and some behind a proxy that cuts their
// network, repeatedly take a Lock, read a register kept in etcd and write
// register+1 only If(p.Guard()), while a nemesis revokes their leases and
// cuts and heals their networks at random. Every operation is recorded with
// its start and end; afterwards the history must show that the guard made
// the lock safe: the register counts exactly the guarded writes that were
// applied, their tokens strictly increase with the values they wrote, and
// a write that ended before another began wrote the lower value.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fencingOp is one guarded increment as a replica saw it.
type fencingOp struct {
	replica    int
	id         string // names its marker key, written with the increment
	start, end time.Time
	token      int64
	wrote      int64
	outcome    string // "ok", "refused" (the guard failed) or "unknown" (no answer)
}

// fencingReplica is one process: a client (behind a proxy or not) and its
// current session, replaced when lost.
type fencingReplica struct {
	i      int
	cli    *clientv3.Client
	proxy  *etcdtest.Proxy // nil: direct
	prefix string

	mu       sync.Mutex
	s        *etcdsync.Session
	sessions []*etcdsync.Session // every session made, closed at the end
}

func (r *fencingReplica) session(ctx context.Context) (*etcdsync.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s != nil && !confClosed(r.s.Done()) {
		return r.s, nil
	}
	s, err := etcdsync.NewSession(ctx, r.cli, etcdsync.WithPrefix(r.prefix), etcdsync.WithTTL(minTTL))
	if err != nil {
		return nil, err
	}
	r.s = s
	r.sessions = append(r.sessions, s)
	return s, nil
}

func (r *fencingReplica) lease() (clientv3.LeaseID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s == nil {
		return 0, false
	}
	return r.s.Lease(), true
}

// increment is one operation: Lock, read, guarded write, Release. It
// returns nil when no write was attempted.
func (r *fencingReplica) increment(register, markers string, seq int) *fencingOp {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := r.session(ctx)
	if err != nil {
		return nil
	}
	p, err := etcdsync.NewLock(s, "register").Lock(ctx)
	if err != nil {
		return nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.Release(rctx) // a failed Release is the session's to finish
		cancel()
	}()
	op := &fencingOp{replica: r.i, id: fmt.Sprintf("%d-%d", r.i, seq), start: time.Now(), token: p.Token()}
	resp, err := r.cli.Get(ctx, register)
	if err != nil {
		return nil
	}
	var v int64
	if len(resp.Kvs) == 1 {
		v, err = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
		if err != nil {
			panic(err)
		}
	}
	op.wrote = v + 1
	tresp, err := r.cli.Txn(ctx).If(p.Guard()).Then(
		clientv3.OpPut(register, strconv.FormatInt(v+1, 10)),
		clientv3.OpPut(markers+op.id, ""),
	).Commit()
	op.end = time.Now()
	switch {
	case err != nil:
		op.outcome = "unknown"
	case tresp.Succeeded:
		op.outcome = "ok"
	default:
		op.outcome = "refused"
	}
	return op
}

func TestFencingUnderNemesis(t *testing.T) {
	const replicas, behindProxy = 4, 2
	goroutinesBefore := sessionGoroutines()
	runFor := time.Duration(stressScale) * 3 * time.Second
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %v", seed, runFor)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	// A prefix of this run's own: -count runs the test again on the same
	// server.
	prefix := testPrefix(t) + strconv.FormatInt(seed, 36) + "/"
	register, markers := prefix+"register", prefix+"op/"
	admin := newClient(t)

	rs := make([]*fencingReplica, replicas)
	for i := range rs {
		r := &fencingReplica{i: i, prefix: prefix}
		if i < behindProxy {
			r.proxy = newProxy(t)
			r.cli = newClient(t, r.proxy.URL())
		} else {
			r.cli = newClient(t)
		}
		rs[i] = r
	}

	var mu sync.Mutex
	var history []*fencingOp
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if op := r.increment(register, markers, seq); op != nil {
					mu.Lock()
					history = append(history, op)
					mu.Unlock()
				}
			}
		})
	}

	// The nemesis: every 50-250 ms, revoke a replica's lease, or cut a
	// proxied replica's network for 0.2-1.5 s (longer than the TTL, at
	// times), or heal every cut.
	faults := map[string]int{}
	deadline := time.Now().Add(runFor)
	healAt := make([]time.Time, behindProxy)
	for time.Now().Before(deadline) {
		timer := time.NewTimer(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		<-timer.C
		for i := range healAt {
			if !healAt[i].IsZero() && time.Now().After(healAt[i]) {
				rs[i].proxy.Restore()
				healAt[i] = time.Time{}
			}
		}
		switch rng.IntN(3) {
		case 0:
			r := rs[rng.IntN(replicas)]
			if id, ok := r.lease(); ok {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _ = admin.Revoke(ctx, id)
				cancel()
				faults["revoke"]++
			}
		case 1:
			i := rng.IntN(behindProxy)
			if healAt[i].IsZero() {
				rs[i].proxy.Cut()
				healAt[i] = time.Now().Add(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
				faults["cut"]++
			}
		}
	}
	for i := range behindProxy {
		rs[i].proxy.Restore()
	}
	close(stop)
	wg.Wait()
	for _, r := range rs {
		for _, s := range r.sessions {
			ctx, cancel := context.WithTimeout(context.Background(), confWait)
			_ = s.Close(ctx) // a session ended by the nemesis may fail to revoke
			cancel()
		}
	}
	require.LessOrEqual(t, sessionGoroutines(), goroutinesBefore, "goroutines outlived Close")

	// Resolve the writes whose outcome the replica never heard: each
	// wrote a marker key with its increment, in one transaction.
	resp, err := admin.Get(confCtx(t), markers, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	landed := map[string]bool{}
	for _, kv := range resp.Kvs {
		landed[string(kv.Key)[len(markers):]] = true
	}
	var applied []*fencingOp
	counts := map[string]int{}
	for _, op := range history {
		counts[op.outcome]++
		if op.outcome == "ok" {
			require.True(t, landed[op.id], "op %s succeeded but its marker is missing", op.id)
		}
		if op.outcome == "refused" {
			require.False(t, landed[op.id], "op %s was refused but its marker is there", op.id)
		}
		if landed[op.id] {
			applied = append(applied, op)
		}
	}
	require.Len(t, landed, len(applied), "markers of operations nobody recorded")
	t.Logf("%d operations %v, %d applied; faults %v", len(history), counts, len(applied), faults)
	require.NotEmpty(t, applied, "no progress")

	// The register counts exactly the applied guarded writes.
	resp, err = admin.Get(confCtx(t), register)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	final, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	require.NoError(t, err)
	require.Equal(t, int64(len(applied)), final, "register vs applied guarded writes")

	// Each applied write read the value the one before it wrote (the
	// values are 1..n, each once), and tokens strictly increase with them.
	slices.SortFunc(applied, func(a, b *fencingOp) int { return int(a.wrote - b.wrote) })
	for i, op := range applied {
		require.Equal(t, int64(i+1), op.wrote, "lost or doubled increment at %d", i+1)
		if i > 0 {
			require.Greater(t, op.token, applied[i-1].token, "token of write %d", op.wrote)
		}
	}
	// Real time: a write that ended before another began wrote the lower
	// value (only acknowledged writes have a known end). Walking down from
	// the highest value, no write may begin after one of higher value
	// ended.
	var firstEnd *fencingOp // of the writes of higher value, the one that ended first
	for i := len(applied) - 1; i >= 0; i-- {
		op := applied[i]
		if firstEnd != nil && firstEnd.end.Before(op.start) {
			t.Fatalf("write %s (value %d) ended before write %s (value %d) began",
				firstEnd.id, firstEnd.wrote, op.id, op.wrote)
		}
		if op.outcome == "ok" && (firstEnd == nil || op.end.Before(firstEnd.end)) {
			firstEnd = op
		}
	}

	// The same history, every operation in it, checked by porcupine
	// against a sequential counter: each lock-read-guarded-write is one
	// increment, applied or not; a write whose reply was lost may have
	// taken effect any time after it began.
	base := history[0].start
	for _, op := range history {
		base = minTime(base, op.start)
	}
	after := time.Now()
	var ops []porcupine.Operation
	for _, op := range history {
		end := op.end
		if op.outcome == "unknown" {
			end = after
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.replica,
			Input:    nil,
			Call:     op.start.Sub(base).Nanoseconds(),
			Output:   counterOutput{wrote: op.wrote, applied: landed[op.id]},
			Return:   end.Sub(base).Nanoseconds(),
		})
	}
	ops = append(ops, porcupine.Operation{
		ClientId: replicas,
		Call:     after.Sub(base).Nanoseconds() + 1,
		Output:   counterOutput{read: true, wrote: final},
		Return:   after.Sub(base).Nanoseconds() + 2,
	})
	require.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(counterModel, ops, 10*time.Second),
		"the history is not linearizable")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// counterOutput is what one operation on the register saw: an increment
// that wrote wrote (or would have, had its guard held) and was applied or
// not, or the final read of the value wrote.
type counterOutput struct {
	read    bool
	wrote   int64
	applied bool
}

// counterModel is the register as a sequential counter.
var counterModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, _, output any) (bool, any) {
		v, out := state.(int64), output.(counterOutput)
		switch {
		case out.read:
			return out.wrote == v, v
		case !out.applied:
			return true, v
		default:
			return out.wrote == v+1, v + 1
		}
	},
}
