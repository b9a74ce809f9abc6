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
	for _, typ := range []string{"Lock", "Event", "Condition", "Queue[int]", "Semaphore", "BoundedSemaphore", "Barrier", "RWLock"} {
		assert.Contains(t, string(out), "copies lock value: github.com/ctxsync/ctxsync."+typ+" contains", "a copy of %s", typ)
	}
	assert.Equal(t, 8, strings.Count(string(out), "copies lock value"))
}

// R7: go vet reports a copy of a Ticket and of a GetTicket, whose records
// stand in a line and must not be duplicated. testdata/ticketcopies copies
// one of each.
func TestVetReportsTicketCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "vet", "./testdata/ticketcopies").CombinedOutput()
	assert.Error(t, err, "go vet must fail")
	for _, typ := range []string{"Ticket", "GetTicket[int]"} {
		assert.Contains(t, string(out), "copies lock value: github.com/ctxsync/ctxsync."+typ+" contains", "a copy of %s", typ)
	}
	assert.Equal(t, 2, strings.Count(string(out), "copies lock value"), string(out))
}

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
