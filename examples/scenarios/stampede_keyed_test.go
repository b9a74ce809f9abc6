package scenarios_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

// The per-key stampede: 100 clients asking for 10 keys cause exactly 10
// origin fetches, and the client that gives up fails nobody else.
func TestStampedePerKeyNumbers(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, scenarios.Stampede(&out), out.String())
	assert.Contains(t, out.String(), "with a Group:   100 clients, 10 keys, 10 origin fetches")
	assert.Contains(t, out.String(), `a client that gave up got "context deadline exceeded"; 100/100 clients got their page`)
}
