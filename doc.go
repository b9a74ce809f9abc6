// Package ctxsync brings Python asyncio's synchronization primitives to Go,
// with every blocking call honouring a context.Context: Lock, Semaphore,
// BoundedSemaphore, Event, Condition, Queue (FIFO, LIFO and priority, with
// Join/TaskDone and Shutdown) and Barrier.
//
// Use it where sync.Mutex and sync.Cond cannot be cancelled, where
// golang.org/x/sync/semaphore is not enough, or where a channel cannot say
// what you need: join, shutdown, priority or strict fairness.
//
// # Guarantees
//
// Every type is safe for use by any number of goroutines, and all of them
// keep these rules:
//
//   - A call that would acquire something (Lock, Acquire, AcquireN, Put,
//     Get, Barrier.Wait) fails with ctx.Err() when ctx is already done, even
//     if it could have succeeded at once. A call that only observes
//     (Event.Wait, Queue.Join, Condition.WaitFor whose predicate holds)
//     returns nil at once when what it waits for already holds.
//   - A call ended by its context returns exactly ctx.Err(), so errors.Is
//     with context.Canceled and context.DeadlineExceeded works.
//   - All or nothing: a call that returns an error had no effect, and one
//     that returns nil had its whole effect. When a context ends at the very
//     moment of a hand-off, the hand-off is either kept (nil) or passed on
//     to the next waiter (the error): never lost, never doubled.
//   - FIFO fairness: blocked callers of one kind are served in the order
//     they started waiting, and newcomers, Try calls included, never
//     overtake them.
//   - No goroutines: a blocked call waits in a select on a wake-up channel
//     of its own and on ctx.Done(); the package starts no goroutine.
//   - Misuse, such as unlocking an unlocked Lock, panics at once with a
//     message that begins "ctxsync: " and changes nothing.
//   - Calls that do not block allocate nothing.
//   - A goroutine blocked in a ctxsync call is durably blocked inside a
//     testing/synctest bubble, so code built on ctxsync can be tested
//     deterministically.
//
// No value of these types may be copied after first use; go vet reports
// copies.
package ctxsync
