// Package etcdsync gives several processes — the replicas of one service,
// jobs on many hosts — the ctxsync primitives whose meaning survives a
// network, coordinated through an etcd cluster. First, what no lease-based
// lock can do: it cannot exclude a process that is paused or cut off, so
// the resource it protects must check the fencing token (below).
//
// It has a Lock and a weighted Semaphore ("the vendor allows 10 concurrent
// requests" when the service runs as 6 replicas; "only one replica runs the
// migration"), an Event ("workers wait until the index is built") and a
// cyclic Barrier ("the 4 shards line up before phase 2"). It is not for hot
// paths: every call is at least one round trip to etcd.
//
// # A lease-based lock cannot exclude a paused process
//
// What a process holds is attached to its Session's etcd
// lease. A process that is paused (a long GC, a stopped VM) or cut off from
// etcd for longer than the lease's TTL loses what it held, and the next
// waiter is granted it, while the first process may still believe it is
// the holder: its Permit's Lost channel closes only when it hears of the
// loss, up to about one TTL later. No lock service can prevent this. What
// prevents the damage is fencing: every grant carries a token that is
// higher than every earlier holder's, and the protected resource refuses a
// write with a token lower than one it has seen:
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
//   - A call whose ctx is already done returns ctx.Err() and sends nothing.
//     A call that fails because its ctx ended returns exactly ctx.Err(),
//     also when etcd reported it as something else; other etcd failures are
//     wrapped, with a message that begins "etcdsync: ".
//   - All or nothing: a call that returns an error leaves nothing behind in
//     etcd. A request whose outcome is unknown (a deadline, a lost
//     connection) may still be applied by the server after the caller gave
//     up; it is written so that it then lands nowhere. Cleanups that etcd
//     cannot be reached for are retried by the session until they succeed
//     or the lease ends.
//   - FIFO: requests on one Lock or Semaphore, from every process, are
//     served in the order etcd committed them. TryLock and TryAcquireN fail
//     while anyone waits, and never leave a key behind.
//   - A process that dies or is cut off for longer than its TTL loses what
//     it held and waited for; those behind it go on, in order.
//   - Misuse (a negative count or size, a nil Session or client, a second
//     Release of a released permit) panics with a message that begins
//     "etcdsync: ".
//
// Each call has a ticket key of its own, attached to the session's lease
// and ordered by the etcd revision that created it; a ticket is granted
// when its weight and those of the tickets ahead of it fit the size, and
// its revision is the permit's fencing token.
package etcdsync
