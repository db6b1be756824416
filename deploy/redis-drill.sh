#!/usr/bin/env bash
# A failover drill of kubernetes/redis-config.yaml on this machine, no cluster needed: three Redis
# "pods" and three sentinels run the ConfigMap's start-redis.sh and start-sentinel.sh unchanged,
# each with its pod's DNS name (an /etc/hosts of their own on 127.0.1.x and 127.0.2.x) and its own
# /data, in private mount and network namespaces, so nothing on the host is touched or in the way.
# It checks what the scripts exist for:
#   1. a new cluster: redis-0 becomes the primary, the others its replicas, the sentinels agree;
#   2. the primary SIGKILLed after a write acknowledged with WAIT 1: a replica is promoted, the
#      write is there;
#   3. the old primary restarted: it asks the sentinels and comes back as a replica of the new one;
#   4. a sentinel restarted with its state lost: it asks its peers and monitors the new primary.
# Needs root (unshare), redis-server, redis-cli and ip; takes about a minute. Run from anywhere:
#   sudo deploy/redis-drill.sh
# Prints "redis-drill: passed" or the step that failed, and exits 1 then.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${REDIS_DRILL_INSIDE:-}" ]]; then
  for tool in unshare redis-server redis-cli ip timeout getent; do
    command -v "$tool" >/dev/null || { echo "redis-drill: $tool is not installed" >&2; exit 1; }
  done
  ((EUID == 0)) || { echo "redis-drill: needs root for its namespaces (sudo $0)" >&2; exit 1; }
  exec env REDIS_DRILL_INSIDE=1 unshare --mount --net --propagation private "$0" "$@"
fi

ip link set lo up
work="$(mktemp -d)"
pids=()
created=()  # mount points this drill had to make on the host, removed again at the end
cleanup() {
  set +e  # a pod already gone must not stop the cleanup
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  for dir in "${created[@]}"; do umount "$dir" 2>/dev/null || true; rmdir "$dir" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "redis-drill: $*" >&2
  for log in "$work"/pods/*.log; do echo "--- ${log##*/}"; tail -n 5 "$log"; done >&2
  exit 1
}

# The ConfigMap's files, as the pods mount them at /etc/redis.
mkdir -p "$work/etc-redis" "$work/bin" "$work/pods"
"$root/.venv/bin/python" - "$root/deploy/kubernetes/redis-config.yaml" "$work/etc-redis" <<'PY' ||
import sys, yaml
config = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "ConfigMap")
for name, text in config["data"].items():
    open(f"{sys.argv[2]}/{name}", "w").write(text)
PY
  fail "cannot read redis-config.yaml (run deploy/validate.sh once to create .venv)"

# The pods' DNS names, as the headless Services give them.
domain=streamgate.svc.cluster.local
redis_name() { echo "redis-$1.redis-headless.$domain"; }
sentinel_name() { echo "redis-sentinel-$1.redis-sentinel-headless.$domain"; }
redis_ip() { echo "127.0.1.$(($1 + 1))"; }
sentinel_ip() { echo "127.0.2.$(($1 + 1))"; }
{
  echo "127.0.0.1 localhost"
  for i in 0 1 2; do
    echo "$(redis_ip "$i") $(redis_name "$i") redis-$i"
    echo "$(sentinel_ip "$i") $(sentinel_name "$i") redis-sentinel-$i"
  done
} >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts
# The pods' paths need a directory to mount on; the mounts stay in this namespace.
for dir in /etc/redis /data; do
  [[ -d "$dir" ]] || { mkdir "$dir" && created+=("$dir"); }
done
mount --bind "$work/etc-redis" /etc/redis

# What a pod has that this host does not: `hostname -f` answering its DNS name, and an address of
# its own (redis.conf binds every address; here each binds its pod's).
cat >"$work/bin/hostname" <<'SH'
#!/bin/sh
if [ "${1:-}" = -f ]; then echo "$POD_NAME"; else echo "${POD_NAME%%.*}"; fi
SH
cat >"$work/bin/redis-server" <<SH
#!/bin/sh
exec $(command -v redis-server) "\$@" --bind "\$POD_IP"
SH
chmod +x "$work/bin/hostname" "$work/bin/redis-server"

