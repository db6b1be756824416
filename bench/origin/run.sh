#!/usr/bin/env bash
# bench/origin: StreamGate's origin (`streamgate serve`) against nginx serving the same encrypted
# segments from the same store folder, loaded with wrk on loopback, in one run (issue 4).
#
# Scenarios, each ROUNDS times per server (cold: COLD_ROUNDS), alternating which server goes
# first; medians:
#   cold  a fresh server after the page cache is emptied, every segment requested once, in order;
#   hot   HOT (8) segments requested over and over for DURATION s;
#   zipf  a Zipf(ZIPF_S) mix over every segment (≥ 1,000) for DURATION s after WARMUP s, with
#         StreamGate's L1 hit rate from its /metrics counters.
# Prints req/s, MB/s, p50 and p99 per scenario and server, the ratios StreamGate ÷ nginx, the
# origin's peak RSS, and last:
#   summary hot_rps_ratio=… hot_p99_ratio=… zipf_hit=… rss_mib=…
#
# Baseline mode, BASELINE_BINARY=/path/to/old/streamgate: an older StreamGate (`baseline`) runs beside
# the new one on the same asset with the same arguments (BASELINE_SERVE_ARGS instead of SERVE_ARGS,
# which it defaults to), in every scenario and round (order streamgate, baseline, nginx, reversed
# every other round), and the report adds the ratios StreamGate ÷ baseline; the summary gains
#   hot_rps_vs_baseline=… hot_p99_vs_baseline=… cpu_per_req_vs_baseline=… zipf_rps_vs_baseline=… zipf_cpu_per_req_vs_baseline=…
#
# Usage from the repository root:  bench/origin/run.sh
#   BASELINE_BINARY=../old/.build/release/streamgate bench/origin/run.sh
# Knobs (environment): ROUNDS=3 (hot and zipf) COLD_ROUNDS=5 DURATION=15 WARMUP=10 CONNECTIONS=64 THREADS=(2 on ≤ 2 cores, else 4)
#   HOT=8 ZIPF_S=1.1 L1_BYTES=268435456 SOURCE_SECONDS=540 DROP_CACHES=1 SERVE_ARGS="" REGENERATE=0
#   STREAMGATE=/path/to/streamgate (else the release build in .build, as `make release` and every bench use it,
#   built when missing or stale) BASELINE_BINARY="" BASELINE_SERVE_ARGS (unset: SERVE_ARGS)
# The asset (made once, kept in bench/.work/origin/asset-<key>/ and reused while the profile and the
# source settings stay the same) is a SOURCE_SECONDS s 960x540 clip transcoded with
# bench/origin/profile.yaml. It installs nginx-light, wrk and ffmpeg from Debian if they are missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
work=$root/bench/.work/origin
started=$(date +%s.%N)

fail() { echo "bench/origin: $*" >&2; exit 1; }
bench=bench/origin
# shellcheck source=../lib.sh
source "$root/bench/lib.sh"

