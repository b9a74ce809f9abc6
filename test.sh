#!/usr/bin/env bash
# The whole test suite: the tests of every module in the repository, with
# the race detector. A plain `go test ./...` at the root does not enter the
# nested module etcdsync/, so each module is run in turn. Extra arguments
# go to every `go test` (for example ./test.sh -count=3).
set -euo pipefail
cd "$(dirname "$0")"
for module in . etcdsync; do
  echo "== go test -race $* ./... in $module"
  (cd "$module" && go test -race "$@" ./...)
done
