package ctxsync_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ctxsync/ctxsync"
)

// groupPeer is a deduplicated call per key as a user would otherwise make
// it: ours, or x/sync/singleflight, which takes no context.
type groupPeer struct {
	name string
	do   func(ctx context.Context, key string, fn func(context.Context) (int, error)) (int, error)
}

func groupPeers() []groupPeer {
	var g ctxsync.Group[string, int]
	var sf singleflight.Group
	return []groupPeer{
		{"ctxsync", g.Do},
		{"singleflight", func(ctx context.Context, key string, fn func(context.Context) (int, error)) (int, error) {
			v, err, _ := sf.Do(key, func() (any, error) { return fn(ctx) })
			n, _ := v.(int)
			return n, err
		}},
		// The floor under ours: no deduplication at all, only what
		// API.md's rule costs any Group, fn in a goroutine of its own
		// that the caller waits for.
		{"goroutine", func(ctx context.Context, key string, fn func(context.Context) (int, error)) (int, error) {
			var v int
			var err error
			done := make(chan struct{})
			go func() {
				v, err = fn(ctx)
				close(done)
			}()
			<-done
			return v, err
		}},
		// The same, yielding to fn first and parking only if it has not
		// returned by then, as ours does: the lower floor when fn is
		// quick.
		{"goroutine-yield", func(ctx context.Context, key string, fn func(context.Context) (int, error)) (int, error) {
			var v int
			var err error
			var returned atomic.Bool
			done := make(chan struct{})
			go func() {
				v, err = fn(ctx)
				returned.Store(true)
				close(done)
			}()
			runtime.Gosched()
			if !returned.Load() {
				<-done
			}
			return v, err
		}},
	}
}

// A fresh call each time: nobody else asks for the key, so each Do starts
// a call and waits for it. Ours starts a goroutine for fn, which
// singleflight does not: that goroutine, and the two context layers fn
// runs under, are the floor.
func BenchmarkGroupFresh(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fn := func(context.Context) (int, error) { return 1, nil }
	for _, p := range groupPeers() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.do(ctx, "k", fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// spinFetch is a fetch that takes a few microseconds of CPU, without
// parking, as a call to a fast cache in the same process would.
func spinFetch(context.Context) (int, error) {
	start := time.Now()
	n := 0
	for time.Since(start) < 3*time.Microsecond {
		n++
	}
	return n, nil
}

// fetchCounter counts the calls of a Group benchmark and the runs of its
// fetch, and reports their ratio as "fetches/call": how often a caller
// found no call in flight to join.
type fetchCounter struct{ calls, fetches atomic.Int64 }

func (c *fetchCounter) wrap(fetch func(context.Context) (int, error)) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		c.fetches.Add(1)
		return fetch(ctx)
	}
}

func (c *fetchCounter) report(b *testing.B) {
	if calls := c.calls.Load(); calls > 0 {
		b.ReportMetric(float64(c.fetches.Load())/float64(calls), "fetches/call")
	}
}

// Four goroutines ask for four hot keys whose fetch takes a few
// microseconds of CPU, each picking its next key at random, as independent
// clients do. The time is per caller. This is the row of the 4-hot-keys
// goal (BENCHMARKS.md). Callers of ours find a call to join more often
// than singleflight's (fetches/call): a caller of ours lets its P go
// while fn runs, so more callers can ask while calls are in flight.
func BenchmarkGroupHot4Random(b *testing.B) {
	benchGroupHot4(b, spinFetch, func(*atomic.Uint32) uint32 { return rand.Uint32N(4) })
}

// As BenchmarkGroupHot4Random, but the four goroutines take the keys in
// turn, through one shared counter: the two goroutines running at once
// on two cores then almost never ask for the same key (fetches/call near
// 1 for both peers), so this is a fresh call plus the fetch, the case
// where deduplication cannot help.
func BenchmarkGroupHot4(b *testing.B) {
	benchGroupHot4(b, spinFetch, inTurn)
}

// inTurn picks the next of four keys in turn.
func inTurn(n *atomic.Uint32) uint32 { return n.Add(1) & 3 }

func benchGroupHot4(b *testing.B, fetch func(context.Context) (int, error), pick func(*atomic.Uint32) uint32) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := []string{"a", "b", "c", "d"}
	for _, p := range groupPeers() {
		b.Run(p.name, func(b *testing.B) {
			var n atomic.Uint32
			var count fetchCounter
			fetch := count.wrap(fetch)
			runConcurrently(b, 4, func() {
				count.calls.Add(1)
				if _, err := p.do(ctx, keys[pick(&n)], fetch); err != nil {
					b.Error(err)
				}
			})
			count.report(b)
		})
	}
}

// sleepFetch is a fetch that waits a few microseconds without using the
// CPU, as a call to a fast service over the network would (time.Sleep may
// wait longer than asked: the timer's resolution is the floor).
func sleepFetch(context.Context) (int, error) {
	time.Sleep(3 * time.Microsecond)
	return 1, nil
}

// As BenchmarkGroupHot4, with a fetch that parks: callers can join while
// it waits.
func BenchmarkGroupHot4Parked(b *testing.B) {
	benchGroupHot4(b, sleepFetch, inTurn)
}

// Joining a call in flight: four goroutines ask for one key whose fetch
// takes a few microseconds.
func BenchmarkGroupJoin4(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, p := range groupPeers() {
		b.Run(p.name, func(b *testing.B) {
			var count fetchCounter
			fetch := count.wrap(spinFetch)
			runConcurrently(b, 4, func() {
				count.calls.Add(1)
				if _, err := p.do(ctx, "k", fetch); err != nil {
					b.Error(err)
				}
			})
			count.report(b)
		})
	}
}
