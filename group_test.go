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

// The signatures of API.md's Group, GroupTicket and PanicError, checked by
// the compiler.
var (
	_ func(*ctxsync.Group[string, int], context.Context, string, func(context.Context) (int, error)) (int, error) = (*ctxsync.Group[string, int]).Do
	_ func(*ctxsync.Group[string, int], string, func(context.Context) (int, error)) *ctxsync.GroupTicket[int]     = (*ctxsync.Group[string, int]).DoTicket
	_ func(*ctxsync.Group[string, int], string)                                                                   = (*ctxsync.Group[string, int]).Forget
	_ func(*ctxsync.Group[string, int]) int                                                                       = (*ctxsync.Group[string, int]).InFlight
	_ func(*ctxsync.GroupTicket[int]) <-chan struct{}                                                             = (*ctxsync.GroupTicket[int]).Ready
	_ func(*ctxsync.GroupTicket[int]) int                                                                         = (*ctxsync.GroupTicket[int]).Value
	_ func(*ctxsync.GroupTicket[int]) error                                                                       = (*ctxsync.GroupTicket[int]).Err
	_ func(*ctxsync.GroupTicket[int]) bool                                                                        = (*ctxsync.GroupTicket[int]).Stop
	_ error                                                                                                       = (*ctxsync.PanicError)(nil)
	_ func(*ctxsync.PanicError) error                                                                             = (*ctxsync.PanicError).Unwrap
	_                                                                                                             = ctxsync.PanicError{Value: any(nil), Stack: []byte(nil)}
)

// Everyone who joined a call gets its value and its error, tickets
// included, from one run of fn.
func TestGroupJoinersGetValueAndError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		start := make(chan struct{})
		var runs atomic.Int32
		fn := func(context.Context) (string, error) {
			runs.Add(1)
			<-start
			return "partial", assert.AnError
		}
		var results []chan doResult
		for range 3 {
			results = append(results, goDo(&g, context.Background(), "k", fn))
			synctest.Wait()
		}
		tk := g.DoTicket("k", fn)
		close(start)
		for _, r := range results {
			assert.Equal(t, doResult{"partial", assert.AnError}, <-r)
		}
		<-tk.Ready()
		assert.Equal(t, "partial", tk.Value())
		assert.Equal(t, assert.AnError, tk.Err())
		assert.Equal(t, int32(1), runs.Load())
	})
}

// fn runs in a goroutine of its own, started by the Group, whatever the
// caller's context, even one that can never end (ctx.Done() == nil), and
// for a ticket.
func TestGroupFnRunsInItsOwnGoroutine(t *testing.T) {
	stackOfFn := func(context.Context) (string, error) {
		buf := make([]byte, 64<<10)
		return string(buf[:runtime.Stack(buf, false)]), nil
	}
	check := func(t *testing.T, stack string) {
		t.Helper()
		assert.Contains(t, stack, "created by github.com/ctxsync/ctxsync.(*Group")
		assert.NotContains(t, stack, ").Do(", "fn must not run on the caller's goroutine")
		assert.NotContains(t, stack, "testing.tRunner", "fn must not run on the caller's goroutine")
	}
	ctxs := map[string]context.Context{
		"Background":  context.Background(),
		"cancellable": t.Context(),
		"foreign":     newForeignContext(),
	}
	for name, ctx := range ctxs {
		t.Run(name, func(t *testing.T) {
			var g ctxsync.Group[string, string]
			stack, err := g.Do(ctx, "k", stackOfFn)
			require.NoError(t, err)
			check(t, stack)
		})
	}
	t.Run("DoTicket", func(t *testing.T) {
		var g ctxsync.Group[string, string]
		tk := g.DoTicket("k", stackOfFn)
		<-tk.Ready()
		check(t, tk.Value())
	})
}

