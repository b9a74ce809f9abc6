//go:build !stress

package ctxsync_test

// stressScale multiplies the rounds of the randomized stress tests. The
// normal size keeps `go test -race ./...` quick; build with -tags stress for
// the large mode.
const stressScale = 1
