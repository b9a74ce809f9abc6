//go:build !ringbugs

package ctxsync_test

// strictRingTry: see requireLinearizableQueue. Off in the normal suite.
const strictRingTry = false
