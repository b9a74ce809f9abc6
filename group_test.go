package ctxsync_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// gate is a function for a Group call that counts its runs, hands its
// context out, and returns what it is sent.
type gate struct {
	runs  atomic.Int32
	ctxs  chan context.Context
	reply chan string
}

func newGate() *gate {
	return &gate{ctxs: make(chan context.Context, 16), reply: make(chan string, 16)}
}

func (g *gate) fn(ctx context.Context) (string, error) {
	g.runs.Add(1)
	g.ctxs <- ctx
	select {
	case v := <-g.reply:
		return v, nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

type doResult struct {
	v   string
	err error
}

func goDo(g *ctxsync.Group[string, string], ctx context.Context, key string, fn func(context.Context) (string, error)) chan doResult {
	ch := make(chan doResult, 1)
	go func() {
		v, err := g.Do(ctx, key, fn)
		ch <- doResult{v, err}
	}()
	return ch
}

// While a call for a key runs, a Do with the same key joins it: fn runs
// once for all, and each gets its value and error. Other keys get calls of
// their own.
func TestGroupJoinsRunningCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()
		ctx := context.Background()
		var results []chan doResult
		for range 3 {
			results = append(results, goDo(&g, ctx, "k", f.fn))
			synctest.Wait()
		}
		other := goDo(&g, ctx, "other", f.fn)
		synctest.Wait()
		assert.Equal(t, int32(2), f.runs.Load())
		assert.Equal(t, 2, g.InFlight())
		f.reply <- "v"
		f.reply <- "w"
		var joined []string
		for _, r := range results {
			res := <-r
			require.NoError(t, res.err)
			joined = append(joined, res.v)
		}
		alone := <-other
		require.NoError(t, alone.err)
		// The two runs took the replies in either order; the three callers
		// of "k" got one and the same.
		assert.Equal(t, []string{joined[0], joined[0], joined[0]}, joined)
		assert.ElementsMatch(t, []string{"v", "w"}, []string{joined[0], alone.v})
		assert.Zero(t, g.InFlight())
	})
}

// There is no caching: a Do after the call delivered starts a new one. Its
// error is delivered as well as its value.
func TestGroupNoCaching(t *testing.T) {
	var g ctxsync.Group[string, int]
	runs := 0
	fn := func(context.Context) (int, error) { runs++; return runs, assert.AnError }
	v, err := g.Do(context.Background(), "k", fn)
	assert.Equal(t, 1, v)
	assert.Equal(t, assert.AnError, err)
	v, _ = g.Do(context.Background(), "k", fn)
	assert.Equal(t, 2, v)
	assert.Zero(t, g.InFlight())
}

type ctxKey struct{}

// fn's context carries the first caller's values, but not its
// cancellation nor its deadline; it is cancelled once fn has returned.
func TestGroupFnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "first"), time.Second)
		defer cancel()
		r := goDo(&g, ctx, "k", f.fn)
		fctx := <-f.ctxs
		assert.Equal(t, "first", fctx.Value(ctxKey{}))
		_, hasDeadline := fctx.Deadline()
		assert.False(t, hasDeadline)
		second := goDo(&g, context.WithValue(context.Background(), ctxKey{}, "second"), "k", f.fn)
		synctest.Wait()

		time.Sleep(2 * time.Second) // the first caller's deadline passes (synctest's clock)
		assert.Equal(t, context.DeadlineExceeded, (<-r).err)
		assert.NoError(t, fctx.Err(), "the call goes on for the second caller")

		f.reply <- "v"
		assert.Equal(t, doResult{"v", nil}, <-second)
		synctest.Wait()
		assert.Equal(t, context.Canceled, fctx.Err(), "cancelled once fn has returned")
		assert.Equal(t, context.Canceled, context.Cause(fctx))
	})
}

// A caller whose context ends returns exactly ctx.Err() at once; the call
// goes on for the others.
func TestGroupCallerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()
		stay := goDo(&g, context.Background(), "k", f.fn)
		fctx := <-f.ctxs
		ctx, cancel := context.WithCancelCause(context.Background())
		leaver := goDo(&g, ctx, "k", f.fn)
		synctest.Wait()
		cancel(assert.AnError)
		res := <-leaver
		assert.Equal(t, context.Canceled, res.err, "exactly ctx.Err(), not the cause")
		assert.Empty(t, res.v)
		assert.NoError(t, fctx.Err())
		assert.Equal(t, 1, g.InFlight())

		f.reply <- "v"
		assert.Equal(t, doResult{"v", nil}, <-stay)
		assert.Equal(t, int32(1), f.runs.Load())
	})
}

