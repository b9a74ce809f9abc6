// Package proctest runs a scenario program from its own tests: the test
// binary stands in for the program and for the copies of itself that the
// program starts, so the test runs exactly what a newcomer runs.
package proctest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// mainEnv makes the test binary run the program's main.
const mainEnv = "ETCDSYNC_EXAMPLE_MAIN"

// Main is the program's TestMain: when roleEnv is set, the binary is one of
// the program's child processes and runs role with the variable's value;
// when Run started it, it runs the program's main; otherwise the tests.
func Main(m *testing.M, roleEnv string, role func(conf string) int, main func()) {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(role(conf))
	}
	if os.Getenv(mainEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Run runs the program with args in a process of its own, logs what it
// printed, and returns its stdout and exit status.
func Run(t *testing.T, args ...string) (string, int) {
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
