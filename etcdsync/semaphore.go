package etcdsync

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/ctxsync/ctxsync"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Semaphore is a weighted semaphore shared by every process that makes a
// Semaphore of the same name (under the same prefix): "the vendor allows 10
// concurrent requests" across every replica of a service. Requests in all
// processes are served whole, in the order etcd committed them; a weighted
// request at the head that does not fit yet holds back the smaller ones
// behind it, so it cannot starve. When the context of a waiting request
// ends, the request withdraws and returns exactly ctx.Err().
//
// Its size lives in etcd: the first process to make the semaphore fixes it,
// and SetSize changes it for every process. Each process follows the
// semaphore with one etcd watch, shared by all its calls and its Semaphore
// values of that name, from NewSemaphore until no value of it is in use
// any more.
//
// Unlike ctxsync.Semaphore it cannot be released above its size: permits
// belong to their holders, so that a crash gives them back.
//
// Within one process, a Release that returned nil happens before the
// acquiring call that the release lets in returns; across processes, etcd
// orders what the holders write to it the same way.
//
// A Semaphore value is safe for use by any number of goroutines and may be
// copied (it is a handle). Make it with NewSemaphore; a zero Semaphore
// panics on first use.
type Semaphore struct {
	l *line
}

func (m *Semaphore) line() *line {
	if m.l == nil {
		panic("etcdsync: zero Semaphore; make one with NewSemaphore")
	}
	return m.l
}

// NewSemaphore returns the Semaphore called name, with size permits. The
// first process to make name fixes its size in etcd (for good: the size
// outlives every session, until SetSize changes it); making it with a size
// other than the one in force returns ErrSizeMismatch. It returns once the
// process follows the semaphore, so that Size reports what others set
// from then on. A negative size or a nil Session panics.
func NewSemaphore(ctx context.Context, s *Session, name string, size int) (*Semaphore, error) {
	if s == nil {
		panic("etcdsync: NewSemaphore with a nil Session")
	}
	if size < 0 {
		panic("etcdsync: negative semaphore size")
	}
	if err := s.alive(); err != nil {
		return nil, err
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	l := newLine(s, "sem", "semaphore", name, size)
	m := &Semaphore{l: l}
	rctx, stop := s.bind(ctx)
	defer stop()
	resp, err := s.cli.Txn(rctx).If(absent(l.sizeKey)).
		Then(clientv3.OpPut(l.sizeKey, sizeValue(size, 0))).
		Else(clientv3.OpGet(l.sizeKey)).Commit()
	if err != nil {
		// A put whose outcome is unknown is harmless here: it can only
		// write the same size, and only if none was there.
		return nil, s.rpcError(ctx, l.op("make"), err)
	}
	seen := resp.Header.Revision // the revision of the size in force
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) != 1 {
			return nil, fmt.Errorf("%w: semaphore %q", ErrSizeMismatch, name)
		}
		if n, _, ok := parseSize(kvs[0].Value); !ok || n != size {
			return nil, fmt.Errorf("%w: semaphore %q", ErrSizeMismatch, name)
		}
		seen = kvs[0].ModRevision
	}
	f, v, err := l.follow()
	if err != nil {
		return nil, err
	}
	if err := l.caughtUp(ctx, f, v, seen); err != nil {
		f.done()
		if errors.Is(err, ErrSessionLost) {
			return nil, err
		}
		return nil, ctxErr(ctx)
	}
	// The process follows the semaphore while some value of it is in
	// use: the watch goes once m is garbage.
	runtime.AddCleanup(m, (*feed).done, f)
	return m, nil
}

// Acquire is AcquireN(ctx, 1).
func (m *Semaphore) Acquire(ctx context.Context) (*Permit, error) { return m.AcquireN(ctx, 1) }

// TryAcquire is TryAcquireN(ctx, 1).
func (m *Semaphore) TryAcquire(ctx context.Context) (*Permit, error) { return m.TryAcquireN(ctx, 1) }

