package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
)

// mainEnv makes the test binary run main, the program a newcomer runs.
const mainEnv = "ETCDSYNC_EXAMPLE_MAIN"

// TestMain lets the test binary be the program and its workers: the test
// runs this binary with mainEnv set, and the program starts copies of
// os.Executable() (this binary again) with roleEnv set.
func TestMain(m *testing.M) {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(worker(conf))
	}
	if os.Getenv(mainEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runProgram runs the program with args in a process of its own and
// returns its stdout and exit status.
func runProgram(t *testing.T, args ...string) (string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	start := time.Now()
	err = cmd.Run()
	t.Logf("the program took %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if errs.Len() > 0 {
		t.Logf("stderr:\n%s", errs.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

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
	out, code := runProgram(t)
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
		out, code := runProgram(t, "-endpoints", ep)
		checkOutcome(t, out, code)
	}
}
