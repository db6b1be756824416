#!/usr/bin/env bash
# bench/publish/split.sh: one long upload split across workers (profiles/default.yaml with
# chunk_duration: SPLIT_CHUNK, 30 s unless set), published by 1 worker and by 2, each worker pinned to a core of its own
# (taskset; libx264 sizes its threads from the affinity it inherits, so each encoder keeps to its
# core): what adding a machine adds. Sourced by run.sh after the sources exist; prints
#   split full_s_300_w1=… full_s_300_w2=… split_speedup=…
# Needs: $binary, $work, $root, fail.

split_length=${SPLIT_LENGTH:-300}
split_source=$work/source-720p30-${split_length}s.mp4
[[ -s $split_source ]] || fail "the split phase needs $split_source (LENGTHS must include $split_length)"
(($(nproc) >= 2)) || fail "the split phase pins two workers to two cores; this machine has $(nproc)"
bench_debian redis-server util-linux

split_dir=$work/split
rm -rf "$split_dir" && mkdir -p "$split_dir"
split_chunk=${SPLIT_CHUNK:-30}
[[ $split_chunk =~ ^[0-9]+$ ]] || fail "SPLIT_CHUNK must be whole seconds (got '$split_chunk')"
sed "s/^name: default\$/name: split\nchunk_duration: $split_chunk/" "$root/profiles/default.yaml" >"$split_dir/split.yaml"
grep -q "^chunk_duration: $split_chunk\$" "$split_dir/split.yaml" || fail "could not make the split profile"
split_port=$((port + 1))
redis-server --port "$split_port" --save '' --appendonly no --daemonize no >"$split_dir/redis.log" 2>&1 &
split_redis=$!
export STREAMGATE_REDIS_URL=redis://127.0.0.1:$split_port
STREAMGATE_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export STREAMGATE_MASTER_KEY
for _ in $(seq 1 50); do redis-cli -p "$split_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Seconds from enqueue to published, with `count` workers pinned to cores 0…count-1.
split_publish() { # $1: worker count
  local count=$1 pids=() job started state
  for ((core = 0; core < count; core++)); do
    taskset -c "$core" "$binary" worker --store "$split_dir/store" --id "pinned$core" --profiles "$root/profiles" \
      >"$split_dir/worker-$count-$core.log" 2>&1 &
    pids+=($!)
  done
  sleep 1
  started=$(date +%s.%N)
  job=$("$binary" enqueue "$split_source" --profile "$split_dir/split.yaml" --asset-id "split-w$count" | awk '{print $2}')
  while true; do
    state=$(redis-cli -p "$split_port" hget "{sg}:job:$job" state)
    case $state in
      succeeded) break ;;
      failed | dead | cancelled) fail "split job $job ended $state: $(redis-cli -p "$split_port" hget "{sg}:job:$job" error)" ;;
    esac
    sleep 0.05
  done
  echo "$(date +%s.%N) - $started" | bc -l
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}

w1=$(split_publish 1)
w2=$(split_publish 2)
kill "$split_redis" 2>/dev/null || true
printf '%8s %8s %14s %14s %8s\n' "source" "chunks" "1 worker" "2 workers" "ratio"
printf '%7ss %7ss %13.1fs %13.1fs %8.3f\n' "$split_length" "$split_chunk" "$w1" "$w2" "$(echo "$w2 / $w1" | bc -l)"
split_summary=$(printf 'full_s_%s_w1=%.1f full_s_%s_w2=%.1f split_speedup=%.3f' "$split_length" "$w1" "$split_length" "$w2" "$(echo "$w2 / $w1" | bc -l)")
