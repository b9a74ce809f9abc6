package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

// The command's run: one origin fetch per key for 100 clients asking for
// 10 keys, and a client that gives up fails nobody else; no goroutine is
// left behind.
func TestStampede(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	require.NoError(t, scenarios.Stampede(&out), out.String())
	assert.Contains(t, out.String(), "with a Lock:    50 clients, 1 origin fetch\n")
	assert.Contains(t, out.String(), "with a Group:   100 clients, 10 keys, 10 origin fetches\n")
	assert.Contains(t, out.String(), `a client that gave up got "context deadline exceeded"; 100/100 clients got their page`)
}
