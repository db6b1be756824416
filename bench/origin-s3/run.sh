#!/usr/bin/env bash
# bench/origin-s3: StreamGate's origin reading a bucket (`streamgate serve --store s3://…`) against
# nginx as a caching reverse proxy in front of the same bucket (proxy_cache of the same size as
# StreamGate's L1, proxy_cache_lock on), both on SeaweedFS (`weed mini` from the project's venv),
# loaded with wrk on loopback in one run (issue 14).
#
# The scenarios are bench/origin's (its bench.py, in S3 mode): cold (fresh servers with empty
# caches, every segment once), hot (HOT segments over and over) and zipf (a Zipf mix over a catalogue
# larger than the cache: L1_BYTES defaults to 64 MiB here, the catalogue is about 220 MB). Besides
# req/s and latency it prints the S3 GETs each server caused per 10,000 requests (the S3 server's
# own counter), and last:
#   summary hot_rps_ratio=… hot_p99_ratio=… zipf_hit=… rss_mib=… cold_p99_ratio=… zipf_rps_ratio=…
#           cold_gets_per_10k=… nginx_cold_gets_per_10k=… zipf_gets_per_10k=… nginx_zipf_gets_per_10k=…
#
# StreamGate signs every request (SigV4); nginx cannot, so the bucket also lets anonymous clients
# read: nginx's requests are the cheaper ones.
#
# Usage from the repository root:  bench/origin-s3/run.sh
# Knobs: bench/origin's (ROUNDS, COLD_ROUNDS, DURATION, WARMUP, CONNECTIONS, THREADS, HOT, ZIPF_S,
#   SOURCE_SECONDS, SERVE_ARGS, STREAMGATE), with L1_BYTES=67108864. The asset is bench/origin's
#   (bench/.work/origin/asset-<key>/), uploaded once into a SeaweedFS folder kept in
#   bench/.work/origin-s3/weed-<key>/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
started=$(date +%s.%N)
bench=bench/origin-s3
fail() { echo "$bench: $*" >&2; exit 1; }
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
l1_bytes=${L1_BYTES:-67108864}
source_seconds=${SOURCE_SECONDS:-540}
serve_args=${SERVE_ARGS:-}

bench_debian nginx-light wrk ffmpeg openssl curl python3 util-linux
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || fail "nginx is missing (apt-get install nginx-light)"
bench_release_binary

# The asset: bench/origin's, made there once.
work=$root/bench/.work/origin
mkdir -p "$work"
# shellcheck source=../origin/asset.sh
source "$root/bench/origin/asset.sh"
origin_bench_asset
version=$(basename "$(readlink "$store/assets/bench")")
[[ $version == v* ]] || fail "the asset in $store has no published version"

work=$root/bench/.work/origin-s3
mkdir -p "$work"
exec 9>"$work/lock"
flock -n 9 || fail "another $bench is running (lock $work/lock)"
: >"$work/pids"

# --- SeaweedFS, its data kept per asset so the upload happens once ----------------------------------

data=$work/weed-$asset_key
bench_seaweedfs "$data" bench 1
echo "$weed_pid" >>"$work/pids"
trap 'kill -TERM $weed_pid 2>/dev/null || true; wait $weed_pid 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
access_key=$s3_access_key
secret_key=$s3_secret_key
endpoint=$s3_endpoint
metrics_port=$s3_metrics_port

# --- The asset's version in the bucket (objects, then the pointer), once --------------------------

if [[ ! -f $data/uploaded-$version ]]; then
  echo "$bench: uploading version $version of the asset to s3://bench/sg" >&2
  folder=$store/objects/bench/$version
  (cd "$folder" && find . -type f ! -name '.*' -printf '%P\n') \
    | xargs -P 8 -I{} curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
        -T "$folder/{}" "$endpoint/bench/sg/objects/bench/$version/{}" -o /dev/null \
    || fail "uploading the asset failed"
  printf '{"version":"%s"}' "$version" | curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
    -H 'Content-Type: application/json' -T - "$endpoint/bench/sg/assets/bench" -o /dev/null || fail "writing the pointer failed"
  touch "$data/uploaded-$version"
fi

# --- Measure ---------------------------------------------------------------------------------------

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "$bench: StreamGate $binary (commit $commit), $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), SeaweedFS $("$root/.venv/bin/weed" version 2>/dev/null | head -n1), $cores cores"
AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key AWS_REGION=us-east-1 BENCH_ORIGIN_COMMIT=$commit \
  python3 "$root/bench/origin/bench.py" \
  --streamgate "$binary" --nginx "$nginx" --store "$store" --asset bench --master-key-file "$key_file" \
  --work "$work" --rounds "$rounds" --cold-rounds "$cold_rounds" --duration "$duration" --warmup "$warmup" \
  --connections "$connections" --threads "$threads" --hot "$hot" --zipf-s "$zipf_s" --l1-bytes "$l1_bytes" --drop-caches 1 \
  --serve-args="$serve_args" --asset-key "$asset_key" --started "$started" \
  --s3-store s3://bench/sg --s3-endpoint "$endpoint" --s3-version-path "/bench/sg/objects/bench/$version/" \
  --s3-metrics-port "$metrics_port"
