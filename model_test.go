package ctxsync_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// The harness shared by the <type>_model_test.go files.
//
// Fuzz targets: a byte string drives a random sequence of operations,
// blocking ones included, against a sequential model of the primitive that
// also models its lines of waiters. Every operation runs inside a
// testing/synctest bubble, so after each step every goroutine has either
// finished or is parked, and the model says exactly which.
//
// Linearizability: concurrent histories of operations, with random
// cancellations, checked with porcupine against sequential models. A
// failed call must have had no effect (R3), so the models let it happen in
// any state without changing anything; every other outcome is checked
// strictly.

// linearizeHistories is how many random histories each model checks: a few
// in normal runs, 1,000 with -tags stress.
const linearizeHistories = 10 * stressScale

type opKind int

const (
	opPut opKind = iota
	opTryPut
	opGet
	opTryGet
	opLen
	opAcquire
	opTryAcquire
	opRelease
	opAvailable
	opGetMany // GetMany or TryGetMany with a dst of n
	opShutdown
)

type opInput struct {
	kind opKind
	n    int // the item put, or the permits asked for or released
}

type opOutput struct {
	n   int // the item got, or the length or permits seen
	err error
}

// recorder collects a history; its clock orders calls and returns.
type recorder struct {
	clock atomic.Int64
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) do(client int, in opInput, call func() opOutput) {
	r.doAny(client, in, func() any { return call() })
}

// doAny records a call whose output is of any type the model knows.
func (r *recorder) doAny(client int, in opInput, call func() any) {
	start := r.clock.Add(1)
	out := call()
	end := r.clock.Add(1)
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: start, Output: out, Return: end})
	r.mu.Unlock()
}

// opContext returns a context for one blocking call: at random cancelled
// after a few yields, and always ended by a short timeout so that every
// history finishes. A call that ends on its context had no effect, so the
// timing changes which history is recorded, never whether it is correct.
func opContext(rng *rand.Rand) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	if rng.IntN(3) == 0 {
		go cancelAfterYields(cancel, rng.IntN(8))
	}
	return ctx, cancel
}

// queueState is a queue model's state: the items, and whether the queue
// is shut down.
type queueState struct {
	items []int
	shut  bool
}

// queueModel is the sequential specification of a queue whose Get takes
// the item at index next(items) first, with Shutdown (capacity 0:
// unbounded). A call that ended on its context had no effect (R3).
func queueModel(capacity int, next func(items []int) int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return queueState{} },
		Step: func(state, input, output any) (bool, any) {
			st := state.(queueState)
			in := input.(opInput)
			if many, ok := output.(manyOutput); ok {
				switch many.err {
				case ctxsync.ErrQueueShutDown:
					return st.shut && len(st.items) == 0, st
				case ctxsync.ErrQueueEmpty:
					return !st.shut && len(st.items) == 0, st
				}
				ok, rest := stepGetMany(st.items, in, many, next)
				return ok, queueState{rest.([]int), st.shut}
			}
			out := output.(opOutput)
			full := capacity > 0 && len(st.items) >= capacity
			switch in.kind {
			case opShutdown:
				return true, queueState{st.items, true}
			case opPut, opTryPut:
				switch {
				case out.err == ctxsync.ErrQueueShutDown:
					return st.shut, st
				case out.err == ctxsync.ErrQueueFull:
					return !st.shut && full, st
				case out.err != nil:
					return true, st // ended by its context: no effect
				}
				return !st.shut && !full, queueState{append(slices.Clip(st.items), in.n), st.shut}
			case opGet, opTryGet:
				switch {
				case out.err == ctxsync.ErrQueueShutDown:
					return st.shut && len(st.items) == 0, st
				case out.err == ctxsync.ErrQueueEmpty:
					return !st.shut && len(st.items) == 0, st
				case out.err != nil:
					return true, st // ended by its context: no effect
				}
				if len(st.items) == 0 {
					return false, st
				}
				i := next(st.items)
				return st.items[i] == out.n, queueState{slices.Delete(slices.Clone(st.items), i, i+1), st.shut}
			case opLen:
				return out.n == len(st.items), st
			}
			return false, st
		},
		Equal: func(a, b any) bool {
			x, y := a.(queueState), b.(queueState)
			return x.shut == y.shut && slices.Equal(x.items, y.items)
		},
		DescribeOperation: func(input, output any) string {
			return fmt.Sprintf("%v -> %v", input, output)
		},
	}
}

// manyOutput is the outcome of a GetMany or TryGetMany: the batch taken.
type manyOutput struct {
	items []int
	err   error
}

// stepGetMany is the model's GetMany(in.n) or TryGetMany: it takes the
// min(in.n, len(items)) items there, in Get order, at one instant.
func stepGetMany(items []int, in opInput, out manyOutput, next func([]int) int) (bool, any) {
	switch {
	case out.err == ctxsync.ErrQueueEmpty:
		return len(items) == 0, items
	case out.err != nil:
		return true, items // ended by its context: no effect
	case len(items) == 0 || len(out.items) > min(in.n, len(items)):
		return false, items
	case len(out.items) < min(in.n, len(items)):
		return false, items
	}
	rest := slices.Clone(items)
	for _, v := range out.items {
		i := next(rest)
		if rest[i] != v {
			return false, items
		}
		rest = slices.Delete(rest, i, i+1)
	}
	return true, rest
}

func fifoNext([]int) int { return 0 }

