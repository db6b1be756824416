#!/usr/bin/env bash
# bench/hostile: hostile media through a real farm. Over a thousand damaged, crafted and absurd files
# (bench/hostile/generate.py, deterministic from SEED) are uploaded through the job API
# (`POST /v1/uploads?profile=fast`) of a stack started here on loopback — redis-server,
# `streamgate serve` with an API key, `streamgate farm --workers WORKERS --job-timeout JOB_TIMEOUT` —
# with a canary TCP/UDP listener and canary files outside the store. Every job is followed to its
# end; the report gives outcomes overall and by kind, failure reasons, the longest attempt, and
# the safety properties: no canary connection, no crafted file publishing what it names,
# playlists/manifests/lists refused as "not accepted", caps holding, no worker or transcode crash,
# no job past its limit, the server and Redis up throughout, nothing left behind.
#
# StreamGate only: there is no anchor and no ratio. Last line:
#   summary files=N per_minute=… failed=… dead=… succeeded=… crashed_workers=0 canary_connections=0 escaped=0 …
# Exits 1 when a safety property fails.
#
# Usage from the repository root:  bench/hostile/run.sh
# Knobs (environment): SEED=1 WORKERS=2 JOB_TIMEOUT=120 UPLOADS=4 (uploads at once) STALL (s without any job
#   event before giving up; 3 × JOB_TIMEOUT) ONLY (a regular expression: only kinds matching it)
#   FARM_ARGS SERVE_ARGS (more `farm` / `serve` options, e.g. FARM_ARGS="--memory-limit-mib 2048")
#   STREAMGATE=/path/to/streamgate (else the release build in .build, as `make release` and every bench use it,
#   built when missing or older than Sources/)
# Files and the last run's stack (logs, store) stay in bench/.work/hostile/; results in bench/.work/hostile/results/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
work=$root/bench/.work/hostile

fail() { echo "bench/hostile: $*" >&2; exit 1; }
bench=bench/hostile
# shellcheck source=../lib.sh
source "$root/bench/lib.sh"

seed=${SEED:-1}
workers=${WORKERS:-2}
job_timeout=${JOB_TIMEOUT:-120}
uploads=${UPLOADS:-4}
stall=${STALL:-0}
for pair in "SEED=$seed" "WORKERS=$workers" "JOB_TIMEOUT=$job_timeout" "UPLOADS=$uploads"; do
  [[ ${pair#*=} =~ ^[1-9][0-9]*$ ]] || fail "${pair%%=*} must be a positive whole number (got '${pair#*=}')"
done
[[ $stall =~ ^[0-9]+$ ]] || fail "STALL must be a whole number of seconds (got '$stall')"

mkdir -p "$work"
exec 9>"$work/lock"
flock -n 9 || fail "another bench/hostile is running (lock $work/lock)"
: >"$work/pids" # this run's pids only: never stop a process an earlier run left behind by number

driver_pid=
cleanup() {
  if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null || true
    wait "$driver_pid" 2>/dev/null || true
  fi
  # What the driver started (it writes each pid there) and could not stop itself.
  if [[ -f $work/pids ]]; then
    while read -r pid; do
      [[ $pid =~ ^[0-9]+$ ]] || continue
      if kill -0 "$pid" 2>/dev/null && grep -qaE 'redis-server|streamgate' "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done <"$work/pids"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tools from Debian -----------------------------------------------------------------------------

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
  apt_install "${missing[@]}" || fail "could not install ${missing[*]} with apt-get"
fi
command -v ffmpeg >/dev/null 2>&1 || fail "ffmpeg is missing (apt-get install ffmpeg)"
command -v redis-server >/dev/null 2>&1 || fail "redis-server is missing (apt-get install redis-server)"

# --- StreamGate ------------------------------------------------------------------------------------

bench_release_binary
"$binary" farm --help >/dev/null 2>&1 || fail "$binary has no working 'farm' command"

# --- Run -------------------------------------------------------------------------------------------

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- Sources Package.swift 2>/dev/null | head -c1)
echo "bench/hostile: StreamGate $binary (commit $commit${dirty:+, Sources modified}), $(ffmpeg -version | head -n1 | cut -d' ' -f1-3), $(redis-server --version | awk '{print $1, $3}'); $(nproc) cores, $(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/load /')"
python3 "$root/bench/hostile/drive.py" --root "$root" --work "$work" --streamgate "$binary" --pids "$work/pids" \
  --seed "$seed" --workers "$workers" --job-timeout "$job_timeout" --uploads "$uploads" --stall "$stall" \
  --farm-args "${FARM_ARGS:-}" --serve-args "${SERVE_ARGS:-}" --only "${ONLY:-}" --commit "$commit${dirty:+ (Sources modified)}" &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=
exit "$status"
