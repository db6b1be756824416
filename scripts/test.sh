#!/usr/bin/env bash
# Runs the built tests one at a time: many of them time servers, child processes and deadlines,
# and run side by side on two cores they starve each other into false failures. The full output stays in .build/test-output.log; when a test
# fails, the failures are printed again at the end, where a CI log's tail shows them.
set -uo pipefail
cd "$(dirname "$0")/.."
log=.build/test-output.log
mkdir -p .build
swift test --skip-build --no-parallel "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo
    echo "== failures (whole output in $log) =="
    grep -E '✘|error:|Fatal error|Crash|signal [0-9]+' "$log" | grep -v '^✘ Test run with' | head -60
    grep -E '^✘ Test run with' "$log"
fi
exit "$status"