// AcquireN waits until n permits are granted together, and returns their
// Permit. n above the size as this process last saw it can never succeed:
// it returns ctxsync.ErrExceedsBound at once, without asking etcd; a
// request that waits when SetSize lowers the size below n returns it too.
// AcquireN(ctx, 0) succeeds at once unless others wait. If ctx is done
// first, it withdraws its request and returns exactly ctx.Err(); if the
// grant came in the same moment, the permits pass on. It returns
// ErrSessionLost if the session ends first. A negative n panics.
func (m *Semaphore) AcquireN(ctx context.Context, n int) (*Permit, error) {
	if err := m.check(n); err != nil {
		return nil, err
	}
	return m.l.acquire(ctx, n)
}

// TryAcquireN takes n permits if they are free and nobody waits, and
// otherwise returns ErrWouldBlock without leaving anything in etcd; n above
// the size returns ctxsync.ErrExceedsBound. ctx bounds the round trips.
func (m *Semaphore) TryAcquireN(ctx context.Context, n int) (*Permit, error) {
	if err := m.check(n); err != nil {
		return nil, err
	}
	return m.l.tryAcquire(ctx, n)
}

func (m *Semaphore) check(n int) error {
	m.line()
	if n < 0 {
		panic("etcdsync: negative permit count")
	}
	if n > int(m.l.size.Load()) {
		return ctxsync.ErrExceedsBound
	}
	return nil
}

// Available reports the size minus the permits granted now, or 0 while
// holders hold more than a lowered size.
func (m *Semaphore) Available(ctx context.Context) (int, error) {
	t, err := m.line().read(ctx)
	if err != nil {
		return 0, err
	}
	return max(0, t.size-t.granted), nil
}

// Waiting reports how many requests are in line, not yet granted. Holders
// above a lowered size count as granted, not waiting.
func (m *Semaphore) Waiting(ctx context.Context) (int, error) {
	t, err := m.line().read(ctx)
	return t.waiting, err
}

// Size is the number of permits, as this process last saw it: its own
// calls and its watch of the semaphore tell it of another's SetSize,
// normally within milliseconds.
func (m *Semaphore) Size() int { return int(m.line().size.Load()) }

// SetSize changes the size for every process that shares the semaphore, as
// ctxsync.Semaphore.SetBound does in one process: raising it grants the
// waiting requests that now fit, in order, at once; lowering it lets the
// holders keep what they hold (they count as granted), while nobody new is
// granted until the holders are within the new size, and waiting requests
// above the new size fail with ctxsync.ErrExceedsBound. A negative n
// panics.
//
// A lowering records, with the new size, which tickets were granted until
// then, on the condition that the line did not change since SetSize read
// it (it reads again and retries if it did). That condition names every
// holder of a permit ahead of the first waiter; when there are more than
// one etcd transaction can name (its default limit is 128), the condition
// names only the first waiter, and SetSize then reads the line as it was
// just before its write and, if a holder left and the waiter was granted
// in between, writes the record again to cover that grant. If SetSize
// returns an error, the size may or may not have changed (but not after a
// later SetSize returned). Setting the size in force changes nothing; it
// still writes the size key.
func (m *Semaphore) SetSize(ctx context.Context, n int) error {
	l := m.line()
	if n < 0 {
		panic("etcdsync: negative semaphore size")
	}
	if err := l.s.alive(); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	rctx, stop := l.s.bind(ctx)
	defer stop()
	resp, err := l.s.cli.Do(rctx, l.readOp())
	if err != nil {
		return l.s.rpcError(ctx, l.op("resize"), err)
	}
	kvs, rev := resp.Get().Kvs, resp.Get().Header.Revision
	tooMany := false // etcd refused the exact conditions: too many
	for {
		st := l.parse(kvs)
		// The size is written even when it is n already: an earlier
		// SetSize whose outcome was unknown (its ctx ended mid-RPC) may
		// still be applied after this one returns, unless this one moves
		// the size key's revision past the one that write is conditional
		// on (D3).
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(l.sizeKey), "=", st.sizeRev)}
		keep := st.keep
		loose := false
		if n < st.size {
			cmps, keep = st.lowering(cmps, l.tickets, rev)
			if tooMany || len(cmps) > maxTxnCompares {
				if c, ok := st.looseLowering(cmps[:1]); ok {
					cmps, loose = c, true
				}
			}
		}
		tresp, err := l.s.cli.Txn(rctx).If(cmps...).
			Then(clientv3.OpPut(l.sizeKey, sizeValue(n, keep))).
			Else(l.readOp()).Commit()
		if err != nil {
			if !loose && n < st.size && errors.Is(err, rpctypes.ErrTooManyOps) {
				// Refused before it was applied: the server allows
				// fewer than etcd's default.
				tooMany = true
				continue
			}
			return l.s.rpcError(ctx, l.op("resize"), err)
		}
		if tresp.Succeeded {
			if loose {
				l.mendKeep(rctx, n, keep, tresp.Header.Revision)
			}
			l.size.Store(int64(n))
			return nil
		}
		kvs, rev = tresp.Responses[0].GetResponseRange().Kvs, tresp.Header.Revision
	}
}

