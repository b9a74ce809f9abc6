package ctxsync_test

// Fuzz targets for "Beyond asyncio": SetBound, Waiting and GetMany against
// the sequential models of fuzz_test.go, extended.

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

// resizeSpec is the sequential model of a resizable BoundedSemaphore with
// its line: held may be above a lowered bound, and the free permits are
// max(0, bound − held).
type resizeSpec struct {
	bound, held int
	line        []*pending
}

func (m *resizeSpec) free() int { return max(0, m.bound-m.held) }

func (m *resizeSpec) serve() {
	for len(m.line) > 0 && m.free() >= m.line[0].n {
		m.held += m.line[0].n
		m.line[0].finish(opOutput{})
		m.line = m.line[1:]
	}
}

// setBound is SetBound in the model: requests above the new bound leave
// the line with ErrExceedsBound, the others keep their order and are
// served with what is free now.
func (m *resizeSpec) setBound(n int) {
	m.bound = n
	var kept []*pending
	for _, p := range m.line {
		if p.n > n {
			p.finish(opOutput{err: ctxsync.ErrExceedsBound})
			continue
		}
		kept = append(kept, p)
	}
	m.line = kept
	m.serve()
}

func FuzzResizableSemaphore(f *testing.F) {
	f.Add([]byte{3, 1, 3, 1, 2, 1, 4, 4, 1, 1, 4, 1, 2, 2, 2, 1, 2, 1})
	f.Add([]byte{2, 1, 2, 1, 1, 1, 3, 1, 4, 0, 2, 2, 4, 4})
	f.Add([]byte{4, 0, 4, 1, 4, 1, 3, 4, 1, 3, 2, 1, 3, 0, 5, 3, 4, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		size := int(data[0] % 5)
		data = data[1:]
		m := &resizeSpec{bound: size}
		s := ctxsync.NewBoundedSemaphore(size)
		synctest.Test(t, func(t *testing.T) {
			var calls []*pending
			for len(data) >= 2 {
				op, n := data[0]%6, int(data[1]%5)
				data = data[2:]
				switch op {
				case 0: // TryAcquireN
					want := n <= m.bound && len(m.line) == 0 && m.free() >= n
					if want {
						m.held += n
					}
					require.Equal(t, want, s.TryAcquireN(n))
				case 1: // AcquireN
					p := startCall(&calls, n, func(ctx context.Context) opOutput { return opOutput{err: s.AcquireN(ctx, n)} })
					switch {
					case n > m.bound:
						p.finish(opOutput{err: ctxsync.ErrExceedsBound})
					case len(m.line) == 0 && m.free() >= n:
						m.held += n
						p.finish(opOutput{})
					default:
						m.line = append(m.line, p)
					}
				case 2: // ReleaseN: only more than is held panics
					if n > m.held {
						require.PanicsWithValue(t, "ctxsync: BoundedSemaphore released more permits than are held", func() { s.ReleaseN(n) })
					} else {
						m.held -= n
						m.serve()
						s.ReleaseN(n)
					}
				case 3: // cancel a waiting call
					if p := cancelPending(calls, n); p != nil {
						m.line = removeWaiter(m.line, p)
						p.finish(opOutput{err: context.Canceled})
						m.serve()
					}
				case 4:
					m.setBound(n)
					s.SetBound(n)
				case 5: // a done context changes nothing
					err := s.AcquireN(cancelled(), n)
					if n > m.bound {
						require.Equal(t, ctxsync.ErrExceedsBound, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, m.free(), s.Available())
				require.Equal(t, m.bound, s.Bound())
				require.Equal(t, len(m.line), s.Waiting())
				require.Equal(t, len(m.line) > 0 || m.free() == 0, s.Locked())
			}
			// The latest first: a head that leaves may let those behind it be
			// served, so they must have ended already when it does.
			for _, p := range slices.Backward(calls) {
				p.cancel()
				m.line = removeWaiter(m.line, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}

// encodeBatch packs the items of a batch (each 0..7) into one int: a single
// item as itself, so that a GetMany handed one item by the model's add
// reads as that item, and longer batches as base-9 digits v+1, which are
// all above 7.
func encodeBatch(items []int) int {
	if len(items) == 1 {
		return items[0]
	}
	enc, mul := 0, 1
	for _, v := range items {
		enc += (v + 1) * mul
		mul *= 9
	}
	return enc
}

// takeMany is GetMany in the model: up to k of the items there, in Get
// order, then as many blocked Puts let in.
func (m *queueSpec) takeMany(k int) []int {
	var got []int
	for len(got) < k && len(m.items) > 0 {
		got = append(got, m.pop())
	}
	for range len(got) {
		if len(m.putters) == 0 {
			break
		}
		p := m.putters[0]
		m.putters = m.putters[1:]
		m.tasks++
		m.items = append(m.items, p.n)
		p.finish(opOutput{})
	}
	return got
}

func FuzzQueueGetMany(f *testing.F) {
	f.Add([]byte{2, 0, 0, 1, 0, 2, 0, 3, 2, 3, 2, 4, 3, 2, 1, 0, 1, 3})
	f.Add([]byte{1, 1, 3, 2, 2, 1, 0, 5, 0, 6, 3, 0, 4, 1, 6, 0, 3, 2})
	f.Add([]byte{0, 2, 2, 1, 1, 0, 0, 4, 0, 1, 0, 7, 3, 3, 5, 0, 3, 1})
	// The FIFO ring at capacities 4, 3 and 1024: batches from a full
	// ring that let parked Puts in, GetMany parked and handed an item.
	f.Add([]byte{4, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 2, 3, 3, 1, 6, 0, 6, 0, 6, 0, 2, 3, 6, 0, 6, 0, 6, 0, 7, 0})
	f.Add([]byte{3, 0, 2, 2, 1, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 3, 3, 4, 0, 5, 0, 2, 3, 6, 0, 6, 0, 6, 0, 7, 0})
	f.Add([]byte{5, 0, 0, 1, 0, 2, 0, 3, 3, 1, 2, 2, 2, 3, 0, 4, 6, 0, 6, 0, 6, 0, 6, 0, 5, 0, 7, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		m := newQueueSpec(data[0], data[1])
		data = data[2:]
		synctest.Test(t, func(t *testing.T) {
			q := m.newQueue(t)
			getMany := func(ctx context.Context, k int) opOutput {
				dst := make([]int, k)
				n, err := q.GetMany(ctx, dst)
				return opOutput{encodeBatch(dst[:n]), err}
			}
			var calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%8, int(data[1]%8)
				data = data[2:]
				switch op {
				case 0: // Put
					m.joinPut(startCall(&calls, arg, func(ctx context.Context) opOutput { return opOutput{err: q.Put(ctx, arg)} }))
				case 1: // Get, in the same line
					m.joinGet(startCall(&calls, 0, func(ctx context.Context) opOutput { v, err := q.Get(ctx); return opOutput{v, err} }))
				case 2: // GetMany of 1..4
					k := 1 + arg%4
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { return getMany(ctx, k) })
					switch {
					case len(m.items) > 0:
						p.finish(opOutput{n: encodeBatch(m.takeMany(k))})
					case m.shut:
						p.finish(opOutput{err: ctxsync.ErrQueueShutDown})
					default:
						m.getters = append(m.getters, p) // handed one item by add
					}
				case 3: // TryGetMany of 1..4
					k := 1 + arg%4
					var want opOutput
					switch {
					case len(m.items) > 0:
						want.n = encodeBatch(m.takeMany(k))
					case m.shut:
						want.err = ctxsync.ErrQueueShutDown
					default:
						want.err = ctxsync.ErrQueueEmpty
					}
					dst := make([]int, k)
					n, err := q.TryGetMany(dst)
					require.Equal(t, want, opOutput{encodeBatch(dst[:n]), err})
				case 4: // cancel a waiting call
					if p := cancelPending(calls, arg); p != nil {
						m.putters = removeWaiter(m.putters, p)
						m.getters = removeWaiter(m.getters, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 5:
					m.shutdown()
					q.Shutdown()
				case 6:
					if m.tasks == 0 {
						require.Panics(t, q.TaskDone)
					} else {
						m.tasks--
						q.TaskDone()
					}
				case 7: // a done context changes nothing
					_, err := q.GetMany(cancelled(), make([]int, 2))
					if m.shut && len(m.items) == 0 {
						require.Equal(t, ctxsync.ErrQueueShutDown, err)
					} else {
						require.Equal(t, context.Canceled, err)
					}
				}
				calls = checkPending(t, calls)
				require.Equal(t, len(m.items), q.Len())
				want := context.Canceled
				if m.tasks == 0 {
					want = nil
				}
				require.Equal(t, want, q.Join(cancelled()), "one task per item")
			}
			for _, p := range calls {
				p.cancel()
				m.putters = removeWaiter(m.putters, p)
				m.getters = removeWaiter(m.getters, p)
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}
