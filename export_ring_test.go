package ctxsync

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