// When every caller has left, fn's context is cancelled with cause
// ErrAbandoned and the key is free at once: a later Do starts a new call
// and never joins the abandoned one, even while its fn still runs.
func TestGroupAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		release := make(chan struct{})
		var ctxs []context.Context
		var mu sync.Mutex
		runs := 0
		slow := func(ctx context.Context) (string, error) {
			mu.Lock()
			runs++
			n := runs
			ctxs = append(ctxs, ctx)
			mu.Unlock()
			<-release // ignores its context
			return fmt.Sprint("run ", n), nil
		}
		ctx1, cancel1 := context.WithCancel(context.Background())
		ctx2, cancel2 := context.WithCancel(context.Background())
		r1 := goDo(&g, ctx1, "k", slow)
		r2 := goDo(&g, ctx2, "k", slow)
		synctest.Wait()
		cancel1()
		assert.Equal(t, context.Canceled, (<-r1).err)
		synctest.Wait()
		mu.Lock()
		assert.NoError(t, ctxs[0].Err(), "one caller is still there")
		mu.Unlock()
		cancel2()
		assert.Equal(t, context.Canceled, (<-r2).err)
		mu.Lock()
		assert.Equal(t, context.Canceled, ctxs[0].Err())
		assert.Equal(t, ctxsync.ErrAbandoned, context.Cause(ctxs[0]))
		mu.Unlock()
		assert.Zero(t, g.InFlight(), "the abandoned key is free at once")

		r3 := goDo(&g, context.Background(), "k", slow)
		synctest.Wait()
		assert.Equal(t, 1, g.InFlight())
		close(release)
		assert.Equal(t, doResult{"run 2", nil}, <-r3, "a new call, never the abandoned one")
		synctest.Wait()
		assert.Equal(t, ctxsync.ErrAbandoned, context.Cause(ctxs[0]), "the cause stays ErrAbandoned")
	})
}

func TestErrAbandonedText(t *testing.T) {
	assert.EqualError(t, ctxsync.ErrAbandoned, "ctxsync: call abandoned")
}

// R1: with a context already done, Do returns ctx.Err() and neither starts
// nor joins a call.
func TestGroupDoneContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()
		_, err := g.Do(cancelled(), "k", f.fn)
		assert.Equal(t, context.Canceled, err)
		synctest.Wait()
		assert.Zero(t, f.runs.Load(), "not started")
		assert.Zero(t, g.InFlight())

		ctx, cancel := context.WithCancel(context.Background())
		r := goDo(&g, ctx, "k", f.fn)
		fctx := <-f.ctxs
		_, err = g.Do(cancelled(), "k", f.fn)
		assert.Equal(t, context.Canceled, err)
		cancel()
		assert.Equal(t, context.Canceled, (<-r).err)
		assert.Equal(t, ctxsync.ErrAbandoned, context.Cause(fctx), "the done caller never joined, so it kept nothing alive")
	})
}

// Forget: the next Do starts a new call; callers already waiting still get
// the running call's result.
func TestGroupForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()
		first := goDo(&g, context.Background(), "k", f.fn)
		<-f.ctxs
		g.Forget("k")
		g.Forget("never")
		assert.Zero(t, g.InFlight())
		second := goDo(&g, context.Background(), "k", f.fn)
		<-f.ctxs
		assert.Equal(t, int32(2), f.runs.Load())
		f.reply <- "a"
		f.reply <- "b"
		a, b := <-first, <-second
		assert.ElementsMatch(t, []string{"a", "b"}, []string{a.v, b.v})
	})
}

