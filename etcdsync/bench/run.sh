#!/usr/bin/env bash
# Runs etcdsync's Lock benchmarks beside etcd's own concurrency.Mutex, on the
# embedded etcd server the test binary starts (TestMain), with GOMAXPROCS=2,
# and prints two benchstat tables: every result, then concurrency.Mutex as
# the base against etcdsync.
#
# Usage: etcdsync/bench/run.sh [-count N]   (default 6: benchstat needs six
# for its intervals)
#
# The N rounds are separate runs of the test binary, each running every
# benchmark once, so that the two implementations alternate and a change in
# the machine's load hits both alike. The load average is printed before
# and after: numbers taken while other work runs on the machine are not
# worth quoting.
#
# Iteration counts (a round takes some minutes on two cores; the waiters=10000
# setup alone is about a minute):
#   LockUncontended: -benchtime 1000x, a fixed count, because an etcdsync
#     call gets slower with the calls made before it on the same lock
#     since etcd's last compaction (see BenchmarkLockAfterHistory)
#   LockAfterHistory: -benchtime 200x, after 5,000 calls off the clock
#   HandOff: -benchtime 1s
#   HandOffSettled: -benchtime 20x (each hand-off holds 150 ms off the clock)
#   GrantWithWaiters, W waiters over S sessions (S = 1, 10, 100, at most W):
#     W = 10 and 100: -benchtime 200x; W = 1000: 100x (each run first
#     queues the W waiters, off the clock); W = 10000, etcdsync only: 50x.
#     Besides ns/op: cpu-ns/op (the whole binary, server included) and
#     events/op (watch events the server sent, to every client, per grant)
#   JoinLine (etcdsync): -benchtime 100x: join a line of W (10 to 10,000) and leave it
#   WatchFanout: -benchtime 200x: etcd's client alone, P watches of one
#     prefix (P = 1, 10, 100) and a delete and a put per op: the floor of a
#     grant over P sessions while each process follows the whole line
#
# Results go to a new directory under ${TMPDIR:-/tmp}, printed first; nothing
# is written inside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
count=6
while [ $# -gt 0 ]; do
  case "$1" in
    -count) count=$2; shift 2 ;;
    *) echo "usage: etcdsync/bench/run.sh [-count N]" >&2; exit 2 ;;
  esac
done
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
out=$(mktemp -d "${TMPDIR:-/tmp}/etcdsync-bench.XXXXXX")
export GOMAXPROCS=2

echo "== machine: $(nproc) cores, $(go version), $(uname -m)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== results: $out"
go test -c -o "$out/etcdsync.test" .

bench() { # pattern benchtime
  "$out/etcdsync.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" \
    -test.count 1 | tee -a "$out/bench.txt"
}
for round in $(seq "$count"); do
  echo "== round $round of $count"
  bench '^BenchmarkLockUncontended$' 1000x
  bench '^BenchmarkLockAfterHistory$' 200x
  bench '^BenchmarkHandOff$' 1s
  bench '^BenchmarkHandOffSettled$' 20x
  bench '^BenchmarkGrantWithWaiters$/^waiters=(10|100)$' 200x
  bench '^BenchmarkGrantWithWaiters$/^waiters=1000$' 100x
  bench '^BenchmarkGrantWithWaiters$/^waiters=10000$' 50x
  bench '^BenchmarkJoinLine$' 100x
  bench '^BenchmarkWatchFanout$' 200x
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# One file per implementation, with its name taken out of the benchmark
# names, so that benchstat puts the two side by side.
only() { # impl-regexp
  sed -n -E -e '/^Benchmark/!p' \
    -e "s#^(Benchmark[^[:space:]]*)/$1(-[0-9]+)?([[:space:]])#\\1\\2\\3#p" "$out/bench.txt"
}
only 'concurrency\.Mutex' > "$out/mutex.txt"
only 'etcdsync' > "$out/etcdsync.txt"

echo; echo "== benchstat: all results"
go run "$benchstat" "$out/bench.txt"
echo; echo "== benchstat: concurrency.Mutex (base) vs etcdsync"
go run "$benchstat" concurrency.Mutex="$out/mutex.txt" etcdsync="$out/etcdsync.txt"
