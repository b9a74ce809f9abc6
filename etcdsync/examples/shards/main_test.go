package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proctest"
)

// TestMain lets the test binary be the program and its shard processes.
func TestMain(m *testing.M) { proctest.Main(m, roleEnv, shard, main) }

// TestShards runs the scenario as a newcomer does, against the embedded
// etcd server. The program checks its outcome itself (the killed shard is
// withdrawn within the TTL, the barrier does not trip with it, the 4 live
// shards get the indexes 0..3 by arrival and all see phase 1 complete) and
// exits 1 when it is wrong.
func TestShards(t *testing.T) {
	out, code := proctest.Run(t)
	if code != 0 {
		t.Fatalf("the program exited with status %d", code)
	}
	for _, pattern := range []string{
		`shard 3 finished phase 1 and waits at the barrier \(3 of 4 waiting\)`,
		`its lease expired [\d.]+s after the kill: it is withdrawn \(2 of 4 waiting\)`,
		`shard 2 finished phase 1 and waits at the barrier \(3 of 4 waiting\)\n\s+the barrier did not trip`,
		`shard 3 \(replacement\) released with index 3`,
		`each of the 4 live shards read all 4 parts and computed 500000500000`,
		`\nOK: `,
	} {
		if !regexp.MustCompile(pattern).MatchString(out) {
			t.Errorf("output lacks %q", pattern)
		}
	}
	if strings.Contains(out, "WRONG OUTCOME") {
		t.Error("the program reported a wrong outcome")
	}
}