// A panic in fn is re-raised in every waiting caller as a *PanicError with
// the value and fn's stack; the key is free afterwards.
func TestGroupPanicReRaisedInEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		start := make(chan struct{})
		boom := errors.New("boom")
		fn := func(context.Context) (string, error) {
			<-start
			panic(boom)
		}
		const callers = 3
		caught := make(chan any, callers)
		for range callers {
			go func() {
				defer func() { caught <- recover() }()
				_, _ = g.Do(context.Background(), "k", fn)
			}()
		}
		tk := g.DoTicket("k", fn)
		synctest.Wait()
		close(start)
		for range callers {
			r := <-caught
			pe, ok := r.(*ctxsync.PanicError)
			require.True(t, ok, "got %T", r)
			assert.Equal(t, boom, pe.Value)
			assert.ErrorIs(t, pe, boom)
			assert.Contains(t, string(pe.Stack), "TestGroupPanicReRaisedInEveryCaller")
			assert.Contains(t, pe.Error(), "boom")
		}
		<-tk.Ready()
		assert.Panics(t, func() { tk.Value() })
		assert.Panics(t, func() { _ = tk.Err() })
		assert.Zero(t, g.InFlight(), "the key is free")
		v, err := g.Do(context.Background(), "k", func(context.Context) (string, error) { return "ok", nil })
		assert.Equal(t, "ok", v)
		assert.NoError(t, err)
	})
}

func TestPanicErrorUnwrap(t *testing.T) {
	assert.Nil(t, (&ctxsync.PanicError{Value: "not an error"}).Unwrap())
	assert.Equal(t, assert.AnError, (&ctxsync.PanicError{Value: assert.AnError}).Unwrap())
}

// If nobody waits, a panic in fn crashes the program like any goroutine's
// panic: it is never swallowed. Run in a child process.
func TestGroupPanicNobodyWaitsCrashes(t *testing.T) {
	if os.Getenv("CTXSYNC_GROUP_CRASH") == "1" {
		var g ctxsync.Group[string, string]
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		go func() {
			_, _ = g.Do(ctx, "k", func(context.Context) (string, error) {
				<-release
				panic("nobody is left")
			})
		}()
		for g.InFlight() == 0 {
			runtime.Gosched()
		}
		cancel()
		for g.InFlight() != 0 {
			runtime.Gosched()
		}
		close(release)
		select {} // the panic ends the process
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupPanicNobodyWaitsCrashes$")
	cmd.Env = append(os.Environ(), "CTXSYNC_GROUP_CRASH=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child must crash: %s", out)
	assert.Contains(t, string(out), "nobody is left")
	assert.Contains(t, string(out), "panic")
}

// A GroupTicket joins like Do without a context: Ready closes when the
// call delivers, Value and Err give its result, and Stop leaves the call.
func TestGroupTicket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()
		a := g.DoTicket("k", f.fn)
		fctx := <-f.ctxs
		b := g.DoTicket("k", f.fn)
		c := g.DoTicket("k", f.fn)
		assert.False(t, isReady(a))
		assert.NoError(t, a.Err(), "nil while the call runs")
		assert.Empty(t, a.Value())
		assert.True(t, b.Stop(), "left before delivery")
		assertGroupTicketStopped(t, b)
		assert.NoError(t, fctx.Err())

		f.reply <- "v"
		<-a.Ready()
		assert.Equal(t, context.Canceled, fctx.Err(), "fn has returned: its context has ended")
		<-c.Ready()
		assert.Equal(t, "v", a.Value())
		assert.NoError(t, a.Err())
		assert.False(t, a.Stop(), "already delivered")
		assert.Equal(t, "v", c.Value())
		assertGroupTicketStopped(t, b)
		assert.Equal(t, int32(1), f.runs.Load())

		// The last ticket to leave abandons the call.
		d := g.DoTicket("k2", f.fn)
		dctx := <-f.ctxs
		assert.True(t, d.Stop())
		assert.Equal(t, ctxsync.ErrAbandoned, context.Cause(dctx))
		assert.Zero(t, g.InFlight())
	})
}

func assertGroupTicketStopped(t *testing.T, tk *ctxsync.GroupTicket[string]) {
	t.Helper()
	select {
	case <-tk.Ready():
		assert.Fail(t, "a stopped ticket's Ready never closes")
	default:
	}
	assert.Equal(t, ctxsync.ErrTicketStopped, tk.Err())
	assert.Empty(t, tk.Value())
	assert.False(t, tk.Stop(), "only one Stop returns true")
}

func TestGroupZeroTicketPanics(t *testing.T) {
	var tk ctxsync.GroupTicket[int]
	const msg = "ctxsync: zero GroupTicket; tickets come from Group.DoTicket"
	for name, call := range map[string]func(){
		"Ready": func() { tk.Ready() },
		"Value": func() { tk.Value() },
		"Err":   func() { _ = tk.Err() },
		"Stop":  func() { tk.Stop() },
	} {
		t.Run(name, func(t *testing.T) { assert.PanicsWithValue(t, msg, call) })
	}
}