// A forgotten call and the new call for the same key do not touch each
// other: the forgotten call's last caller leaving abandons only it, its fn
// returning frees nothing, and Do keeps joining the new call; callers of
// the forgotten call still get its result.
func TestGroupForgottenCallLeavesNewCallAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		oldCtxs := make(chan context.Context, 2)
		oldRelease := make(chan struct{})
		old := func(ctx context.Context) (string, error) {
			oldCtxs <- ctx
			<-oldRelease // ignores its context
			return "old", nil
		}
		newF := newGate()

		leaverCtx, leave := context.WithCancel(context.Background())
		leaver := goDo(&g, leaverCtx, "k", old)
		oldCtx := <-oldCtxs
		stayer := g.DoTicket("k", old)
		g.Forget("k")

		first := goDo(&g, context.Background(), "k", newF.fn)
		newCtx := <-newF.ctxs
		second := goDo(&g, context.Background(), "k", newF.fn)
		synctest.Wait()
		assert.Equal(t, 1, g.InFlight())

		leave()
		assert.Equal(t, context.Canceled, (<-leaver).err)
		assert.NoError(t, oldCtx.Err(), "the forgotten call still has a ticket")
		assert.True(t, stayer.Stop())
		assert.Equal(t, ctxsync.ErrAbandoned, context.Cause(oldCtx), "its last caller left")
		assert.NoError(t, newCtx.Err(), "the new call is not abandoned with it")
		assert.Equal(t, 1, g.InFlight(), "the new call is still there to join")

		close(oldRelease)
		synctest.Wait()
		assert.Equal(t, 1, g.InFlight(), "the forgotten call's end frees nothing")
		third := goDo(&g, context.Background(), "k", newF.fn)
		synctest.Wait()
		assert.Equal(t, int32(1), newF.runs.Load(), "the third caller joined the new call")

		newF.reply <- "new"
		for _, r := range []chan doResult{first, second, third} {
			assert.Equal(t, doResult{"new", nil}, <-r)
		}
		assert.Zero(t, g.InFlight())

		// Callers of a forgotten call that stay get its result.
		f := newGate()
		before := goDo(&g, context.Background(), "x", f.fn)
		<-f.ctxs
		tk := g.DoTicket("x", f.fn)
		g.Forget("x")
		synctest.Wait()
		f.reply <- "forgotten"
		assert.Equal(t, doResult{"forgotten", nil}, <-before)
		<-tk.Ready()
		assert.Equal(t, "forgotten", tk.Value())
		assert.Equal(t, int32(1), f.runs.Load())
	})
}

// panickingFetch is a Group call's function that panics, named so that
// its frame can be found in a stack.
func panickingFetch(ctxs chan<- context.Context, start <-chan struct{}, v any) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		ctxs <- ctx
		<-start
		panic(v)
	}
}

// The PanicError re-raised in each waiting caller, Do and ticket alike,
// holds the value and the stack of fn's goroutine at the panic (with fn's
// frame, not the caller's); fn's context is cancelled once fn has
// returned, by a panic too; the key is free afterwards.
func TestGroupPanicErrorHoldsFnStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, int]
		ctxs := make(chan context.Context, 1)
		start := make(chan struct{})
		fn := panickingFetch(ctxs, start, "the value")
		caught := make(chan any, 1)
		go func() {
			defer func() { caught <- recover() }()
			_, _ = g.Do(context.Background(), "k", fn)
		}()
		fctx := <-ctxs
		tk := g.DoTicket("k", fn)
		synctest.Wait()
		close(start)

		r := <-caught
		pe, ok := r.(*ctxsync.PanicError)
		require.True(t, ok, "Do re-raises a *PanicError, got %T", r)
		assert.Equal(t, "the value", pe.Value)
		assert.Nil(t, pe.Unwrap(), "the value is not an error")
		stack := string(pe.Stack)
		assert.Contains(t, stack, "panickingFetch", "fn's frame is in the stack")
		assert.Contains(t, stack, "created by github.com/ctxsync/ctxsync.(*Group")
		assert.NotContains(t, stack, ").Do(", "not the stack of the caller's goroutine")

		<-tk.Ready()
		for name, call := range map[string]func(){"Value": func() { tk.Value() }, "Err": func() { _ = tk.Err() }} {
			func() {
				defer func() {
					got, _ := recover().(*ctxsync.PanicError)
					if assert.NotNil(t, got, "%s re-raises the *PanicError", name) {
						assert.Equal(t, "the value", got.Value)
						assert.Contains(t, string(got.Stack), "panickingFetch")
					}
				}()
				call()
			}()
		}
		synctest.Wait()
		assert.Equal(t, context.Canceled, fctx.Err(), "fn's context ends once fn has returned")
		assert.Zero(t, g.InFlight())
	})
}

// A function that calls runtime.Goexit returns nothing: every caller gets
// an error (no value, no panic), rather than waiting for good, and the key
// is free afterwards. (API.md does not name the error: it is the Group's
// own, as x/sync/singleflight's errGoexit.)
func TestGroupGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		start := make(chan struct{})
		var fctx context.Context
		fn := func(ctx context.Context) (string, error) {
			fctx = ctx
			<-start
			runtime.Goexit()
			return "never", nil
		}
		r := goDo(&g, context.Background(), "k", fn)
		synctest.Wait()
		tk := g.DoTicket("k", fn)
		close(start)
		res := <-r
		assert.Error(t, res.err)
		assert.Empty(t, res.v)
		<-tk.Ready()
		assert.Error(t, tk.Err())
		assert.Equal(t, res.err, tk.Err())
		synctest.Wait()
		assert.Error(t, fctx.Err(), "fn's context ends once fn has returned")
		assert.Zero(t, g.InFlight())
	})
}

