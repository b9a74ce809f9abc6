//go:build stress

package ctxsync_test

// stressScale in the large mode: go test -race -tags stress -timeout 60m ./...
const stressScale = 100
