package etcdsync_test

import (
	"context"
	"testing"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/stretchr/testify/assert"
)

// TestZeroValuesPanic: a zero value of any type is refused loudly, with an
// etcdsync: message naming its constructor, never a nil dereference.
func TestZeroValuesPanic(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, msg string
		call      func()
	}{
		{"Lock.Lock", "etcdsync: zero Lock; make one with NewLock", func() { _, _ = new(etcdsync.Lock).Lock(ctx) }},
		{"Lock.TryLock", "etcdsync: zero Lock; make one with NewLock", func() { _, _ = new(etcdsync.Lock).TryLock(ctx) }},
		{"Lock.Locked", "etcdsync: zero Lock; make one with NewLock", func() { _, _ = new(etcdsync.Lock).Locked(ctx) }},
		{"Lock.Waiting", "etcdsync: zero Lock; make one with NewLock", func() { _, _ = new(etcdsync.Lock).Waiting(ctx) }},
		{"Semaphore.AcquireN", "etcdsync: zero Semaphore; make one with NewSemaphore", func() { _, _ = new(etcdsync.Semaphore).AcquireN(ctx, 1) }},
		{"Semaphore.TryAcquireN", "etcdsync: zero Semaphore; make one with NewSemaphore", func() { _, _ = new(etcdsync.Semaphore).TryAcquireN(ctx, 1) }},
		{"Semaphore.Available", "etcdsync: zero Semaphore; make one with NewSemaphore", func() { _, _ = new(etcdsync.Semaphore).Available(ctx) }},
		{"Semaphore.Size", "etcdsync: zero Semaphore; make one with NewSemaphore", func() { _ = new(etcdsync.Semaphore).Size() }},
		{"Permit.Release", "etcdsync: zero Permit; permits come from Lock and Semaphore calls", func() { _ = new(etcdsync.Permit).Release(ctx) }},
		{"Permit.Guard", "etcdsync: zero Permit; permits come from Lock and Semaphore calls", func() { _ = new(etcdsync.Permit).Guard() }},
		{"Permit.Lost", "etcdsync: zero Permit; permits come from Lock and Semaphore calls", func() { _ = new(etcdsync.Permit).Lost() }},
		{"Session.Close", "etcdsync: zero Session; make one with NewSession", func() { _ = new(etcdsync.Session).Close(ctx) }},
		{"Session.Done", "etcdsync: zero Session; make one with NewSession", func() { _ = new(etcdsync.Session).Done() }},
		{"Lock of a zero Session", "etcdsync: zero Session; make one with NewSession", func() { _, _ = etcdsync.NewLock(new(etcdsync.Session), "x").Lock(ctx) }},
		{"Event.Wait", "etcdsync: zero Event; make one with NewEvent", func() { _ = new(etcdsync.Event).Wait(ctx) }},
		{"Event.Set", "etcdsync: zero Event; make one with NewEvent", func() { _ = new(etcdsync.Event).Set(ctx) }},
		{"Barrier.Wait", "etcdsync: zero Barrier; make one with NewBarrier", func() { _, _ = new(etcdsync.Barrier).Wait(ctx) }},
		{"Barrier.Parties", "etcdsync: zero Barrier; make one with NewBarrier", func() { _ = new(etcdsync.Barrier).Parties() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.PanicsWithValue(t, c.msg, c.call)
		})
	}
}