// requireLinearizable checks a history, and logs it if it is not
// linearizable.
func requireLinearizable(t *testing.T, model porcupine.Model, ops []porcupine.Operation, what string) {
	t.Helper()
	result := porcupine.CheckOperationsTimeout(model, ops, 10*time.Second)
	if result == porcupine.Illegal {
		sorted := slices.SortedFunc(slices.Values(ops), func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range sorted {
			t.Logf("client %d [%3d, %3d] %+v -> %+v", op.ClientId, op.Call, op.Return, op.Input, op.Output)
		}
	}
	require.NotEqual(t, porcupine.Illegal, result, "%s (%d operations) is not linearizable", what, len(ops))
}

// pending is one blocking call started by a fuzz target: the real outcome
// arrives on got; the model fills in want when it says the call is over.
type pending struct {
	got    chan opOutput
	cancel context.CancelFunc
	n      int // the item put, or the permits asked for
	over   bool
	want   opOutput
}

func (p *pending) finish(want opOutput) { p.over, p.want = true, want }

// checkPending compares every call the model says is over with its real
// outcome, and every other call with a goroutine that is still parked, and
// returns the calls still going on.
func checkPending(t *testing.T, calls []*pending) []*pending {
	synctest.Wait()
	var still []*pending
	for _, p := range calls {
		if p.over {
			select {
			case got := <-p.got:
				require.Equal(t, p.want, got)
			default:
				require.Fail(t, "the model says the call is over, but it still waits", "want %v", p.want)
			}
			p.cancel()
			continue
		}
		require.Empty(t, p.got, "the call is over, but the model says it waits")
		still = append(still, p)
	}
	return still
}

// removeWaiter takes p out of line, if it is there.
func removeWaiter(line []*pending, p *pending) []*pending {
	if i := slices.Index(line, p); i >= 0 {
		return slices.Delete(line, i, i+1)
	}
	return line
}

// startCall runs call in a goroutine of the bubble as a pending call.
func startCall(calls *[]*pending, n int, call func(ctx context.Context) opOutput) *pending {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pending{got: make(chan opOutput, 1), cancel: cancel, n: n}
	go func() { p.got <- call(ctx) }()
	*calls = append(*calls, p)
	return p
}

// cancelPending cancels the i'th call, and reports the call if it was
// still waiting, so that the model can take it out of line.
func cancelPending(calls []*pending, i int) *pending {
	if len(calls) == 0 {
		return nil
	}
	p := calls[i%len(calls)]
	p.cancel()
	if p.over {
		return nil
	}
	return p
}

// Fuzz targets for tickets: the sequential models, driven by byte strings
// that mix tickets with blocking calls, Try calls, cancellations and Stops.
// A ticket is decided by the very call that serves it, so after each step
// the model says exactly which tickets are decided, with what, and which
// Stop wins.

// ticketCall is a ticket the fuzzing goroutine holds, with the model's
// view of it: its pending record stands in the model's lines as a blocked
// call's does.
type ticketCall struct {
	*pending
	tk      ticketLike
	item    func() int // a GetTicket's Item; nil for other tickets
	stopped bool       // a Stop returned true
}

func newTicketCall(tickets *[]*ticketCall, tk ticketLike, n int, item func() int) *ticketCall {
	tc := &ticketCall{pending: &pending{n: n, cancel: func() {}}, tk: tk, item: item}
	*tickets = append(*tickets, tc)
	return tc
}

// pickTicket returns the i'th ticket, or nil if there is none.
func pickTicket(tickets []*ticketCall, i int) *ticketCall {
	if len(tickets) == 0 {
		return nil
	}
	return tickets[i%len(tickets)]
}

// stopTicket stops tc, which must return true exactly when the model has it
// still waiting; then leave takes it out of the model's lines and runs the
// model's policy for a waiter that leaves.
func stopTicket(t *testing.T, tc *ticketCall, leave func(p *pending)) {
	want := !tc.over && !tc.stopped
	if want {
		leave(tc.pending)
		tc.stopped = true
	}
	require.Equal(t, want, tc.tk.Stop())
}

// checkTickets compares every ticket with the model: decided ones are
// Ready with the model's outcome, waiting ones are not, stopped ones are
// spent.
func checkTickets(t *testing.T, tickets []*ticketCall) {
	for _, tc := range tickets {
		switch {
		case tc.stopped:
			require.False(t, isReady(tc.tk), "a stopped ticket's Ready closed")
			require.Equal(t, ctxsync.ErrTicketStopped, tc.tk.Err())
		case tc.over:
			require.True(t, isReady(tc.tk), "the model says the ticket is decided, want %v", tc.want)
			require.Equal(t, tc.want.err, tc.tk.Err())
			if tc.item != nil {
				require.Equal(t, tc.want.n, tc.item())
			}
		default:
			require.False(t, isReady(tc.tk), "the ticket is decided, but the model says it waits")
			require.NoError(t, tc.tk.Err())
		}
	}
}

// Linearizability with tickets: the histories above, with tickets among
// the calls. A ticket waited for in a select and stopped when the caller
// gives up is one operation, from its making to the Stop or the receive
// from Ready: it either had its whole effect (granted, or a Stop that
// returned false with a nil Err) or none (a Stop that returned true).

// awaitTicket waits for tk in a select with a short timer, or gives up
// after a few yields, and reports whether the caller holds the grant: Ready
// came, or Stop came too late and Err is nil.
func awaitTicket(rng *rand.Rand, tk ticketLike) bool {
	if rng.IntN(3) == 0 {
		for range rng.IntN(8) {
			runtime.Gosched() // give up soon, wherever the grant is
		}
	} else {
		timer := time.NewTimer(2 * time.Millisecond)
		defer timer.Stop()
		select {
		case <-tk.Ready():
			return tk.Err() == nil
		case <-timer.C:
		}
	}
	return !tk.Stop() && tk.Err() == nil
}