cores=$(nproc 2>/dev/null || echo 2)
rounds=${ROUNDS:-3}
cold_rounds=${COLD_ROUNDS:-5}
duration=${DURATION:-15}
warmup=${WARMUP:-10}
connections=${CONNECTIONS:-64}
threads=${THREADS:-$(( cores <= 2 ? 2 : 4 ))}
hot=${HOT:-8}
zipf_s=${ZIPF_S:-1.1}
l1_bytes=${L1_BYTES:-268435456}
source_seconds=${SOURCE_SECONDS:-540}
drop_caches=${DROP_CACHES:-1}
serve_args=${SERVE_ARGS:-}
baseline=${BASELINE_BINARY:-}
baseline_serve_args=${BASELINE_SERVE_ARGS-$serve_args} # set, even empty, it replaces SERVE_ARGS for the baseline
for pair in "ROUNDS=$rounds" "COLD_ROUNDS=$cold_rounds" "DURATION=$duration" "WARMUP=$warmup" "CONNECTIONS=$connections" "THREADS=$threads" \
            "HOT=$hot" "L1_BYTES=$l1_bytes" "SOURCE_SECONDS=$source_seconds"; do
  [[ ${pair#*=} =~ ^[1-9][0-9]*$ ]] || fail "${pair%%=*} must be a positive whole number (got '${pair#*=}')"
done
[[ $zipf_s =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "ZIPF_S must be a number (got '$zipf_s')"
[[ $drop_caches == 0 || $drop_caches == 1 ]] || fail "DROP_CACHES must be 0 or 1"
((connections >= threads)) || fail "CONNECTIONS ($connections) must be at least THREADS ($threads)"

mkdir -p "$work"
exec 9>"$work/lock"
flock -n 9 || fail "another bench/origin is running (lock $work/lock)"
: >"$work/pids" # this run's pids only: never stop a process an earlier run left behind by number

# --- Cleanup: the measuring script stops its servers itself; this catches what it could not --------

driver_pid=
cleanup() {
  if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null || true
    wait "$driver_pid" 2>/dev/null || true
  fi
  # Servers and wrk processes this run started (bench.py writes each pid there): stop those still alive.
  if [[ -f $work/pids ]]; then
    while read -r pid; do
      [[ $pid =~ ^[0-9]+$ ]] || continue
      if kill -0 "$pid" 2>/dev/null && grep -qaE 'serve|nginx|wrk' "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done <"$work/pids"
  fi
  rm -f "$work"/asset-*/source.partial.mp4
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tools from Debian ----------------------------------------------------------------------------

find_nginx() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }
missing=()
[[ -n $(find_nginx) ]] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
  # Debian 12 still has nginx-light (a transitional package for nginx); later releases only nginx.
  apt_install "${missing[@]}" || {
    [[ " ${missing[*]} " == *" nginx-light "* ]] && apt_install "${missing[@]/nginx-light/nginx}"
  } || fail "could not install ${missing[*]} with apt-get"
fi
nginx=$(find_nginx)
[[ -n $nginx ]] || fail "nginx is missing (apt-get install nginx-light)"
command -v wrk >/dev/null 2>&1 || fail "wrk is missing (apt-get install wrk)"
command -v ffmpeg >/dev/null 2>&1 || fail "ffmpeg is missing (apt-get install ffmpeg)"

# --- StreamGate ------------------------------------------------------------------------------------

bench_release_binary
"$binary" serve --help >/dev/null 2>&1 || fail "$binary has no working 'serve' command"
baseline_about=
if [[ -n $baseline ]]; then
  [[ -x $baseline && -f $baseline ]] || fail "BASELINE_BINARY=$baseline is not an executable file"
  "$baseline" serve --help >/dev/null 2>&1 || fail "BASELINE_BINARY=$baseline has no working 'serve' command"
  # The commit of the work tree it sits in, when it sits in one (what it was most likely built from).
  baseline_commit=
  if baseline_tree=$(git -C "$(dirname "$baseline")" rev-parse --show-toplevel 2>/dev/null); then
    baseline_commit=$(git -C "$baseline_tree" rev-parse --short HEAD 2>/dev/null || true)
    if [[ -n $(git -C "$baseline_tree" status --porcelain -- Sources Package.swift 2>/dev/null | head -c1) ]]; then
      baseline_commit="$baseline_commit (Sources modified)"
    fi
  fi
  baseline_about=", baseline $baseline${baseline_commit:+ (its work tree at $baseline_commit)}"
fi

# --- The asset, made once per (profile, source settings) -------------------------------------------

# shellcheck source=asset.sh
source "$root/bench/origin/asset.sh"
origin_bench_asset

# --- Measure ---------------------------------------------------------------------------------------

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- Sources Package.swift 2>/dev/null | head -c1)
echo "bench/origin: StreamGate $binary (commit $commit${dirty:+, Sources modified})$baseline_about, $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}'); $cores cores"
BENCH_ORIGIN_COMMIT="$commit${dirty:+ (Sources modified)}" BENCH_ORIGIN_BASELINE_COMMIT="${baseline_commit:-}" \
  python3 "$root/bench/origin/bench.py" \
  --streamgate "$binary" --nginx "$nginx" --store "$store" --asset bench --master-key-file "$key_file" \
  --work "$work" --rounds "$rounds" --cold-rounds "$cold_rounds" --duration "$duration" --warmup "$warmup" --connections "$connections" \
  --threads "$threads" --hot "$hot" --zipf-s "$zipf_s" --l1-bytes "$l1_bytes" --drop-caches "$drop_caches" \
  --serve-args="$serve_args" --baseline "$baseline" --baseline-serve-args="$baseline_serve_args" \
  --asset-key "$asset_key" --started "$started" &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=
exit "$status"
