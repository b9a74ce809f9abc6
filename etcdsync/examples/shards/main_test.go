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
)

// mainEnv makes the test binary run main, the program a newcomer runs.
const mainEnv = "ETCDSYNC_SHARDS_MAIN"

// TestMain lets the test binary be the program and its shards: the test
// runs this binary with mainEnv set, and the program starts copies of
// os.Executable() (this binary again) with roleEnv set.
func TestMain(m *testing.M) {
	if conf := os.Getenv(roleEnv); conf != "" {
		os.Exit(shard(conf))
	}
	if os.Getenv(mainEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestShards runs the scenario as a newcomer does, against the embedded
// etcd server. The program checks its outcome itself (the killed shard is
// withdrawn within the TTL, the barrier does not trip with it, the 4 live
// shards get the indexes 0..3 by arrival and all see phase 1 complete) and
// exits 1 when it is wrong.
func TestShards(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	start := time.Now()
	err = cmd.Run()
	t.Logf("the program took %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if errs.Len() > 0 {
		t.Logf("stderr:\n%s", errs.String())
	}
	if err != nil {
		t.Fatalf("the program failed: %v", err)
	}
	for _, pattern := range []string{
		`shard 3 finished phase 1 and waits at the barrier \(3 of 4 waiting\)`,
		`its lease expired [\d.]+s after the kill: it is withdrawn \(2 of 4 waiting\)`,
		`shard 2 finished phase 1 and waits at the barrier \(3 of 4 waiting\)\n\s+the barrier did not trip`,
		`shard 3 \(replacement\) released with index 3`,
		`each of the 4 live shards read all 4 parts and computed 500000500000`,
		`\nOK: `,
	} {
		if !regexp.MustCompile(pattern).MatchString(out.String()) {
			t.Errorf("output lacks %q", pattern)
		}
	}
	if strings.Contains(out.String(), "WRONG OUTCOME") {
		t.Error("the program reported a wrong outcome")
	}
}
