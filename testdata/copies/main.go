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
	t := l.LockTicket()
	var g ctxsync.GetTicket[int]
	use(l, e, c, q, *s, *b, *br, *t, g)
}

func use(...any) {}