// A ticket and Do calls join each other's calls, and the call is
// abandoned only when the last of them, whichever kind, has left.
func TestGroupTicketsAndCallsJoinEachOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g ctxsync.Group[string, string]
		f := newGate()

		// A ticket starts, a Do joins; the ticket leaves, the Do stays.
		tk := g.DoTicket("a", f.fn)
		actx := <-f.ctxs
		r := goDo(&g, context.Background(), "a", f.fn)
		synctest.Wait()
		require.True(t, tk.Stop())
		assert.NoError(t, actx.Err(), "a caller is still there")
		f.reply <- "a"
		assert.Equal(t, doResult{"a", nil}, <-r)

		// A Do starts, a ticket joins; the Do leaves, the ticket stays,
		// then leaves too: abandoned.
		ctx, cancel := context.WithCancel(context.Background())
		r = goDo(&g, ctx, "b", f.fn)
		bctx := <-f.ctxs
		tk = g.DoTicket("b", f.fn)
		cancel()
		assert.Equal(t, context.Canceled, (<-r).err)
		assert.NoError(t, bctx.Err(), "the ticket is still there")
		assert.Equal(t, 1, g.InFlight())
		require.True(t, tk.Stop())
		assert.Equal(t, ctxsync.ErrAbandoned, context.Cause(bctx))
		assert.Zero(t, g.InFlight())
		assert.Equal(t, int32(2), f.runs.Load())
	})
}

// A caller never gets the value of a call that had already delivered to
// someone else before it asked: a ticket's call has delivered (its Ready
// is closed) though nobody has read it yet, and a Do after that starts a
// new call.
func TestGroupDeliveredCallIsNotJoined(t *testing.T) {
	var g ctxsync.Group[string, string]
	tk := g.DoTicket("k", func(context.Context) (string, error) { return "old", nil })
	<-tk.Ready()
	assert.Zero(t, g.InFlight())
	v, err := g.Do(context.Background(), "k", func(context.Context) (string, error) { return "new", nil })
	require.NoError(t, err)
	assert.Equal(t, "new", v)
	assert.Equal(t, "old", tk.Value())
}

// The memory-model sentence: the return of a call's function synchronizes
// before the return of every Do, and the close of every GroupTicket's
// Ready, that delivers its result. fn writes the plain fields of the value
// it returns, which every caller reads; -race reports a delivery that
// lacks the synchronization.
func TestGroupMemoryModel(t *testing.T) {
	type result struct{ a, b int }
	const keys, workers = 3, 6
	rounds := 100 * stressScale
	var g ctxsync.Group[int, *result]
	var seq atomic.Int64
	fn := func(context.Context) (*result, error) {
		r := new(result)
		r.a = int(seq.Add(1)) // plain writes, read by every caller
		r.b = -r.a
		return r, nil
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 28))
			for range rounds {
				k := rng.IntN(keys)
				var r *result
				if rng.IntN(3) == 0 {
					tk := g.DoTicket(k, fn)
					<-tk.Ready()
					r = tk.Value()
				} else {
					var err error
					r, err = g.Do(context.Background(), k, fn)
					if !assert.NoError(t, err) {
						return
					}
				}
				assert.Equal(t, -r.a, r.b)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, g.InFlight())
}

// R8: the calls of a Group and a GroupTicket that do not block allocate
// nothing: InFlight, Forget, and a delivered ticket's Ready, Value, Err
// and Stop.
func TestGroupNonBlockingCallsDoNotAllocate(t *testing.T) {
	var g ctxsync.Group[string, int]
	tk := g.DoTicket("k", func(context.Context) (int, error) { return 1, nil })
	<-tk.Ready()
	running := g.DoTicket("running", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, nil
	})
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		_ = g.InFlight()
		g.Forget("absent")
		_ = tk.Ready()
		_ = tk.Value()
		_ = tk.Err()
		_ = tk.Stop()
		_ = running.Err()
		_ = running.Value()
	}))
	g.Forget("running")
	assert.Zero(t, g.InFlight())
	require.True(t, running.Stop()) // abandons the call: its fn returns
	// Its goroutine must be gone before a later test counts goroutines.
	require.Eventually(t, func() bool { return len(goroutinesStartedBy()) == 0 }, 10*time.Second, time.Millisecond)
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