// The last caller leaving as fn returns: the caller gets either the value
// or exactly ctx.Err(), never anything else, and the key is free after.
func TestGroupLastCallerLeavesAsFnReturns(t *testing.T) {
	outcomes := map[string]int{}
	for i := range 40 {
		synctest.Test(t, func(t *testing.T) {
			var g ctxsync.Group[string, string]
			start := make(chan struct{})
			var fctx context.Context
			fn := func(ctx context.Context) (string, error) {
				fctx = ctx
				<-start
				for range i % 5 {
					runtime.Gosched()
				}
				return "v", nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			r := goDo(&g, ctx, "k", fn)
			synctest.Wait()
			close(start)
			for range i / 5 % 8 {
				runtime.Gosched()
			}
			cancel()
			res := <-r
			switch res.err {
			case nil:
				assert.Equal(t, "v", res.v)
				outcomes["value"]++
			default:
				assert.Equal(t, context.Canceled, res.err)
				assert.Empty(t, res.v)
				outcomes["left"]++
			}
			synctest.Wait()
			assert.Error(t, fctx.Err(), "fn's context ends once fn has returned")
			assert.Zero(t, g.InFlight())
		})
	}
	t.Log(outcomes)
}

// Randomized stress: callers ask for a few keys, some give up, some use
// tickets. No caller gets the value of a call that had delivered to someone
// else before it asked, nor of an abandoned call.
func TestGroupStress(t *testing.T) {
	const keys, workers = 3, 8
	rounds := 200 * stressScale
	var g ctxsync.Group[int, int64]
	var clock, ids atomic.Int64
	var mu sync.Mutex
	firstReceived := map[int64]int64{} // call id -> clock at its first receipt
	abandoned := map[int64]bool{}
	fn := func(ctx context.Context) (int64, error) {
		id := ids.Add(1)
		for range rand.IntN(4) {
			runtime.Gosched()
		}
		if context.Cause(ctx) == ctxsync.ErrAbandoned {
			mu.Lock()
			abandoned[id] = true
			mu.Unlock()
		}
		return id, nil
	}
	check := func(asked, id int64) {
		now := clock.Add(1)
		mu.Lock()
		defer mu.Unlock()
		assert.False(t, abandoned[id], "value of an abandoned call")
		if first, ok := firstReceived[id]; ok {
			assert.Greater(t, first, asked, "value of a call that had delivered before the caller asked")
		} else {
			firstReceived[id] = now
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 25))
			for range rounds {
				k := rng.IntN(keys)
				asked := clock.Add(1)
				if rng.IntN(4) == 0 {
					tk := g.DoTicket(k, fn)
					runtime.Gosched()
					if !tk.Stop() {
						check(asked, tk.Value())
					}
					continue
				}
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancelAfterYields(cancel, rng.IntN(4))
				}
				if id, err := g.Do(ctx, k, fn); err == nil {
					check(asked, id)
				} else {
					assert.Equal(t, context.Canceled, err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return g.InFlight() == 0 }, 10*time.Second, time.Millisecond)
}

// A Group's map of calls in flight goes too, once a burst of keys is over.
// The runtime keeps the records of goroutines that ended for reuse, so a
// first burst warms them up before the measure.
func TestGroupGivesMemoryBack(t *testing.T) {
	var g ctxsync.Group[int, int]
	const burst = memoryKeys / 40
	groupBurst(t, &g, burst)
	before := heapAfterGC()
	groupBurst(t, &g, burst)
	after := heapAfterGC()
	t.Logf("heap before %d, after %d bytes", before, after)
	assert.Less(t, int64(after)-int64(before), int64(keyedMemoryBound))
	runtime.KeepAlive(&g)
}

// groupBurst runs calls for n keys at once, and waits until their
// goroutines have ended.
func groupBurst(t *testing.T, g *ctxsync.Group[int, int], n int) {
	release := make(chan struct{})
	var running sync.WaitGroup
	tickets := make([]*ctxsync.GroupTicket[int], n)
	for k := range n {
		running.Add(1)
		tickets[k] = g.DoTicket(k, func(context.Context) (int, error) {
			defer running.Done()
			<-release
			return k, nil
		})
	}
	require.Equal(t, n, g.InFlight())
	close(release)
	for k, tk := range tickets {
		<-tk.Ready()
		require.Equal(t, k, tk.Value())
	}
	running.Wait()
	require.Zero(t, g.InFlight())
}
