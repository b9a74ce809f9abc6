package ctxsync

// preemptPoint names one atomic step of a lock-free protocol (the ring's
// claims and stamps, the flag raised and lowered in a state word) at which
// the large mode may yield or pause the goroutine taking it, to shake out
// interleavings that a quiet machine never shows. In normal builds preempt
// is an empty function and every call to it is inlined away
// (preempt_normal.go); with -tags stress it calls the hook that the tests
// set (preempt_stress.go).
type preemptPoint uint8

const (
	ptPushClaim      preemptPoint = iota // Put: slot seen free, before the CAS on tail
	ptPushClaimed                        // Put: tail claimed, item not yet written
	ptPushStamped                        // Put: stamp written, flag not yet looked at
	ptPopClaim                           // Get: item seen written, before the CAS on head
	ptPopClaimed                         // Get: head claimed, slot not yet freed
	ptPopStamped                         // Get: slot freed, flag not yet looked at
	ptPopManyClaim                       // GetMany: run seen, before the CAS on head
	ptPopManyStamp                       // GetMany: head claimed, between two slots' stamps
	ptPopManyStamped                     // GetMany: every slot freed, flag not yet looked at
	ptRingRaise                          // flag up in tail, not yet in head
	ptRingLower                          // flag down in tail, not yet in head
	ptRingLocked                         // a push or pop under q.mu: position moved, stamp not yet written
	ptRingServe                          // serve: a parked Get and Put chosen, hand-off not yet made
	ptLockState                          // Lock: before or after a CAS or store of the state word
	ptSemaState                          // Semaphore: before or after a CAS or store of the state word
	ptRWState                            // RWLock: before or after a CAS or store of the state word
	numPreemptPoints
)

var preemptPointNames = [numPreemptPoints]string{
	"PushClaim", "PushClaimed", "PushStamped",
	"PopClaim", "PopClaimed", "PopStamped",
	"PopManyClaim", "PopManyStamp", "PopManyStamped",
	"RingRaise", "RingLower", "RingLocked", "RingServe",
	"LockState", "SemaState", "RWState",
}

func (p preemptPoint) String() string {
	if p < numPreemptPoints {
		return preemptPointNames[p]
	}
	return "preemptPoint(?)"
}
