package ctxsync_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

const (
	opSetBound opKind = 100 + iota
	opBound
)

// resizeState is the sequential state of a resizable BoundedSemaphore: its
// bound and the permits held, which may be above a lowered bound; the free
// permits are max(0, bound − held).
type resizeState struct{ bound, held int }

// resizeModel is the contract of "Resizing a BoundedSemaphore" as a
// sequential specification.
var resizeModel = porcupine.Model{
	Init: func() any { return resizeState{bound: 3} },
	Step: func(state, input, output any) (bool, any) {
		s := state.(resizeState)
		in, out := input.(opInput), output.(opOutput)
		free := max(0, s.bound-s.held)
		switch in.kind {
		case opAcquire:
			switch out.err {
			case nil:
				if in.n > free {
					return false, s
				}
				return true, resizeState{s.bound, s.held + in.n}
			case ctxsync.ErrExceedsBound:
				return in.n > s.bound, s
			}
			return true, s // ended by its context: no effect
		case opTryAcquire:
			if out.n == 0 {
				return true, s // refused: short, above the bound, or others wait
			}
			if in.n > free {
				return false, s
			}
			return true, resizeState{s.bound, s.held + in.n}
		case opRelease:
			return in.n <= s.held, resizeState{s.bound, s.held - in.n}
		case opAvailable:
			return out.n == free, s
		case opSetBound:
			return true, resizeState{in.n, s.held}
		case opBound:
			return out.n == s.bound, s
		}
		return false, s
	},
}

// Concurrent histories of acquires (some cancelled), releases and resizes
// of one BoundedSemaphore are linearizable against resizeModel.
func TestLinearizableResizableSemaphore(t *testing.T) {
	for h := range linearizeHistories {
		s := ctxsync.NewBoundedSemaphore(3)
		var rec recorder
		var wg sync.WaitGroup
		for client := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(h), uint64(client)+200))
				held := 0
				for range 12 {
					n := rng.IntN(4)
					switch rng.IntN(6) {
					case 0, 1:
						ctx, cancel := opContext(rng)
						rec.do(client, opInput{opAcquire, n}, func() opOutput {
							err := s.AcquireN(ctx, n)
							if err == nil {
								held += n
							}
							return opOutput{err: err}
						})
						cancel()
					case 2:
						rec.do(client, opInput{opTryAcquire, n}, func() opOutput {
							if s.TryAcquireN(n) {
								held += n
								return opOutput{n: 1}
							}
							return opOutput{}
						})
					case 3:
						give := min(n, held)
						held -= give
						rec.do(client, opInput{opRelease, give}, func() opOutput { s.ReleaseN(give); return opOutput{} })
					case 4:
						b := rng.IntN(5)
						rec.do(client, opInput{opSetBound, b}, func() opOutput { s.SetBound(b); return opOutput{} })
					case 5:
						if rng.IntN(2) == 0 {
							rec.do(client, opInput{kind: opAvailable}, func() opOutput { return opOutput{n: s.Available()} })
						} else {
							rec.do(client, opInput{kind: opBound}, func() opOutput { return opOutput{n: s.Bound()} })
						}
					}
				}
				if held > 0 {
					rec.do(client, opInput{opRelease, held}, func() opOutput { s.ReleaseN(held); return opOutput{} })
				}
			})
		}
		wg.Wait()
		result := porcupine.CheckOperationsTimeout(resizeModel, rec.ops, 10*time.Second)
		require.NotEqual(t, porcupine.Illegal, result, "history %d (%d operations) is not linearizable", h, len(rec.ops))
		require.Equal(t, s.Bound(), s.Available(), "every permit is back")
		require.Zero(t, s.Waiting())
	}
}
