//go:build stress && stressci

package ctxsync_test

// stressScale in CI's share of the large mode (./test.sh ci-stress): the
// preemption points of the large mode, at a quarter of its rounds, so that
// the subset that CI runs takes about two minutes on two cores.
const stressScale = 25
