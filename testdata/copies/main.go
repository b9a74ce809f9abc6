// Package main copies every ctxsync type after use; go vet must report each
// copy (see TestVetReportsCopies).
package main

import "github.com/ctxsync/ctxsync"

func main() {
	var l ctxsync.Lock
	var e ctxsync.Event
	var c ctxsync.Condition
	var q ctxsync.Queue[int]
	s := ctxsync.NewSemaphore(1)
	b := ctxsync.NewBoundedSemaphore(1)
	br := ctxsync.NewBarrier(1)
	use(l, e, c, q, *s, *b, *br)
}

func use(...any) {}
