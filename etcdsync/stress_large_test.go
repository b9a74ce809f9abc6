//go:build stress

package etcdsync_test

const stressScale = 20
