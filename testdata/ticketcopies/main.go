// Package main copies a Ticket and a GetTicket; go vet must report each
// copy (see TestVetReportsTicketCopies).
package main

import "github.com/ctxsync/ctxsync"

func main() {
	var l ctxsync.Lock
	t := l.LockTicket()
	var q ctxsync.Queue[int]
	g := q.GetTicket()
	use(*t, *g)
}

func use(...any) {}
