// Package etcdsync gives several processes — the replicas of one service,
// jobs on many hosts — the ctxsync primitives whose meaning survives a
// network, coordinated through an etcd cluster. First, what no lease-based
// lock can do: it cannot exclude a process that is paused, so the resource
// it protects must check the fencing token (below).
//
// It has a Lock and a weighted Semaphore ("the vendor allows 10 concurrent
// requests" when the service runs as 6 replicas; "only one replica runs the
// migration"), an Event ("workers wait until the index is built") and a
// cyclic Barrier ("the 4 shards line up before phase 2"). It is not for hot
// paths: every call is at least one round trip to etcd.
//
// # A lease-based lock cannot exclude a paused process
//
// What a process holds is attached to its Session's etcd lease. A process
// that is paused (a long GC, a stopped VM) or cut off from etcd for longer
// than the lease's TTL loses what it held, and the next waiter is granted
// it. The two are not alike:
//
//   - A process that is cut off learns of its loss before it happens (D9):
//     its session gives up a margin before the lease can end on the
//     server, so its permits' Lost channels close, and their Contexts are
//     cancelled, before anyone else can be granted what they held, as long
//     as its clock runs at the server's rate.
//   - A process that is paused learns nothing in time: when it runs again
//     it may still believe it holds a permit that another process holds
//     now. No lock service can prevent this.
//
// What prevents the damage of a pause is fencing (D5): every grant carries
// a token that is higher than every earlier holder's, and the protected
// resource refuses a write with a token lower than one it has seen:
//
//	p, err := lock.Lock(ctx)
//	if err != nil {
//		return err
//	}
//	defer p.Release(context.Background())
//	// The storage compares the token and refuses stale writers.
//	return storage.Write(ctx, p.Token(), data)
//
// When the protected state lives in etcd itself, make the write
// conditional on the permit still being held, in the same transaction:
//
//	resp, err := cli.Txn(ctx).If(p.Guard()).Then(clientv3.OpPut(key, value)).Commit()
//	if err == nil && !resp.Succeeded {
//		// the permit was lost: nothing was written
//	}
//
// # Guarantees
//
// Every type is safe for use by any number of goroutines, and all of them
// keep these rules. Tests and comments cite them by number.
//
//   - D1, done context: an acquiring call (Lock, TryLock, Acquire,
//     AcquireN, TryAcquireN, Barrier.Wait) whose ctx is already done
//     returns ctx.Err() and sends nothing to etcd.
//   - D2, exact error: a call that fails because its ctx ended returns
//     exactly ctx.Err(), also when etcd reported it as something else; a
//     deadline that has passed counts as ended. Other etcd failures are
//     wrapped (errors.Is and errors.As reach the etcd error), with a
//     message that begins "etcdsync: ".
//   - D3, all or nothing: a call that returns an error leaves nothing
//     behind in etcd. A request whose outcome is unknown (a deadline, a lost
//     connection) may still be applied by the server after the caller gave
//     up; it is written so that it then lands nowhere. Cleanups that etcd
//     cannot be reached for, and the delete of a Release that failed, are
//     retried by the session in the background until they succeed or the
//     lease ends. No permit is granted twice, and none is lost for longer
//     than one TTL.
//   - D4, FIFO, no barging: requests on one Lock or Semaphore, from every
//     process, are served in the order etcd committed them; a weighted
//     request at the head holds back smaller ones behind it. TryLock and
//     TryAcquireN fail while anyone waits, and never leave a key behind.
//   - D5, fencing: every grant carries a token (Permit.Token, the etcd
//     revision of its ticket): unique, and for a Lock strictly increasing
//     from one holder to the next, also across a crash. Permit.Guard is an
//     etcd comparison that holds exactly while the permit is held.
//   - D6, crash and partition: a process that dies, or is cut off for
//     longer than its TTL, loses what it held and waited for; those behind
//     it go on, in order. Its permits' Lost channels close, their Release
//     returns ErrSessionLost, their Guard fails, and its blocked calls
//     return ErrSessionLost.
//   - D7, misuse panics: a negative count or size, parties < 1, a nil
//     Session or client, a Release of a permit already released
//     successfully, or a zero value panics at once with a message that
//     begins "etcdsync: ".
//   - D8, which outcome wins: misuse first; then a reason that fails for
//     good and that the object knows without asking etcd
//     (ctxsync.ErrExceedsBound, ctxsync.ErrBrokenBarrier, ErrSessionLost,
//     ErrSizeMismatch); then D1.
//   - D9, loss is told before it can happen: Session.Expiry is the send
//     time of the latest keep-alive that etcd acknowledged plus the TTL it
//     granted, and the lease cannot end on the server before it. If no
//     newer acknowledgement arrives, the session gives up a margin before
//     Expiry (a tenth of the TTL, at least 500 ms): it ends as if lost and
//     asks etcd to revoke the lease, best effort. This covers a cut, not a
//     pause (see above), and Lost is late only when the loss comes from
//     outside: a revoke, or an operator deleting keys.
//
// The in-process rules R5, R7, R8 and R9 of ctxsync do not hold here: the
// etcd client runs goroutines (none of this package's outlive
// Session.Close), every type needs a Session, every call is an RPC, and
// network I/O is not durably blocking in a synctest bubble.
//
// Each call has a ticket key of its own, attached to the session's lease
// and ordered by the etcd revision that created it; a ticket is granted
// when its weight and those of the tickets ahead of it fit the size, and
// its revision is the permit's fencing token.
package etcdsync
