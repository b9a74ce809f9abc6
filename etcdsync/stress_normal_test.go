//go:build !stress

package etcdsync_test

// stressScale multiplies the rounds of the randomized storm tests; build
// with -tags stress for the large mode.
const stressScale = 1
