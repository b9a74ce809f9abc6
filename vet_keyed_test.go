package ctxsync_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// R7: go vet reports a copy of a KeyedLock, a KeyedSemaphore, a Group and
// a GroupTicket. testdata/keyedcopies copies one of each.
func TestVetReportsKeyedCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "vet", "./testdata/keyedcopies").CombinedOutput()
	assert.Error(t, err, "go vet must fail")
	for _, typ := range []string{"KeyedLock[string]", "KeyedSemaphore[string]", "Group[string, int]", "GroupTicket[int]"} {
		assert.Contains(t, string(out), "copies lock value: github.com/ctxsync/ctxsync."+typ+" contains", "a copy of %s", typ)
	}
	assert.Equal(t, 4, strings.Count(string(out), "copies lock value"), string(out))
}
