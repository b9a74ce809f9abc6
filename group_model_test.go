package ctxsync_test

// A fuzz target for Group against a sequential model: per key, the call a
// Do would join now; per call, who waits for it, whether every caller has
// left (abandoned), and how fn returns. As in the other model files, every
// step runs in a testing/synctest bubble, so after each step every
// goroutine has either finished or is parked, and the model says which.

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

var (
	// errFuzzFn is the error a modelled fn returns when told to fail.
	errFuzzFn = errors.New("fn failed")
	// errFuzzPanicked stands, in a caller's outcome, for a *PanicError
	// re-raised in it; the outcome's n is then the panic's value.
	errFuzzPanicked = errors.New("panicked")
)

// fuzzFirstCaller is the key of a value each Do of FuzzGroup puts in its
// context: fn's context must carry the value of the Do that started the
// call.
type fuzzFirstCaller struct{}

// How a modelled fn returns.
const (
	fnValue = iota
	fnError
	fnPanic
)

// groupModelCall is the model's view of one call of fn.
type groupModelCall struct {
	id, key   int
	first     any                  // the value fn's context must carry
	release   chan int             // fn returns, fails or panics as it receives
	started   chan context.Context // fn sends its context as it starts
	ctx       context.Context
	callers   []*pending // callers and tickets that joined and have not left
	over      bool       // fn has returned
	abandoned bool       // every caller left before fn returned
}

// fuzzOutcome turns what a Group gave a caller into an opOutput, a
// re-raised *PanicError included.
func fuzzOutcome(call func() (int, error)) (out opOutput) {
	defer func() {
		if r := recover(); r != nil {
			pe := r.(*ctxsync.PanicError)
			out = opOutput{n: pe.Value.(int), err: errFuzzPanicked}
		}
	}()
	v, err := call()
	return opOutput{n: v, err: err}
}

