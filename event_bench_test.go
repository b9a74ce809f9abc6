package ctxsync_test

import (
	"context"
	"testing"

	"github.com/ctxsync/ctxsync"
)

// One goroutine waits, another wakes it: Event.Set against closing a
// channel.
func BenchmarkEventWake(b *testing.B) {
	ctx := context.Background()
	b.Run("ctxsync", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e ctxsync.Event
			done := make(chan struct{})
			go func() { _ = e.Wait(ctx); close(done) }()
			e.Set()
			<-done
		}
	})
	b.Run("chan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch := make(chan struct{})
			done := make(chan struct{})
			go func() { <-ch; close(done) }()
			close(ch)
			<-done
		}
	})
}
