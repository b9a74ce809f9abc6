#!/usr/bin/env bash
# The test suite. README.md and .ci/run both call this script.
#
#   ./test.sh [go test flags]   the tests of every module in the repository,
#                               with the race detector (a plain `go test ./...`
#                               at the root does not enter the nested module
#                               etcdsync/). Extra arguments go to every
#                               `go test` (for example ./test.sh -count=3).
#   ./test.sh ci-stress         CI's share of the large mode: the
#                               linearizability, ring, ordering and stress
#                               tests of the core with its preemption points
#                               (-tags stress) at a quarter of its rounds
#                               (-tags stressci); about two minutes on 2 cores.
#   ./test.sh stress            the whole large mode, every module: run it
#                               before resolving any change to a concurrency
#                               path (5 to 10 minutes on 2 cores). To fuzz,
#                               see TESTING.md.
set -euo pipefail
cd "$(dirname "$0")"
modules=(. etcdsync)

case "${1:-}" in
ci-stress)
  shift
  echo "== go test -race -tags stress,stressci (linearizability, ring, ordering, stress) in ."
  go test -race -tags stress,stressci -timeout 20m \
    -run 'Linearizable|Ring|Ordering|Stress|Storm|FuzzRingSchedule' "$@" .
  ;;
stress)
  shift
  for module in "${modules[@]}"; do
    echo "== go test -race -tags stress $* ./... in $module"
    (cd "$module" && go test -race -tags stress -timeout 60m "$@" ./...)
  done
  ;;
*)
  for module in "${modules[@]}"; do
    echo "== go test -race $* ./... in $module"
    (cd "$module" && go test -race "$@" ./...)
  done
  ;;
esac
