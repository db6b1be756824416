#!/usr/bin/env bash
# bench/publish: how soon an upload plays, and how soon it is whole, through the real stack
# (`streamgate dev`: redis-server, the origin, WORKERS workers, profiles/default.yaml), beside the
# published Mux medians and the ffmpeg command line writing the same ladder. See measure.py.
#
# Usage, from the repository root:  bench/publish/run.sh      LENGTHS=10,60,300 RUNS=3 for more;
#   SPLIT=1 (with 300 in LENGTHS) adds the split phase: one 5-minute upload by 1 and by 2 pinned
#   workers (split.sh; SPLIT_CHUNK=60 for 60 s chunks, 30 unless set), whose figures join the
#   summary line; SPLIT=only runs that phase alone.
# Sources: 720p30 testsrc2 blended with a zooming Mandelbrot set, light grain, a 440 Hz tone
# (longer than a minute: the minute looped); made once into bench/.work/. Ends with one line:
#   summary first_playable_s_10=… full_s_10=… ffmpeg_first_segment_s_10=… ffmpeg_full_s_10=… progressive_overhead_10=… (per length)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
work=$root/bench/.work/publish
lengths=${LENGTHS:-10,60}
workers=${WORKERS:-2}
port=${PORT:-18390}
bench_name=bench/publish
# shellcheck source=../lib.sh
source "$root/bench/lib.sh"
fail() { bench_fail "$@"; }

[[ $lengths =~ ^[0-9]+(,[0-9]+)*$ ]] || fail "LENGTHS must be seconds separated by commas (got '$lengths')"
bench_debian ffmpeg curl bc
bench_release_binary
mkdir -p "$work"

IFS=, read -r -a seconds_list <<<"$lengths"
# A clip is made for each length up to a minute; a longer one loops the minute (the Mandelbrot set's
# zoom grows slower to draw frame by frame, and a loop has the same motion).
make_source() { # $1: seconds, $2: output
  if (($1 > 60)); then
    make_source 60 "$work/source-720p30-60s.mp4"
    ffmpeg -hide_banner -nostdin -loglevel error -y -stream_loop $(($1 / 60)) -i "$work/source-720p30-60s.mp4" -t "$1" -c copy \
      -movflags +faststart "$work/partial.mp4" || fail "could not loop the minute into $2"
  else
    [[ -s $2 ]] && return 0
    ffmpeg -hide_banner -nostdin -loglevel error -y \
      -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=$1" \
      -f lavfi -i "mandelbrot=size=1280x720:rate=30:maxiter=256" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$1" \
      -filter_complex "[0:v]format=yuv420p[t];[1:v]format=yuv420p[m];[t][m]blend=all_mode=average,noise=alls=3:allf=t,format=yuv420p[v]" \
      -map "[v]" -map 2:a -t "$1" -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p \
      -c:a aac -b:a 192k -ac 2 -ar 48000 -movflags +faststart "$work/partial.mp4" || fail "could not make the source"
  fi
  mv "$work/partial.mp4" "$2"
}
for seconds in "${seconds_list[@]}"; do
  source=$work/source-720p30-${seconds}s.mp4
  [[ -s $source ]] && continue
  echo "bench/publish: making $source (once)" >&2
  make_source "$seconds" "$source"
done

data=$work/dev
rm -rf "$data"
"$binary" dev --data "$data" --port "$port" --workers "$workers" >"$work/dev.log" 2>&1 &
dev_pid=$!
trap 'kill -INT $dev_pid 2>/dev/null || true; wait $dev_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || fail "streamgate dev did not become ready (see $work/dev.log)"
if [[ ${SPLIT:-0} != only ]]; then
  python3 "$root/bench/publish/measure.py" "http://127.0.0.1:$port" "$(cat "$data/dev/api.key")" "$work" "$lengths" >"$work/measure.out" \
    || { cat "$work/measure.out"; fail "measure.py failed"; }
  grep -v '^summary ' "$work/measure.out"
fi
kill -INT $dev_pid 2>/dev/null || true
wait $dev_pid 2>/dev/null || true
summary=$([[ ${SPLIT:-0} != only ]] && grep '^summary ' "$work/measure.out" || echo summary)
if [[ ${SPLIT:-0} != 0 ]]; then
  # shellcheck source=split.sh
  source "$root/bench/publish/split.sh"
  summary="$summary $split_summary"
fi
echo "$summary"
