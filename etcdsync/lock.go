package etcdsync

import "context"

// A Lock is a mutual-exclusion lock shared by every process that makes a
// Lock of the same name (under the same prefix). Waiters in all processes
// are served in the order etcd committed their requests, and every holder
// gets a fencing token that is higher than every earlier holder's.
//
// A Lock is held by a Permit, not by a goroutine or a process: Release the
// permit to unlock. Each call to Lock or TryLock is a request of its own,
// so two calls through one Session exclude each other like any two. The
// waiting calls of one process share one etcd watch of the lock, which
// the process drops a little while after its last call ends; joining the
// line is one write, however long the line.
//
// Within one process, a Release that returned nil happens before the Lock
// call that the release lets in returns, as for sync.Mutex; across
// processes, etcd orders what the holders write to it the same way.
//
// A Lock value is safe for use by any number of goroutines. Make it with
// NewLock; a zero Lock panics on first use.
type Lock struct {
	l *line
}

func (l *Lock) line() *line {
	if l.l == nil {
		panic("etcdsync: zero Lock; make one with NewLock")
	}
	return l.l
}

// NewLock returns the Lock called name, reached through s. It sends nothing
// to etcd. A nil Session panics.
func NewLock(s *Session, name string) *Lock {
	if s == nil {
		panic("etcdsync: NewLock with a nil Session")
	}
	return &Lock{l: newLine(s, "lock", "lock", name, 1)}
}

// Lock waits until the lock is granted, and returns its Permit. If ctx is
// done first, it withdraws its request and returns exactly ctx.Err(); if
// the grant came in the same moment, it passes on to the next waiter. It
// returns ErrSessionLost if the session ends first.
func (l *Lock) Lock(ctx context.Context) (*Permit, error) { return l.line().acquire(ctx, 1) }

// TryLock takes the lock if it is free and nobody waits, and otherwise
// returns ErrWouldBlock without leaving anything in etcd. ctx bounds the
// round trips.
func (l *Lock) TryLock(ctx context.Context) (*Permit, error) { return l.line().tryAcquire(ctx, 1) }

// Locked reports whether some process holds the lock.
func (l *Lock) Locked(ctx context.Context) (bool, error) {
	t, err := l.line().read(ctx)
	return t.granted > 0, err
}

// Waiting reports how many requests are in line, not yet granted.
func (l *Lock) Waiting(ctx context.Context) (int, error) {
	t, err := l.line().read(ctx)
	return t.waiting, err
}
