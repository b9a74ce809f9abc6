#!/usr/bin/env bash
# Runs every benchmark beside its peer with GOMAXPROCS=2, six times (benchstat needs six for its intervals), and
# prints a benchstat table, the speed targets as ratios, and the
# producer/consumer comparison with asyncio (when python3 is there).
# Usage: bench/run.sh [-benchtime D] [-count N]   (defaults: 1s, 6)
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=1s count=6
while [ $# -gt 0 ]; do
  case "$1" in
    -benchtime) benchtime=$2; shift 2 ;;
    -count) count=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [-benchtime D] [-count N]" >&2; exit 2 ;;
  esac
done
out=bench/results
mkdir -p "$out"
export GOMAXPROCS=2

echo "== machine: $(nproc) cores, $(go version), $(uname -m)"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count "$count" . | tee "$out/bench.txt"

echo; echo "== benchstat"
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/bench.txt"

echo; echo "== speed targets (medians of $count runs)"
go run ./bench/ratios < "$out/bench.txt"

echo; echo "== producer/consumer: 1,000,000 items, queue of 1,024, 4 consumers, join"
asyncio_rate=0
if command -v python3 >/dev/null; then
  line=$(python3 bench/asyncio_pc.py)
  echo "$line"
  asyncio_rate=$(echo "$line" | tr -dc '0-9')
fi
go run ./bench/pc -asyncio "$asyncio_rate"

echo; echo "== producer/consumer on a busy machine: the same workload beside one CPU-bound loop per core, 10 rounds"
busy=()
for _ in $(seq "$(nproc)"); do
  # A competing process, not a goroutine: it takes cores from the Go
  # scheduler as another service on the host would.
  sh -c 'while :; do :; done' &
  busy+=($!)
done
trap 'kill "${busy[@]}" 2>/dev/null || true' EXIT
go run ./bench/pc -rounds 10 -spread
kill "${busy[@]}" 2>/dev/null || true
trap - EXIT
