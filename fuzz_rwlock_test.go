package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// The kinds of call in rwSpec's line, kept in pending.n.
const (
	rwCallRead = iota
	rwCallWrite
)

// rwSpec is the sequential model of an RWLock and its one line of readers
// and writers. The locks granted are held by the fuzzing goroutine, which
// gives them back: read locks are only counted, so any goroutine may.
type rwSpec struct {
	writer  bool
	readers int
	line    []*pending
}

// settle grants from the head of the line what the lock allows: readers
// up to the first writer, or that writer once nobody holds the lock.
func (m *rwSpec) settle() {
	for len(m.line) > 0 && !m.writer {
		p := m.line[0]
		if p.n == rwCallWrite {
			if m.readers > 0 {
				return
			}
			m.writer = true
		} else {
			m.readers++
		}
		m.line = m.line[1:]
		p.finish(opOutput{})
	}
}

// request is an RLock or a Lock arriving: granted at once if nobody waits
// and the lock lets it in, else at the end of the line.
func (m *rwSpec) request(p *pending) {
	m.line = append(m.line, p)
	if len(m.line) == 1 {
		m.settle()
	}
}

func FuzzRWLock(f *testing.F) {
	// Readers batched behind a writer, a writer behind them, Unlock.
	f.Add([]byte{3, 0, 2, 0, 2, 0, 3, 0, 2, 0, 5, 0, 4, 0, 4, 0, 5, 0, 4, 0})
	// A head writer cancelled with readers behind it.
	f.Add([]byte{2, 0, 3, 0, 2, 0, 2, 0, 7, 1, 4, 0, 4, 0, 4, 0})
	// Downgrade with readers and a writer waiting.
	f.Add([]byte{1, 0, 2, 0, 3, 0, 2, 0, 6, 0, 0, 0, 1, 0, 4, 0, 4, 0, 5, 0, 4, 0})
	// Misuse and done contexts.
	f.Add([]byte{4, 0, 5, 0, 6, 0, 8, 0, 9, 0, 0, 0, 5, 0, 6, 0, 4, 0, 4, 0})
	f.Fuzz(runRWLockModel)
}

// runRWLockModel runs the operations data encodes on an RWLock and on
// rwSpec side by side, in a synctest bubble, and fails at the first
// difference.
func runRWLockModel(t *testing.T, data []byte) {
	synctest.Test(t, func(t *testing.T) {
		var rw ctxsync.RWLock
		m := &rwSpec{}
		var calls []*pending
		for len(data) >= 2 {
			op, arg := data[0]%10, int(data[1])
			data = data[2:]
			switch op {
			case 0: // TryRLock: no writer, nobody in line
				want := !m.writer && len(m.line) == 0
				if want {
					m.readers++
				}
				require.Equal(t, want, rw.TryRLock(), "TryRLock")
			case 1: // TryLock: nobody holds it, nobody in line
				want := !m.writer && m.readers == 0 && len(m.line) == 0
				m.writer = m.writer || want
				require.Equal(t, want, rw.TryLock(), "TryLock")
			case 2:
				m.request(startCall(&calls, rwCallRead, func(ctx context.Context) opOutput { return opOutput{err: rw.RLock(ctx)} }))
			case 3:
				m.request(startCall(&calls, rwCallWrite, func(ctx context.Context) opOutput { return opOutput{err: rw.Lock(ctx)} }))
			case 4:
				if m.readers == 0 {
					require.PanicsWithValue(t, "ctxsync: RUnlock of RWLock without a read lock", rw.RUnlock)
					break
				}
				m.readers--
				m.settle()
				rw.RUnlock()
			case 5:
				if !m.writer {
					require.PanicsWithValue(t, "ctxsync: Unlock of RWLock without the write lock", rw.Unlock)
					break
				}
				m.writer = false
				m.settle()
				rw.Unlock()
			case 6:
				if !m.writer {
					require.PanicsWithValue(t, "ctxsync: Downgrade of RWLock without the write lock", rw.Downgrade)
					break
				}
				m.writer = false
				m.readers++
				m.settle()
				rw.Downgrade()
			case 7: // cancel a call; if it was waiting, it leaves the line
				if p := cancelPending(calls, arg); p != nil {
					m.line = removeWaiter(m.line, p)
					p.finish(opOutput{err: context.Canceled})
					m.settle()
				}
			case 8: // R1: a done context changes nothing
				require.Equal(t, context.Canceled, rw.RLock(cancelled()))
			case 9:
				require.Equal(t, context.Canceled, rw.Lock(cancelled()))
			}
			calls = checkPending(t, calls)
			require.Equal(t, m.writer, rw.Locked(), "Locked")
			require.Equal(t, m.readers, rw.Readers(), "Readers")
			require.Equal(t, len(m.line), rw.Waiting(), "Waiting")
		}
		// Let every call still waiting go, from the back of the line,
		// so that no one leaving lets anyone else in.
		for i := len(m.line) - 1; i >= 0; i-- {
			p := m.line[i]
			p.cancel()
			p.finish(opOutput{err: context.Canceled})
			m.line = m.line[:i]
			calls = checkPending(t, calls)
		}
		require.Empty(t, calls)
	})
}
