// Command ratios reads `go test -bench` output on standard input and prints
// the speed targets of the project as ratios of median ns/op, ctxsync over
// its peer, each beside its goal.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
)

// target is one ratio: ctxsync's benchmark over the peer's, at most goal.
type target struct {
	what, ours, peer string
	goal             float64
}

var targets = []target{
	{"Lock uncontended / sync.Mutex", "LockUncontended/ctxsync", "LockUncontended/sync.Mutex", 1.3},
	{"Lock contended (4) / Weighted(1)", "LockContended/ctxsync", "LockContended/Weighted(1)", 0.5},
	{"Semaphore uncontended / Weighted", "SemaphoreUncontended/ctxsync", "SemaphoreUncontended/Weighted", 0.5},
	{"Semaphore contended / Weighted", "SemaphoreContended/ctxsync", "SemaphoreContended/Weighted", 0.5},
	{"Semaphore contended / chan", "SemaphoreContended/ctxsync", "SemaphoreContended/chan", 1.0},
	{"Queue 1x1 (cap 1024) / chan", "QueueSPSC/ctxsync", "QueueSPSC/chan", 0.7},
	{"Queue 4x4 / chan", "Queue4x4/ctxsync", "Queue4x4/chan", 1.0},
	// The goal is what the mutex queue reached before the ring
	// (BENCHMARKS.md): the ring must be no worse.
	{"Queue ping-pong / chan", "QueuePingPong/ctxsync", "QueuePingPong/chan", 0.85},
	{"Event wake / chan", "EventWake/ctxsync", "EventWake/chan", 1.2},
	{"KeyedLock uncontended / map", "KeyedLockUncontended/ctxsync", "KeyedLockUncontended/map", 0.7},
	{"KeyedLock 4 distinct keys / map", "KeyedLockDistinct4/ctxsync", "KeyedLockDistinct4/map", 0.5},
	// Each caller picks its key at random, as independent clients do;
	// GroupHot4, where they take the keys in turn and almost never ask
	// for the same one at once, is under floors.
	{"Group 4 hot keys / singleflight", "GroupHot4Random/ctxsync", "GroupHot4Random/singleflight", 1.0},
	// fn in a goroutine of its own (API.md) costs more than this goal:
	// BenchmarkGroupFresh's floor, in BENCHMARKS.md.
	{"Group fresh call / singleflight", "GroupFresh/ctxsync", "GroupFresh/singleflight", 4.0},
}

// floors have no goal. Most are ours over what any implementation of the
// same contract pays (fn in a goroutine of its own), and say how far above
// that floor ours is; the "in turn" rows are GroupHot4, the case where
// deduplication cannot help.
var floors = []target{
	{"Group fresh call / goroutine", "GroupFresh/ctxsync", "GroupFresh/goroutine", 0},
	{"Group fresh call / goroutine-yield", "GroupFresh/ctxsync", "GroupFresh/goroutine-yield", 0},
	{"goroutine-yield fresh / singleflight", "GroupFresh/goroutine-yield", "GroupFresh/singleflight", 0},
	{"Group 4 keys in turn / singleflight", "GroupHot4/ctxsync", "GroupHot4/singleflight", 0},
	{"Group 4 keys in turn / goroutine", "GroupHot4/ctxsync", "GroupHot4/goroutine", 0},
	{"Group 4 keys in turn / goroutine-yield", "GroupHot4/ctxsync", "GroupHot4/goroutine-yield", 0},
	{"singleflight 4 keys in turn / goroutine", "GroupHot4/singleflight", "GroupHot4/goroutine", 0},
}

var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

func main() {
	samples := map[string][]float64{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if m := line.FindStringSubmatch(in.Text()); m != nil {
			ns, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				samples[m[1]] = append(samples[m[1]], ns)
			}
		}
	}
	median := func(name string) (float64, bool) {
		s := samples[name]
		if len(s) == 0 {
			return 0, false
		}
		slices.Sort(s)
		// As benchstat does: for an even count, the mean of the two middle
		// samples, not the upper one, which flatters a side whose samples
		// split into a fast and a slow group.
		mid := len(s) / 2
		if len(s)%2 == 0 {
			return (s[mid-1] + s[mid]) / 2, true
		}
		return s[mid], true
	}
	fmt.Printf("%-36s %8s %6s  %s\n", "target (ctxsync / peer, ns/op)", "ratio", "goal", "")
	for _, t := range targets {
		ours, ok1 := median(t.ours)
		peer, ok2 := median(t.peer)
		if !ok1 || !ok2 {
			fmt.Printf("%-36s %8s %6.2f  not measured\n", t.what, "-", t.goal)
			continue
		}
		verdict := "met"
		if ours/peer > t.goal {
			verdict = "MISSED"
		}
		fmt.Printf("%-36s %8.2f %6.2f  %s\n", t.what, ours/peer, t.goal, verdict)
	}
	fmt.Printf("\n%-40s %8s\n", "without a goal: floors, keys in turn", "ratio")
	for _, t := range floors {
		ours, ok1 := median(t.ours)
		floor, ok2 := median(t.peer)
		if ok1 && ok2 {
			fmt.Printf("%-40s %8.2f\n", t.what, ours/floor)
		}
	}
}
