//go:build !stress

package ctxsync

// preempt does nothing outside the large mode, and is inlined away.
func preempt(preemptPoint) {}
