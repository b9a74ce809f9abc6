//go:build stress

package ctxsync

import "sync/atomic"

// preemptHook is what preempt runs in the large mode: the tests set it
// (a random yield, a schedule read from a fuzz input, or a hook that acts
// at one point). nil runs nothing.
var preemptHook atomic.Pointer[func(preemptPoint)]

func preempt(p preemptPoint) {
	if h := preemptHook.Load(); h != nil {
		(*h)(p)
	}
}
