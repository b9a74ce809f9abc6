// Package ctxsync brings Python asyncio's synchronization primitives to Go,
// with every blocking call honouring a context.Context: Lock, Semaphore,
// BoundedSemaphore, Event, Condition, Queue (FIFO, LIFO and priority, with
// Join/TaskDone and Shutdown) and Barrier; and beyond asyncio, RWLock, a
// reader/writer lock with one FIFO line for readers and writers.
//
// Use it where sync.Mutex and sync.Cond cannot be cancelled, where
// golang.org/x/sync/semaphore is not enough, or where a channel cannot say
// what you need: join, shutdown, priority or strict fairness.
//
// # Guarantees
//
// Every type is safe for use by any number of goroutines, and all of them
// keep these rules. Tests and comments cite them by number.
//
//   - R1, done context: a call that would acquire something (Lock,
//     Acquire, AcquireN, Put, Get, GetMany, Barrier.Wait) fails with
//     ctx.Err() and changes nothing when ctx is already done, even if it
//     could have succeeded at once. A call that only observes (Event.Wait,
//     Queue.Join, Condition.WaitFor whose predicate holds) returns nil at
//     once when what it waits for already holds, whatever the context.
//   - R2, cancellation error: a call ended by its context returns exactly
//     ctx.Err(), so errors.Is with context.Canceled and
//     context.DeadlineExceeded works.
//   - R3, all or nothing: a call that returns an error had no effect, and
//     one that returns nil had its whole effect. When a context ends at the
//     very moment of a hand-off, the hand-off is either kept (nil) or passed
//     on to the next waiter (the error): never lost, never doubled.
//   - R4, FIFO fairness: blocked callers of one kind are served in the
//     order they started waiting, and newcomers, Try calls included, never
//     overtake them. A weighted request at the head of a Semaphore's line
//     holds back smaller ones behind it.
//   - R5, no goroutines: a blocked call waits in a select on a wake-up
//     channel of its own and on ctx.Done(); the package starts no
//     goroutine, except the one that runs a Group call's function.
//   - R6, misuse panics: programming errors, such as unlocking an unlocked
//     Lock, over-releasing a BoundedSemaphore or using a zero Barrier,
//     panic at once with a message that begins "ctxsync: " and change
//     nothing.
//   - R7, values: Lock, RWLock, Event, Condition, KeyedLock and Group are
//     ready to use as zero values (a zero Condition uses a Lock of its
//     own), a zero Queue is an unbounded FIFO queue, a zero Semaphore has
//     no permits until Release gives some, and a zero BoundedSemaphore is
//     bounded at 0; every method of a zero Barrier or KeyedSemaphore
//     panics with a message naming its constructor. No value may be copied
//     after first use; go vet reports copies.
//   - R8, cost: a call that does not block allocates nothing, except the
//     channel of a new round that Event.Done makes and the slice that
//     Queue.ShutdownNow returns. A call that blocks allocates its wake-up
//     channel; its waiter record is recycled.
//   - R9, testable: a goroutine blocked in a ctxsync call is durably
//     blocked inside a testing/synctest bubble, so code built on ctxsync can
//     be tested deterministically. No wake-up channel is reused across
//     calls, so none leaves its bubble.
//   - R10, which outcome wins: a misuse panic comes first; then a reason in
//     the object's own state that makes the call fail for good
//     (ErrQueueShutDown, ErrBrokenBarrier, ErrExceedsBound), in preference
//     to ctx.Err(); then R1. A Get or GetMany on a shut-down queue that
//     still holds items can still succeed, so it follows R1.
//
// # Waiting in a select
//
// A ticket is a place in a Lock's, a semaphore's or a Queue's line that the
// caller waits for in a select of its own, next to channels, timers and
// ctx.Done(): Lock.LockTicket, Semaphore.AcquireTicket,
// BoundedSemaphore.AcquireTicket, Queue.PutTicket and Queue.GetTicket. It
// stands in the same FIFO line as the blocking calls of its kind, and its
// Stop works like time.Timer's: when it returns false and Err is nil, the
// caller holds what was granted.
//
//	if !t.Stop() && t.Err() == nil {
//		release() // granted while we stopped waiting
//	}
//
// A ticket has no context, so R1 does not apply to it; making one allocates
// its record and its channel, both made by the calling goroutine (R8, R9).
//
// # Per key
//
// KeyedLock and KeyedSemaphore give each key its own Lock or
// BoundedSemaphore, with every rule above, for keys that cannot be listed
// in advance ("lock this user's row", "at most 2 requests per host"); a
// key takes memory only while it is held or waited for. Group runs one call
// of a function per key for all the callers that ask for that key while it
// runs, as golang.org/x/sync/singleflight does, but each caller can leave
// on its own context, and the call is cancelled (cause ErrAbandoned) only
// once every caller has left.
package ctxsync
