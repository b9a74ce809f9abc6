package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// mainEnv makes the test binary run main, the program a newcomer runs.
const mainEnv = "ETCDSYNC_EXAMPLE_MAIN"

// TestMain lets the test binary be the program and its replicas: the test
// runs this binary with mainEnv set, and the program starts copies of
// os.Executable() (this binary again) with roleEnv set.
func TestMain(m *testing.M) {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(replica(conf))
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

// TestReplicas runs the scenario as a newcomer does, against the embedded
// etcd server. The program checks its outcome itself (no 429 and at most 10
// in flight through the etcd semaphore, every request done, the dead
// replica's permits back within the TTL) and exits 1 when it is wrong.
func TestReplicas(t *testing.T) {
	out, code := runProgram(t)
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	// The numbers the narration promises.
	mustMatch(t, out, `1\) each replica limits itself[^\n]*\n\s+the vendor saw up to (\d+) requests in flight \(limit 10\) and answered 429 to [1-9]\d* of 1000`,
		func(most int) bool { return most > 10 })
	mustMatch(t, out, `2\) all replicas share[^\n]*\n\s+the vendor saw up to (\d+) requests in flight and answered 429 to 0; 1000/1000 ok`,
		func(most int) bool { return most <= 10 })
	mustMatch(t, out, `the other 5 replicas finished their \d+ requests and exited [\d.]+s after the kill, with up to (\d+) in flight and 0 429s`,
		func(most int) bool { return most <= 10 })
	mustMatch(t, out, `Available was \d+ then[^,]*, and (\d+) of 10`,
		func(n int) bool { return n == 10 })
	mustMatch(t, out, `\n(OK): `, func(int) bool { return true })
}

func mustMatch(t *testing.T, out, pattern string, ok func(int) bool) {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("output lacks %q", pattern)
		return
	}
	n, _ := strconv.Atoi(m[1])
	if !ok(n) {
		t.Errorf("%q: unexpected %d", m[0], n)
	}
}
