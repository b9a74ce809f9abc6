package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

func FuzzEvent(f *testing.F) {
	f.Add([]byte{2, 0, 2, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0, 0})
	f.Add([]byte{4, 0, 2, 0, 3, 0, 0, 0, 5, 0, 1, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			var e ctxsync.Event
			set := false
			var line, calls []*pending
			for len(data) >= 2 {
				op, arg := data[0]%6, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					set = true
					for _, p := range line {
						p.finish(opOutput{})
					}
					line = nil
					e.Set()
				case 1:
					set = false
					e.Clear()
				case 2:
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { return opOutput{err: e.Wait(ctx)} })
					if set {
						p.finish(opOutput{})
					} else {
						line = append(line, p)
					}
				case 3:
					if p := cancelPending(calls, arg); p != nil {
						line = removeWaiter(line, p)
						p.finish(opOutput{err: context.Canceled})
					}
				case 4:
					select {
					case <-e.Done():
						require.True(t, set, "Done closed while not set")
					default:
						require.False(t, set, "Done open while set")
					}
				case 5:
					want := context.Canceled
					if set {
						want = nil
					}
					require.Equal(t, want, e.Wait(cancelled()))
				}
				calls = checkPending(t, calls)
				require.Equal(t, set, e.IsSet())
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}
