package ctxsync

import (
	"context"
	"unsafe"

	"github.com/ctxsync/ctxsync/internal/waitq"
)

// SetClaimHook makes f run in every fast-path claim of q's ring, between
// the claim's CAS and its stamp: put is true for a Put's claim and false
// for a Get's or a GetMany's. Set it only before q is shared with other
// goroutines (the field is read without synchronization). It panics if q
// has no ring.
func SetClaimHook[T any](q *Queue[T], f func(put bool)) {
	if q.ring == nil {
		panic("ctxsync: SetClaimHook on a queue without a ring")
	}
	q.ring.claimed = f
}

// UsesRing reports whether q takes the lock-free ring path.
func UsesRing[T any](q *Queue[T]) bool { return q.ring != nil }

// RingAdvanceMatchesNext reports, for q's ring, whether advance(p, k)
// equals k steps of next from p, for every position p of the first three
// laps (with and without the flag) and every k below the capacity.
func RingAdvanceMatchesNext[T any](q *Queue[T]) bool {
	r := q.ring
	for p := uint64(0); p < 3*r.oneLap; p = r.next(p) {
		for _, flag := range []uint64{0, ringSlow} {
			want := p | flag
			for k := uint64(0); k < r.cap; k++ {
				if r.advance(p|flag, k) != want {
					return false
				}
				want = r.next(want)
			}
		}
	}
	return true
}

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

// KeyedShardLayout reports the size of a keyed table's shard, and the
// bytes of its fields (the rest is padding).
func KeyedShardLayout() (size, fields uintptr) {
	var sh keyedShard[string, Lock]
	return unsafe.Sizeof(sh), unsafe.Offsetof(sh.nfree) + unsafe.Sizeof(sh.nfree)
}
