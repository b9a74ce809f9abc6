package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/ctxsync/ctxsync/etcdsync/examples/internal/proctest"
)

// TestMain lets the test binary be the program and its replica processes.
func TestMain(m *testing.M) { proctest.Main(m, roleEnv, replica, main) }

// TestReplicas runs the scenario as a newcomer does, against the embedded
// etcd server. The program checks its outcome itself (no 429 and at most 10
// in flight through the etcd semaphore, every request done, the dead
// replica's permits back within the TTL) and exits 1 when it is wrong.
func TestReplicas(t *testing.T) {
	out, code := proctest.Run(t)
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

// TestReplicasFlags runs the scenario with other numbers of replicas and of
// requests in flight: 3 replicas of 4 each can overload the vendor (12 >
// 10) only if each keeps its own semaphore, and the etcd one still keeps
// them within 10.
func TestReplicasFlags(t *testing.T) {
	out, code := proctest.Run(t, "-replicas", "3", "-inflight", "4")
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	mustMatch(t, out, `2\) all replicas share[^\n]*\n\s+the vendor saw up to (\d+) requests in flight and answered 429 to 0; 1000/1000 ok`,
		func(most int) bool { return most <= 10 })
	mustMatch(t, out, `the other (\d+) replicas finished`, func(n int) bool { return n == 2 })
	mustMatch(t, out, `kept (\d+) processes within the vendor's limit`, func(n int) bool { return n == 3 })
}

// TestReplicasBadFlags: fewer than 2 replicas, no request in flight or no
// request at all is refused before anything starts.
func TestReplicasBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-replicas", "1"}, {"-inflight", "0"}, {"-requests", "0"}} {
		out, code := proctest.Run(t, args...)
		if code != 1 {
			t.Errorf("%v: exit status %d, want 1", args, code)
		}
		mustMatch(t, out, `need at least (\d) replicas, 1 request in flight and 1 request`, func(n int) bool { return n == 2 })
	}
}

// Part 3 can kill its victim at every fleet size: the victim's share
// leaves hang requests to arrive after the stall begins, however many of
// its earlier requests were in flight at the vendor (at most vendorLimit).
// With 20 replicas and a fixed 300 requests it did not, and the victim
// finished before it could be killed.
func TestReplicasStallLeavesRequestsToHang(t *testing.T) {
	defer func(r, k int) { replicas, killRequests = r, k }(replicas, killRequests)
	for replicas = 2; replicas <= 200; replicas++ {
		killRequests = killRequestsFor(replicas)
		v := min(4, replicas-1)
		share := shareOf(killRequests, v)
		after := stallAfter(share)
		if share-(after+vendorLimit-1) < hang {
			t.Fatalf("%d replicas: share %d, stall after %d: fewer than %d requests sure to hang", replicas, share, after, hang)
		}
	}
}
