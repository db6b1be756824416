#!/usr/bin/env bash
# bench/gate: StreamGate's NFT gate under load (issue 5) — key authorisation, sign-in verification,
# and how many JSON-RPC HTTP requests a burst of key requests costs, with and without Multicall3.
#
# StreamGate only: no other tool does this job (SIWE sign-in, playback tokens, on-chain ownership
# cached and revoked by logs, then an HLS key), so there is no anchor to run beside it and no ratio.
#
# Set-up: redis-server on a Unix socket, the local chain (fixtures/chain/chain.py), the fixture
# fixtures/good/short.mp4 transcoded with profiles/fast.yaml, `streamgate serve` with gating on, an
# erc721 policy, one token minted to each of HOLDERS accounts, every holder signed in (SIWE) → tokens.
#   key_auth  wrk GET /v/gated/keys/<id> with Bearer tokens cycling over the holders, WARMUP s then DURATION s;
#   siwe      SIWE_N signed messages, each POSTed to /v1/auth/siwe once: verifications (200s) per second;
#   rpc       a fresh serve with the ownership answers deleted from Redis, RPC_REQUESTS key requests from the
#             holders: HTTP requests StreamGate made to the chain for ownership (follower polls apart),
#             without and with --multicall.
# Last line:
#   summary key_auth_per_s=… key_auth_p99_ms=… siwe_per_s=… rpc_calls=… rpc_calls_multicall=…
#
# Usage from the repository root:  bench/gate/run.sh
# Knobs (environment): DURATION=15 WARMUP=5 CONNECTIONS=8 BURST_CONNECTIONS=100 THREADS=2 HOLDERS=100 SIWE_N=3000
#   RPC_REQUESTS=10000 SERVE_ARGS="" (more `serve` options)
#   STREAMGATE=/path/to/streamgate (else the release build in .build, as `make release` and every bench use it,
#   built when missing or stale)
# It installs wrk and redis-server from Debian if they are missing, and the .venv (eth-account, the
# chain's packages) with scripts/python-env.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
work=$root/bench/.work/gate
started=$(date +%s.%N)

fail() { echo "bench/gate: $*" >&2; exit 1; }
bench=bench/gate
# shellcheck source=../lib.sh
source "$root/bench/lib.sh"

duration=${DURATION:-15}
warmup=${WARMUP:-5}
# key_auth: 8 connections already keep both cores busy (the same req/s as 64); more only queue
# requests (at 30,000/s, 64 connections in flight are 2 ms of waiting by Little's law alone).
connections=${CONNECTIONS:-8}
# siwe and rpc: a crowd arriving at once (rpc: one connection per holder, so every holder's first
# key request is in flight together and batching, not the load generator, sets the call count).
burst_connections=${BURST_CONNECTIONS:-100}
threads=${THREADS:-2}
holders=${HOLDERS:-100}
siwe_n=${SIWE_N:-3000}
rpc_requests=${RPC_REQUESTS:-10000}
serve_args=${SERVE_ARGS:-}
for pair in "DURATION=$duration" "WARMUP=$warmup" "CONNECTIONS=$connections" "BURST_CONNECTIONS=$burst_connections" "THREADS=$threads" "HOLDERS=$holders" \
            "SIWE_N=$siwe_n" "RPC_REQUESTS=$rpc_requests"; do
  [[ ${pair#*=} =~ ^[1-9][0-9]*$ ]] || fail "${pair%%=*} must be a positive whole number (got '${pair#*=}')"
done
((connections >= threads && burst_connections >= threads)) || fail "CONNECTIONS and BURST_CONNECTIONS must be at least THREADS ($threads)"
((siwe_n >= burst_connections && rpc_requests >= burst_connections)) || fail "SIWE_N and RPC_REQUESTS must be at least BURST_CONNECTIONS ($burst_connections)"

mkdir -p "$work"
exec 9>"$work/lock"
flock -n 9 || fail "another bench/gate is running (lock $work/lock)"
: >"$work/pids" # this run's pids only: never stop a process an earlier run left behind by number

# --- Cleanup: the driver stops its processes itself; this catches what it could not -------------------

driver_pid=
cleanup() {
  if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null || true
    wait "$driver_pid" 2>/dev/null || true
  fi
  # Processes this run started (bench.py writes each pid there): stop those still alive.
  if [[ -f $work/pids ]]; then
    while read -r pid; do
      [[ $pid =~ ^[0-9]+$ ]] || continue
      if kill -0 "$pid" 2>/dev/null && grep -qaE 'serve|redis-server|chain\.py|wrk' "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done <"$work/pids"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tools from Debian, the Python environment ---------------------------------------------------------

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
  apt_install "${missing[@]}" || fail "could not install ${missing[*]} with apt-get"
fi
command -v wrk >/dev/null 2>&1 || fail "wrk is missing (apt-get install wrk)"
command -v redis-server >/dev/null 2>&1 || fail "redis-server is missing (apt-get install redis-server)"

python=$root/.venv/bin/python
if ! "$python" -c 'import eth_account' >/dev/null 2>&1; then
  echo "bench/gate: setting up .venv (scripts/python-env.sh: eth-account and the local chain's packages)" >&2
  bash "$root/scripts/python-env.sh" >&2 || fail "scripts/python-env.sh failed"
fi
"$python" -c 'import eth_account' >/dev/null 2>&1 || fail "$python cannot import eth_account (bash scripts/python-env.sh)"

# --- StreamGate ------------------------------------------------------------------------------------------

bench_release_binary
serve_help=$("$binary" serve --help 2>&1) || fail "$binary has no working 'serve' command"
[[ $serve_help == *--siwe-domain* ]] || fail "$binary has no 'serve --siwe-domain' (NFT gating)"

# --- Measure ---------------------------------------------------------------------------------------------

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- Sources Package.swift 2>/dev/null | head -c1)
echo "bench/gate: StreamGate $binary (commit $commit${dirty:+, Sources modified}), $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}'), $(redis-server --version | awk '{print $1, $3}'); $(nproc) cores, $(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/load /')"
"$python" "$root/bench/gate/bench.py" \
  --streamgate "$binary" --work "$work" --holders "$holders" --duration "$duration" --warmup "$warmup" \
  --connections "$connections" --burst-connections "$burst_connections" --threads "$threads" --siwe-n "$siwe_n" --rpc-requests "$rpc_requests" \
  --serve-args "$serve_args" --started "$started" --commit "$commit${dirty:+ (Sources modified)}" &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=
exit "$status"
