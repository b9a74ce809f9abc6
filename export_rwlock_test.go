package ctxsync

import "context"

// StallRLock makes the fast path's add of an RLock and stops there, as a
// goroutine descheduled right after it would, so that tests can change the
// lock before the call goes on. It returns the rest of the call.
func (rw *RWLock) StallRLock(ctx context.Context) (resume func() error) {
	s := rw.state.Add(rwReader)
	if s&rwFlags == 0 {
		return func() error { return nil }
	}
	return func() error { return rw.rLockSlow(ctx, s) }
}

// StallRUnlock does the same for RUnlock.
func (rw *RWLock) StallRUnlock() (resume func()) {
	s := rw.state.Add(-rwReader)
	if s&(rwFlags|rwNegative) == 0 {
		return func() {}
	}
	return func() { rw.rUnlockSlow(s) }
}
