// Package scenarios holds the jobs users bring to ctxsync, from the asyncio
// articles the library follows, as functions that run a scenario, narrate
// it to a writer and return an error when its outcome is wrong. Each has a
// program of its own under examples/, and examples/tour runs them all.
package scenarios

import (
	"fmt"
	"io"
)

// Scenario is one runnable story.
type Scenario struct {
	Name string
	Run  func(w io.Writer) error
}

// All lists every scenario in the order the tour tells them.
var All = []Scenario{
	{"cache stampede (Lock)", Stampede},
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
