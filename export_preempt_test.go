//go:build stress

package ctxsync

// PreemptPoint is a step of a lock-free protocol where the large mode's
// hook runs.
type PreemptPoint = preemptPoint

// The points that tests aim at.
const (
	PreemptRingServe = ptRingServe
	NumPreemptPoints = numPreemptPoints
)

// SetPreemptHook makes f run at every preemption point, and returns what
// was set before, for the caller to put back. nil runs nothing.
func SetPreemptHook(f func(PreemptPoint)) (previous func(PreemptPoint)) {
	var old *func(preemptPoint)
	if f == nil {
		old = preemptHook.Swap(nil)
	} else {
		old = preemptHook.Swap(&f)
	}
	if old == nil {
		return nil
	}
	return *old
}
