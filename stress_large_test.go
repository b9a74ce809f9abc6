//go:build stress && !stressci

package ctxsync_test

// stressScale in the large mode: ./test.sh stress, or
// go test -race -tags stress -timeout 60m ./...
const stressScale = 100