# pod NAME IP SCRIPT: the start script in a mount namespace of its own, where /data is the pod's.
# Every exec keeps the PID, so the one recorded is the Redis it ends in.
pod() {
  mkdir -p "$work/pods/${1%%.*}"
  unshare --mount --propagation private sh -c '
    mount --bind "$0" /data && exec env PATH="$1:$PATH" POD_NAME="$2" POD_IP="$3" sh "/etc/redis/$4"
  ' "$work/pods/${1%%.*}" "$work/bin" "$1" "$2" "$3" >>"$work/pods/${1%%.*}.log" 2>&1 &
  pids+=($!)
}
start_redis() { pod "$(redis_name "$1")" "$(redis_ip "$1")" start-redis.sh; }
start_sentinel() { pod "$(sentinel_name "$1")" "$(sentinel_ip "$1")" start-sentinel.sh; }
cli() { timeout 3 redis-cli -h "$1" -p "$2" "${@:3}" 2>/dev/null | tr -d '\r'; }
field() { cli "$(sentinel_ip "$1")" 26379 sentinel master streamgate | grep -A1 -x "$2" | tail -n 1; }
primary_of() { cli "$(sentinel_ip "$1")" 26379 sentinel get-master-addr-by-name streamgate | head -n 1; }
pid_of() { cli "$1" "$2" info server | sed -n 's/^process_id://p'; }
# kill_pod PID: SIGKILL, as a node lost would; waited for here so bash reports nothing.
kill_pod() { kill -KILL "$1"; wait "$1" 2>/dev/null || true; }
# until SECONDS DESCRIPTION COMMAND…: polls the command until it succeeds.
until_ok() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do ((SECONDS < deadline)) || fail "$what: not after ${deadline}s"; sleep 0.5; done
}
sentinels_agree() {  # every sentinel: primary $1, two replicas, two other sentinels
  for i in 0 1 2; do
    [[ "$(primary_of "$i")" == "$1" && "$(field "$i" num-slaves)" == 2 && "$(field "$i" num-other-sentinels)" == 2 ]] || return 1
  done
}
# role_is N WORD…: the first lines of redis-N's ROLE are these words (`master`, `slave HOST`).
role_is() { [[ "$(cli "$(redis_ip "$1")" 6379 role | head -n "$(($# - 1))" | tr '\n' ' ')" == "${*:2} " ]]; }

echo "redis-drill: 1. a new cluster"
for i in 0 1 2; do start_redis "$i"; sleep 1; done
for i in 0 1 2; do start_sentinel "$i"; done
until_ok 40 "the sentinels agree on redis-0 with two replicas" sentinels_agree "$(redis_name 0)"
role_is 1 slave "$(redis_name 0)" || fail "redis-1 is not a replica of redis-0"

echo "redis-drill: 2. the primary killed after a write acknowledged by a replica"
cli "$(redis_ip 0)" 6379 set drill acknowledged >/dev/null
[[ "$(cli "$(redis_ip 0)" 6379 wait 1 2000)" -ge 1 ]] || fail "WAIT 1 found no replica"
kill_pod "$(pid_of "$(redis_ip 0)" 6379)"
promoted=""
find_promoted() {
  promoted="$(primary_of 0)"
  [[ -n "$promoted" && "$promoted" != "$(redis_name 0)" && "$(primary_of 1)" == "$promoted" ]]
}
until_ok 40 "a replica promoted" find_promoted
index="${promoted#redis-}"
index="${index%%.*}"
until_ok 10 "$promoted answering as the primary" role_is "$index" master
[[ "$(cli "$(redis_ip "$index")" 6379 get drill)" == acknowledged ]] || fail "the acknowledged write is not on $promoted"

echo "redis-drill: 3. the old primary restarted"
start_redis 0
until_ok 30 "redis-0 back as a replica of $promoted" role_is 0 slave "$promoted"
until_ok 30 "the sentinels see redis-0 as a replica" sentinels_agree "$promoted"

echo "redis-drill: 4. a sentinel restarted with its state lost"
kill_pod "$(pid_of "$(sentinel_ip 1)" 26379)"
rm -f "$work/pods/redis-sentinel-1/sentinel.conf"
start_sentinel 1
until_ok 40 "sentinel-1 back, monitoring $promoted" sentinels_agree "$promoted"

echo "redis-drill: passed"
