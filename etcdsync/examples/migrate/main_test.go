package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proctest"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
)

// TestMain lets the test binary be the program and its worker processes.
func TestMain(m *testing.M) { proctest.Main(m, roleEnv, worker, main) }

// checkOutcome asserts the narrated outcome, which the program has checked
// itself (exactly one process ran the migration, the storage saw one
// migration write, the stale holder's writes were refused and the new
// holder's accepted) before it exited 0.
func checkOutcome(t *testing.T, out string, code int) {
	t.Helper()
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	for _, want := range []struct {
		pattern string
		n       int
	}{
		{`ran the migration, and marked it done`, 1},
		{`found it done \(by process-\d@\d+\), and skipped it`, 4},
		{`the storage saw 1 migration write\n`, 1},
		{`process-B writes with token \d+: storage accepted; its guarded etcd Txn accepted`, 1},
		{`process-A wakes up and writes with its old token \d+: storage refused \(409[^\n]*; its guarded etcd Txn refused`, 1},
		{`the storage holds process-B's write \(token \d+\) and refused 1 stale write\n`, 1},
		{`\nOK: `, 1},
	} {
		if n := len(regexp.MustCompile(want.pattern).FindAllString(out, -1)); n != want.n {
			t.Errorf("%q: %d lines, want %d", want.pattern, n, want.n)
		}
	}
}

// TestMigrate runs the scenario as a newcomer does, against the embedded
// etcd server it starts.
func TestMigrate(t *testing.T) {
	out, code := proctest.Run(t)
	checkOutcome(t, out, code)
}

// TestMigrateEndpoints runs it against an existing cluster named with
// -endpoints host:port, twice: each run keeps to a namespace of its own.
func TestMigrateEndpoints(t *testing.T) {
	c, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ep := strings.TrimPrefix(c.Endpoints()[0], "http://")
	for range 2 {
		out, code := proctest.Run(t, "-endpoints", ep)
		checkOutcome(t, out, code)
	}
}