func FuzzGroup(f *testing.F) {
	// Two callers join a call and one leaves; a ticket joins; the call
	// delivers. A key abandoned, asked for again, and both calls released.
	f.Add([]byte{0, 0, 0, 0, 3, 0, 1, 0, 6, 0, 2, 0})
	f.Add([]byte{0, 8, 3, 0, 0, 8, 2, 1, 2, 2, 6, 0})
	// A ticket and a Do share a call that panics: both re-raise it.
	f.Add([]byte{1, 0, 0, 0, 2, 2, 6, 0})
	// Forget while a call runs, a new call beside it, one panics.
	f.Add([]byte{0, 16, 1, 16, 4, 16, 0, 16, 2, 2, 5, 0, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var g ctxsync.Group[int, int]
			var cur [fuzzKeys]*groupModelCall // the call a Do would join now
			var running []*groupModelCall     // calls whose fn has not returned
			var all []*groupModelCall
			callOf := map[*pending]*groupModelCall{}
			var calls []*pending
			ids, dos := 0, 0

			// join starts a call for key in the model if none would be
			// joined now, and returns the fn to pass to Group: the new
			// call's, or one that fails the test if it ever runs.
			join := func(k int, first any) func(context.Context) (int, error) {
				if c := cur[k]; c != nil {
					return func(context.Context) (int, error) {
						t.Error("fn ran for a caller that joined a call")
						return 0, nil
					}
				}
				ids++
				c := &groupModelCall{id: ids, key: k, first: first, release: make(chan int), started: make(chan context.Context, 1)}
				cur[k] = c
				running = append(running, c)
				all = append(all, c)
				return func(ctx context.Context) (int, error) {
					c.started <- ctx
					switch <-c.release {
					case fnError:
						return c.id, errFuzzFn
					case fnPanic:
						panic(c.id)
					}
					return c.id, nil
				}
			}
			// leave takes p out of its call, abandoning the call if p was
			// its last caller.
			leave := func(p *pending) {
				c := callOf[p]
				c.callers = removeWaiter(c.callers, p)
				p.finish(opOutput{err: context.Canceled})
				if len(c.callers) == 0 && !c.over {
					c.abandoned = true
					if cur[c.key] == c {
						cur[c.key] = nil
					}
				}
			}
			// release makes call i's fn return as mode says, and delivers
			// to every caller still waiting.
			release := func(i int, mode int) {
				if len(running) == 0 {
					return
				}
				i %= len(running)
				c := running[i]
				running = append(running[:i:i], running[i+1:]...)
				if mode == fnPanic && len(c.callers) == 0 {
					mode = fnValue // nobody would re-raise it: it would crash the test
				}
				want := opOutput{n: c.id}
				switch mode {
				case fnError:
					want.err = errFuzzFn
				case fnPanic:
					want.err = errFuzzPanicked
				}
				for _, p := range c.callers {
					p.finish(want)
				}
				c.callers = nil
				c.over = true
				if cur[c.key] == c {
					cur[c.key] = nil
				}
				c.release <- mode
			}

			step := func() {
				calls = checkPending(t, calls)
				inFlight := 0
				for _, c := range cur {
					if c != nil {
						inFlight++
					}
				}
				require.Equal(t, inFlight, g.InFlight())
				for _, c := range all {
					if c.ctx == nil {
						select {
						case c.ctx = <-c.started:
						default:
							require.Fail(t, "a call was started, but its fn is not running", "call %d", c.id)
						}
						require.Equal(t, c.first, c.ctx.Value(fuzzFirstCaller{}), "fn's context carries the values of the first caller's")
						_, ok := c.ctx.Deadline()
						require.False(t, ok, "fn's context has no deadline")
					}
					switch {
					case c.abandoned:
						require.Equal(t, context.Canceled, c.ctx.Err(), "call %d abandoned", c.id)
						require.Equal(t, ctxsync.ErrAbandoned, context.Cause(c.ctx), "call %d abandoned", c.id)
					case c.over:
						require.Equal(t, context.Canceled, c.ctx.Err(), "fn's context ends once fn has returned (call %d)", c.id)
						require.Equal(t, context.Canceled, context.Cause(c.ctx), "call %d", c.id)
					default:
						require.NoError(t, c.ctx.Err(), "call %d runs for its callers", c.id)
					}
				}
			}

			for len(data) >= 2 {
				op, k, x := data[0]%7, int(data[1]/8)%fuzzKeys, int(data[1]%8)
				data = data[2:]
				switch op {
				case 0: // Do
					dos++
					mark := dos // the value fn's context carries if this Do starts the call
					fn := join(k, mark)
					p := startCall(&calls, 0, func(ctx context.Context) opOutput {
						ctx = context.WithValue(ctx, fuzzFirstCaller{}, mark)
						return fuzzOutcome(func() (int, error) { return g.Do(ctx, k, fn) })
					})
					c := cur[k]
					c.callers = append(c.callers, p)
					callOf[p] = c
				case 1: // DoTicket, waited for in a select as the doc shows
					fn := join(k, nil)
					tk := g.DoTicket(k, fn)
					p := startCall(&calls, 0, func(ctx context.Context) opOutput {
						select {
						case <-tk.Ready():
						case <-ctx.Done():
							if tk.Stop() {
								if err := tk.Err(); err != ctxsync.ErrTicketStopped {
									return opOutput{err: err} // not what the model wants
								}
								return opOutput{err: ctx.Err()}
							}
						}
						return fuzzOutcome(func() (int, error) { return tk.Value(), tk.Err() })
					})
					c := cur[k]
					c.callers = append(c.callers, p)
					callOf[p] = c
				case 2: // fn returns: a value, an error or a panic
					release(int(data0(data)), x%3)
				case 3: // a caller leaves
					if p := cancelPending(calls, int(data0(data))); p != nil {
						leave(p)
					}
				case 4:
					g.Forget(k)
					cur[k] = nil
				case 5: // a done context neither starts nor joins a call
					v, err := g.Do(cancelled(), k, func(context.Context) (int, error) {
						t.Error("fn ran for a Do whose context was done")
						return 1, nil
					})
					require.Equal(t, context.Canceled, err)
					require.Zero(t, v)
				case 6: // nothing: the step's checks alone
				}
				step()
			}
			// Every fn returns, so that nothing is left parked.
			for len(running) > 0 {
				release(0, fnValue)
				step()
			}
		})
	})
}
