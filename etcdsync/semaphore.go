package etcdsync

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ctxsync/ctxsync"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Semaphore is a weighted semaphore of a fixed size shared by every
// process that makes a Semaphore of the same name (under the same prefix):
// "the vendor allows 10 concurrent requests" across every replica of a
// service. Requests in all processes are served whole, in the order etcd
// committed them; a weighted request at the head that does not fit yet
// holds back the smaller ones behind it, so it cannot starve.
//
// Unlike ctxsync.Semaphore it cannot be released above its size: permits
// belong to their holders, so that a crash gives them back.
//
// A Semaphore value is safe for use by any number of goroutines. Make it
// with NewSemaphore; a zero Semaphore panics on first use.
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
// outlives every session); making it again with another size returns
// ErrSizeMismatch. A negative size or a nil Session panics.
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
	m := &Semaphore{l: newLine(s, "sem", "semaphore", name, size)}
	sizeKey := s.prefix + "sem/" + objectKey(name) + "/size"
	resp, err := s.cli.Txn(ctx).If(absent(sizeKey)).
		Then(clientv3.OpPut(sizeKey, strconv.Itoa(size))).
		Else(clientv3.OpGet(sizeKey)).Commit()
	if err != nil {
		// A put whose outcome is unknown is harmless here: it can only
		// write the same size, and only if none was there.
		return nil, rpcError(ctx, m.l.op("make"), err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) != 1 || string(kvs[0].Value) != strconv.Itoa(size) {
			return nil, fmt.Errorf("%w: semaphore %q", ErrSizeMismatch, name)
		}
	}
	return m, nil
}

// Acquire is AcquireN(ctx, 1).
func (m *Semaphore) Acquire(ctx context.Context) (*Permit, error) { return m.AcquireN(ctx, 1) }

// AcquireN waits until n permits are granted together, and returns their
// Permit. n above the size can never succeed: it returns
// ctxsync.ErrExceedsBound at once. AcquireN(ctx, 0) succeeds at once unless
// others wait. If ctx is done first, it withdraws its request and returns
// exactly ctx.Err(); if the grant came in the same moment, the permits pass
// on. It returns ErrSessionLost if the session ends first. A negative n
// panics.
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
	if n > m.l.size {
		return ctxsync.ErrExceedsBound
	}
	return nil
}

// Available reports the size minus the permits granted now.
func (m *Semaphore) Available(ctx context.Context) (int, error) {
	t, err := m.line().read(ctx)
	if err != nil {
		return 0, err
	}
	return m.l.size - t.granted, nil
}

// Waiting reports how many requests are in line, not yet granted.
func (m *Semaphore) Waiting(ctx context.Context) (int, error) {
	t, err := m.line().read(ctx)
	return t.waiting, err
}

// Size is the number of permits.
func (m *Semaphore) Size() int { return m.line().size }
