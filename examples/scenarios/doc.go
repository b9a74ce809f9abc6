// Package scenarios holds the jobs users bring to ctxsync, from the asyncio
// articles the library follows, as functions that run a scenario, narrate
// it to a writer and return an error when its outcome is wrong. Each has a
// program of its own under examples/, and examples/tour runs them all.
package scenarios

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Scenario is one runnable story.
type Scenario struct {
	Name string
	Run  func(w io.Writer) error
}

// All lists every scenario in the order the tour tells them.
var All = []Scenario{
	{"cache stampede (Lock, and per key with Group)", Stampede},
	{"a vendor API that allows 10 concurrent requests (Semaphore)", RateLimit},
	{"over-release (Semaphore and BoundedSemaphore)", OverRelease},
	{"upload finished and an event bus (Event)", Upload},
	{"database connection initialization (Condition)", DatabaseInit},
	{"producer/consumer pipeline, priority jobs, LIFO (Queue)", Pipeline},
	{"phases (Barrier)", Phases},
	{"the shared-counter race (Lock)", Counter},
}

// expect returns an error naming what was wrong when got differs from want.
func expect[T comparable](what string, got, want T) error {
	if got != want {
		return fmt.Errorf("%s: got %v, want %v", what, got, want)
	}
	return nil
}

// report narrates a scenario to w. It is the errWriter of "errors are
// values": it keeps the first write error and writes nothing after it, so
// that a scenario checks once, on its way out, that its story got out,
// instead of after every line. Goroutines of a scenario may share it.
type report struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func newReport(w io.Writer) *report { return &report{w: w} }

func (r *report) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.w, format, args...)
	}
}

func (r *report) println(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		_, r.err = fmt.Fprintln(r.w, args...)
	}
}

// check adds the first write error, if any, to the scenario's result, so
// that a story that did not get out fails even when its outcome is right.
func (r *report) check(result *error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		*result = errors.Join(*result, fmt.Errorf("writing the report: %w", r.err))
	}
}
