package ctxsync

import "github.com/ctxsync/ctxsync/internal/waitq"

// HoldParked makes every call that parks stop before it waits, until hold
// is closed: the test can then grant it, end its context, or both, before
// it looks, whatever the scheduler would do. A held call is durably
// blocked in a synctest bubble when hold is a channel of that bubble. Not
// for tests that run in parallel: the hook is global.
func HoldParked(hold <-chan struct{}) {
	waitq.SetParkHook(func() { <-hold })
}

// ReleaseParked removes the hook that HoldParked set.
func ReleaseParked() { waitq.SetParkHook(nil) }
