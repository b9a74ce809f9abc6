#!/usr/bin/env bash
# Tries etcdsync against external etcd server processes of the oldest and
# the newest version we claim, as a user of the module would meet them:
#
#   3.4  Debian's etcd-server package (3.4.23): $ETCD34, default /usr/bin/etcd
#        (apt-get install etcd-server; its own service is not used)
#   3.7  internal/cmd/etcdserver, built here from this module's
#        go.etcd.io/etcd/server/v3 (3.7.x)
#
# For each version it starts one member on 127.0.0.1 with ports the kernel
# picked and a data dir of its own, both with etcd's default settings
# (heartbeat 100 ms, election 1 s, fsync on), waits until /health says so,
# and runs against it:
#   - the three scenario programs (examples/migrate, replicas, shards) with
#     -endpoints; each checks its own outcome and exits 1 on a wrong one;
#   - the package's tests with ETCDSYNC_TEST_ENDPOINTS set (main_test.go),
#     under -race: the storms, the rules D1-D9, faults through the TCP proxy,
#     fencing, Release, SetSize, Barrier, Event. Tests that need an embedded
#     server of their own (a cluster of three to fail over, the embedded
#     server's settings) skip themselves and are counted as skipped.
# Then it stops the server, and at the end prints a summary table. It exits
# 1 if anything failed.
#
# Usage: etcdsync/compat/run.sh [3.4] [3.7]   (default: both)
#   TESTS=regexp  the tests to run (go test -run), default every test
#   STRESS=1      the storms and the fencing check at their large scale
#                 (-tags stress; with TESTS='TestStorm|TestFencing', about
#                 two minutes a version on 2 cores)
#
# Logs go to a new directory under ${TMPDIR:-/tmp}, removed on exit unless
# KEEP=1; nothing is written inside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.4 3.7)
for v in "${versions[@]}"; do
  case "$v" in
    3.4 | 3.7) ;;
    *) echo "usage: etcdsync/compat/run.sh [3.4] [3.7]" >&2; exit 2 ;;
  esac
done
tests=${TESTS:-.}
tags=
[ "${STRESS:-}" != 1 ] || tags=stress
etcd34=${ETCD34:-/usr/bin/etcd}

work=$(mktemp -d "${TMPDIR:-/tmp}/etcdsync-compat.XXXXXX")
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_server
  if [ "${KEEP:-}" = 1 ]; then
    echo "== logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== client: go.etcd.io/etcd/client/v3 $(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)"

mkdir -p "$work/bin"
echo "== building the scenario programs and the 3.7 server"
for p in migrate replicas shards; do
  go build -o "$work/bin/$p" "./examples/$p"
done
go build -o "$work/bin/etcdserver" ./internal/cmd/etcdserver

# free_ports prints two ports that were free a moment ago (the kernel's
# pick, both held at once so that they differ).
free_ports() {
  python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
'
}

# start_server version dir: starts a member, sets server_pid and endpoint,
# and returns once it is healthy. Another process may take a port between
# free_ports and the server's listen, so a failed start is tried again with
# fresh ports.
start_server() {
  local v=$1 dir=$2 bin cport pport try
  case "$v" in
    3.4) bin=$etcd34 ;;
    3.7) bin=$work/bin/etcdserver ;;
  esac
  for try in 1 2 3; do
    read -r cport pport < <(free_ports)
    endpoint=http://127.0.0.1:$cport
    rm -rf "$dir/data"
    "$bin" --name "compat-$v" --data-dir "$dir/data" \
      --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
      --listen-peer-urls "http://127.0.0.1:$pport" \
      --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
      --initial-cluster "compat-$v=http://127.0.0.1:$pport" \
      --log-level warn >"$dir/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        break
      fi
      if curl -fsS -m 1 "$endpoint/health" 2>/dev/null | grep -q '"health":"true"'; then
        return 0
      fi
      sleep 0.1
    done
    echo "   server did not become healthy (try $try of 3); its log:" >&2
    tail -5 "$dir/server.log" >&2
    stop_server
  done
  return 1
}

declare -A result
failed=0
for v in "${versions[@]}"; do
  dir=$work/$v
  mkdir -p "$dir"
  echo "== etcd $v"
  result[$v.server]=-
  for c in migrate replicas shards tests; do result[$v.$c]=-; done
  if ! start_server "$v" "$dir"; then
    result[$v.server]="did not start"
    failed=1
    continue
  fi
  result[$v.server]=$(curl -fsS -m 5 "$endpoint/version" | sed -n 's/.*"etcdserver":"\([^"]*\)".*/\1/p')
  echo "   server ${result[$v.server]} at $endpoint (pid $server_pid)"
  for p in migrate replicas shards; do
    start=$SECONDS
    if "$work/bin/$p" -endpoints "${endpoint#http://}" >"$dir/$p.log" 2>&1; then
      result[$v.$p]="ok $((SECONDS - start))s"
      echo "   $p: $(tail -1 "$dir/$p.log")"
    else
      result[$v.$p]=FAIL
      failed=1
      echo "   $p: FAIL; its output:"
      sed 's/^/     | /' "$dir/$p.log"
    fi
  done
  start=$SECONDS
  if ETCDSYNC_TEST_ENDPOINTS=$endpoint go test -race -tags "$tags" -count=1 -timeout 30m -v -run "$tests" ./ >"$dir/tests.log" 2>&1; then
    status=ok
  else
    status=FAIL
    failed=1
  fi
  # Top-level tests and examples only (subtests are indented).
  pass=$(grep -c '^--- PASS' "$dir/tests.log" || true)
  skip=$(grep -c '^--- SKIP' "$dir/tests.log" || true)
  fail=$(grep -c '^--- FAIL' "$dir/tests.log" || true)
  result[$v.tests]="$status $((SECONDS - start))s: $pass passed, $skip skipped, $fail failed"
  echo "   go test -race${tags:+ -tags $tags} -run '$tests' ./: ${result[$v.tests]}"
  # A skip's reason is the line before its "--- SKIP".
  awk '/^--- SKIP/ { sub(/^ +[^ ]+: /, "", prev); print "     skipped " $3 ": " prev } { prev = $0 }' "$dir/tests.log"
  if [ "$status" = FAIL ]; then
    grep -E '^(--- FAIL|FAIL|panic:)|Error Trace|Error:' "$dir/tests.log" | head -40 | sed 's/^/     | /'
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "   the server died during the run; its log:"
    tail -20 "$dir/server.log" | sed 's/^/     | /'
    failed=1
  fi
  stop_server
  rm -rf "$dir/data"
done

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
fmt='| %-7s | %-7s | %-8s | %-8s | %-8s | %-44s |\n'
# shellcheck disable=SC2059
printf "$fmt" claimed server migrate replicas shards "tests (go test -race)"
# shellcheck disable=SC2059
printf "$fmt" ------- ------- -------- -------- -------- "--------------------------------------------"
for v in "${versions[@]}"; do
  # shellcheck disable=SC2059
  printf "$fmt" "$v" "${result[$v.server]}" "${result[$v.migrate]}" "${result[$v.replicas]}" "${result[$v.shards]}" "${result[$v.tests]}"
done
exit "$failed"
