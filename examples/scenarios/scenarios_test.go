package scenarios_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Each scenario checks its own outcome (exactly one origin fetch, no 429,
// no lost update, ...) and returns an error when it is wrong.
func TestScenarios(t *testing.T) {
	for _, s := range scenarios.All {
		t.Run(s.Name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, s.Run(&out), out.String())
			assert.NotEmpty(t, out.String(), "the scenario narrates")
		})
	}
}

func TestStampedeNumbers(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, scenarios.Stampede(&out))
	assert.Contains(t, out.String(), "without a lock: 50 clients, 50 origin fetches")
	assert.Contains(t, out.String(), "with a Lock:    50 clients, 1 origin fetch")
}

func TestRateLimitNumbers(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, scenarios.RateLimit(&out))
	assert.Contains(t, out.String(), "429 answers: 0")
	assert.Contains(t, out.String(), "1000/1000 requests done")
}

func TestCounterNumbers(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, scenarios.Counter(&out))
	assert.Contains(t, out.String(), "without a lock: 100 increments, counter = 1")
	assert.Contains(t, out.String(), "with a Lock:    100 increments, counter = 100")
}