// maxTxnCompares is etcd's default limit of comparisons (and of operations)
// in one transaction (--max-txn-ops).
const maxTxnCompares = 128

// looseLowering returns the conditions of a lowering whose exact ones
// (lowering) name more holders than etcd takes in one transaction: the
// first waiter of st is still in the line. A holder may then leave between
// the read and the write and the first waiter be granted under the old
// size, a grant that keep does not cover; mendKeep covers it afterwards.
// With nobody waiting the exact conditions are few: ok is false, and the
// caller keeps them.
func (st *lineState) looseLowering(cmps []clientv3.Cmp) (_ []clientv3.Cmp, ok bool) {
	n, _ := st.grant(nil)
	if n == len(st.tickets) {
		return nil, false
	}
	w := st.tickets[n]
	return append(cmps, clientv3.Compare(clientv3.CreateRevision(w.key), "=", w.create)), true
}

// mendKeep follows a loose lowering written at rev with keep: it reads the
// line as it was just before (rev-1), and if tickets were granted there
// beyond keep (the race looseLowering allows), it writes the keep that
// covers them, on the condition that the size key is still the one written
// at rev. Until then a process that reads the line afresh counts such a
// ticket as waiting, which holds back only those behind it; a process that
// saw the grant keeps it. If the mend cannot be made (ctx ends, the history
// is compacted, another SetSize came first), that lasts until the ticket
// is released: the size is written either way.
func (l *line) mendKeep(ctx context.Context, n int, keep, rev int64) {
	resp, err := l.s.cli.Do(ctx, l.readOp(clientv3.WithRev(rev-1)))
	if err != nil {
		return
	}
	before := l.parse(resp.Get().Kvs)
	if covered := before.grantedKeep(); covered > keep {
		_, _ = l.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(l.sizeKey), "=", rev)).
			Then(clientv3.OpPut(l.sizeKey, sizeValue(n, covered))).Commit()
	}
}

// grantedKeep is the keep that covers every ticket granted in st: a
// lowering records it, so that they stay granted under the new size.
func (st *lineState) grantedKeep() int64 {
	n, _ := st.grant(nil)
	if n == 0 {
		return st.keep
	}
	return max(st.keep, st.tickets[n-1].create)
}

// lowering returns the conditions under which st, read at rev, is still
// the line when the size is lowered, and the keep that covers every
// ticket granted in it. Only two kinds of change could grant another
// ticket in between: one joining a line in which nobody waits, and one
// ahead of the first waiter (or that waiter itself) leaving, if it holds
// permits. Tickets of weight 0 and tickets behind the first waiter change
// nothing.
func (st *lineState) lowering(cmps []clientv3.Cmp, tickets string, rev int64) ([]clientv3.Cmp, int64) {
	keep := st.grantedKeep()
	n, _ := st.grant(nil)
	if n == len(st.tickets) {
		return append(cmps, clientv3.Compare(clientv3.ModRevision(tickets), "<", rev+1).WithPrefix()), keep
	}
	for i, t := range st.tickets[:n+1] {
		if t.w > 0 || i == n {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.create))
		}
	}
	return cmps, keep
}
