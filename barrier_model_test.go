package ctxsync_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync"
)

func FuzzBarrier(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 4, 0})
	f.Add([]byte{2, 0, 0, 3, 0, 0, 0, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		parties := int(data[0]%4) + 1
		data = data[1:]
		synctest.Test(t, func(t *testing.T) {
			b := ctxsync.NewBarrier(parties)
			broken := false
			var line, calls []*pending
			sendAway := func() {
				for _, p := range line {
					p.finish(opOutput{n: -1, err: ctxsync.ErrBrokenBarrier})
				}
				line = nil
			}
			for len(data) >= 2 {
				op, arg := data[0]%5, int(data[1])
				data = data[2:]
				switch op {
				case 0:
					p := startCall(&calls, 0, func(ctx context.Context) opOutput { i, err := b.Wait(ctx); return opOutput{i, err} })
					switch {
					case broken:
						p.finish(opOutput{n: -1, err: ctxsync.ErrBrokenBarrier})
					case len(line)+1 == parties:
						for i, w := range line {
							w.finish(opOutput{n: i})
						}
						p.finish(opOutput{n: parties - 1})
						line = nil
					default:
						line = append(line, p)
					}
				case 1:
					if p := cancelPending(calls, arg); p != nil {
						line = removeWaiter(line, p)
						p.finish(opOutput{n: -1, err: context.Canceled})
					}
				case 2:
					sendAway()
					broken = false
					b.Reset()
				case 3:
					sendAway()
					broken = true
					b.Abort()
				case 4:
					i, err := b.Wait(cancelled())
					want := opOutput{n: -1, err: context.Canceled}
					if broken {
						want.err = ctxsync.ErrBrokenBarrier
					}
					require.Equal(t, want, opOutput{i, err})
				}
				calls = checkPending(t, calls)
				require.Equal(t, len(line), b.Waiting())
				require.Equal(t, broken, b.Broken())
			}
			for _, p := range calls {
				p.cancel()
				p.finish(opOutput{n: -1, err: context.Canceled})
			}
			checkPending(t, calls)
		})
	})
}
