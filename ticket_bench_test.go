package ctxsync_test

import (
	"context"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// What a ticket costs beside the blocking call it stands in for: one
// record and one channel, granted at once or not.

func BenchmarkLockTicketUncontended(b *testing.B) {
	var l ctxsync.Lock
	b.Run("LockTicket", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			<-l.LockTicket().Ready()
			l.Unlock()
		}
	})
	b.Run("Lock", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_ = l.Lock(ctx)
			l.Unlock()
		}
	})
}

// Four goroutines take the lock through a ticket in a select with their
// context, as the README's pattern does.
func BenchmarkLockTicketContended(b *testing.B) {
	var l ctxsync.Lock
	ctx := context.Background()
	runConcurrently(b, 4, func() {
		t := l.LockTicket()
		select {
		case <-t.Ready():
			l.Unlock()
		case <-ctx.Done():
			if !t.Stop() && t.Err() == nil {
				l.Unlock()
			}
		}
	})
}

// A ticket made and stopped while it waits: the cost of giving up.
func BenchmarkAcquireTicketStop(b *testing.B) {
	s := ctxsync.NewSemaphore(0)
	b.ReportAllocs()
	for b.Loop() {
		if !s.AcquireTicket(1).Stop() {
			b.Fatal("a ticket on an empty semaphore must stop")
		}
	}
}

func BenchmarkQueueGetTicket(b *testing.B) {
	var q ctxsync.Queue[int]
	b.ReportAllocs()
	for b.Loop() {
		_ = q.TryPut(1)
		_ = q.GetTicket().Item()
		q.TaskDone()
	}
}
