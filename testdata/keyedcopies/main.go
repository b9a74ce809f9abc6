// Package main copies a KeyedLock, a KeyedSemaphore, a Group and a
// GroupTicket; go vet must report each copy (see TestVetReportsKeyedCopies).
package main

import (
	"context"

	"github.com/ctxsync/ctxsync"
)

func main() {
	var m ctxsync.KeyedLock[string]
	s := ctxsync.NewKeyedSemaphore[string](1)
	var g ctxsync.Group[string, int]
	t := g.DoTicket("k", func(context.Context) (int, error) { return 0, nil })
	use(m, *s, g, *t)
}

func use(...any) {}
