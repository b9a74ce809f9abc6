package ctxsync_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// R7: go vet reports a copy of every ctxsync type. testdata/copies copies
// one value of each.
func TestVetReportsCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "vet", "./testdata/copies").CombinedOutput()
	assert.Error(t, err, "go vet must fail")
	for _, typ := range []string{"Lock", "Event", "Condition", "Queue[int]", "Semaphore", "BoundedSemaphore", "Barrier"} {
		assert.Contains(t, string(out), "copies lock value: github.com/ctxsync/ctxsync."+typ+" contains", "a copy of %s", typ)
	}
	assert.Equal(t, 7, strings.Count(string(out), "copies lock value"))
}
