#!/usr/bin/env bash
# Validates StreamGate's deploy/ folder from the repository root; offline once .venv/ exists.
#   1. every Kubernetes manifest against the API schemas of the oldest and newest Kubernetes we
#      target (kubernetes-validate --strict, which bundles the schemas);
#   2. deploy/check_deploy.py: the KEDA ScaledObject and the VerticalPodAutoscalers (CRDs with no
#      bundled schema), that the manifests agree with each other and with StreamGate's command
#      line, the server's blue-green slots, the canary workers, PodDisruptionBudgets and HPAs, the
#      bucket store and the spool, Redis behind Sentinel, that no Secret or key is committed, the
#      systemd units' required settings and both redis.conf files;
#   3. deploy/blue-green.sh's syntax (bash -n, and a lint by shellcheck where installed), and
#      systemd-analyze verify on every unit, where it can run;
#   4. both redis.conf files loaded by a real redis-server, where one is installed, and on
#      loopback a primary, a replica and a sentinel started from redis-config.yaml the way its
#      start scripts start them (whose syntax sh -n checks);
#   5. kubectl kustomize deploy/kubernetes, where kubectl is installed.
# Every problem is printed with the file it is in; the script then exits 1. On success it prints
# "deploy: all manifests valid".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/python-env.sh

venv=.venv/bin
kubernetes_versions=(1.29.0 1.37.0)
failed=0
fail() { echo "deploy: $*" >&2; failed=1; }
note() { echo "deploy: $*"; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# 1. Kubernetes schemas.
mapfile -t manifests < <(find deploy/kubernetes -maxdepth 1 \( -name '*.yaml' -o -name '*.yml' \) ! -name kustomization.yaml | sort)
if ((${#manifests[@]} == 0)); then
  fail "deploy/kubernetes: no manifests"
fi
for version in "${kubernetes_versions[@]}"; do
  status=0
  output="$("$venv/kubernetes-validate" --strict -k "$version" "${manifests[@]}" 2>&1)" || status=$?
  reported=0
  # kubernetes-validate only warns when it has no schema for a kind. That is expected for KEDA's
  # ScaledObject and the VerticalPodAutoscaler (check_deploy.py checks both) and a failure for
  # anything else: a mistyped apiVersion would otherwise pass unchecked.
  while IFS= read -r line; do
    case "$line" in
      "" | INFO*) ;;
      WARN*"api version keda.sh/"*) ;;
      WARN*"kind VerticalPodAutoscaler with api version autoscaling.k8s.io/v1 for"*) ;;
      *) fail "Kubernetes $version: $line"; reported=1 ;;
    esac
  done <<<"$output"
  if ((status != 0 && reported == 0)); then
    fail "kubernetes-validate exited $status against Kubernetes $version: $output"
  fi
  ((status != 0 || reported)) || note "${#manifests[@]} manifests valid against the Kubernetes $version schemas (strict)"
done

# 2. Everything a schema cannot see.
if "$venv/python" deploy/check_deploy.py; then
  note "ScaledObject, VPAs, blue-green slots, canary workers, PDBs, HPAs, bucket store, Sentinel, cross-references, CLI flags, secrets, systemd units and redis.conf checked"
else
  failed=1
fi
# 3. blue-green.sh needs a cluster to run: here its syntax, and shellcheck's lint where installed.
if output="$(bash -n deploy/blue-green.sh 2>&1)"; then
  if ! command -v shellcheck >/dev/null 2>&1; then
    note "deploy/blue-green.sh parses (bash -n); shellcheck is not installed"
  elif output="$(shellcheck deploy/blue-green.sh 2>&1)"; then
    note "deploy/blue-green.sh parses (bash -n) and passes shellcheck"
  else
    fail "deploy/blue-green.sh: shellcheck: $output"
  fi
else
  fail "deploy/blue-green.sh: bash -n: $output"
fi

# 3. systemd-analyze verify. The units run /usr/local/bin/streamgate, which is not installed here,
# and verify rejects a missing executable: the copies verified point at a stub instead.
if command -v systemd-analyze >/dev/null 2>&1; then
  printf '[Unit]\nDescription=probe\n[Service]\nType=exec\nExecStart=/bin/true\n' >"$tmp/streamgate-probe.service"
  if probe="$(systemd-analyze verify --man=no "$tmp/streamgate-probe.service" 2>&1)" && [[ -z "$probe" ]]; then
    mkdir -p "$tmp/units/bin"
    printf '#!/bin/sh\nexit 0\n' >"$tmp/units/bin/streamgate"
    chmod +x "$tmp/units/bin/streamgate"
    for unit in deploy/systemd/*.service; do
      name="$(basename "$unit")"
      sed "s|/usr/local/bin/streamgate|$tmp/units/bin/streamgate|g" "$unit" >"$tmp/units/$name"
    done
    verified=1
    for unit in deploy/systemd/*.service; do
      name="$(basename "$unit")"
      target="$name"
      [[ "$name" == *@.service ]] && target="${name%@.service}@1.service"
      status=0
      output="$(systemd-analyze verify --man=no "$tmp/units/$target" 2>&1)" || status=$?
      # verify exits 0 on warnings such as an unknown directive: any output is a failure.
      if ((status != 0)) || [[ -n "$output" ]]; then
        fail "$unit: systemd-analyze verify: ${output//$tmp\/units\//deploy/systemd/}"
        verified=0
      fi
    done
    ((verified)) && note "systemd units verified by systemd-analyze"
  else
    note "systemd-analyze verify cannot run here (${probe%%$'\n'*}); the units were parsed by check_deploy.py only"
  fi
else
  note "systemd-analyze is not installed; the units were parsed by check_deploy.py only"
fi

# 4. Each redis.conf, started by a real redis-server on a private socket with no TCP port.
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  # Every file of the ConfigMap redis-config into $tmp/redis-config/ (redis.conf, sentinel.conf,
  # the start scripts).
  mkdir -p "$tmp/redis-config"
  "$venv/python" - "$tmp/redis-config" <<'PY'
import sys, yaml
with open("deploy/kubernetes/redis-config.yaml") as f:
    config = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "ConfigMap")
for name, text in config["data"].items():
    with open(f"{sys.argv[1]}/{name}", "w") as out:
        out.write(text)
PY
  cp "$tmp/redis-config/redis.conf" "$tmp/redis-config.conf"
  loaded=1
  for pair in "deploy/redis/redis.conf:deploy/redis/redis.conf" "deploy/kubernetes/redis-config.yaml:$tmp/redis-config.conf"; do
    label="${pair%%:*}"
    conf="${pair#*:}"
    dir="$(mktemp -d "$tmp/redis.XXXXXX")"
    # Redis changes to `dir` while it reads the file, before any override: point the copy at a
    # private folder (the real /data or /var/lib/redis need not exist here).
    sed "s|^dir .*|dir $dir|" "$conf" >"$dir/redis.conf"
    redis-server "$dir/redis.conf" --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize no \
      >"$dir/stdout" 2>"$dir/stderr" &
    pid=$!
    answer=""
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      answer="$(redis-cli -s "$dir/redis.sock" ping 2>/dev/null || true)"
      [[ "$answer" == PONG ]] && break
      sleep 0.1
    done
    if [[ "$answer" == PONG ]]; then
      appendonly="$(redis-cli -s "$dir/redis.sock" config get appendonly | tail -n 1)"
      [[ "$appendonly" == yes ]] || { fail "$label: redis-server runs it with appendonly $appendonly"; loaded=0; }
      redis-cli -s "$dir/redis.sock" shutdown nosave >/dev/null 2>&1 || true
    else
      fail "$label: redis-server did not start with it: $(cat "$dir/stderr" "$dir/redis.log" 2>/dev/null | grep -v '^$' | tail -n 4)"
      loaded=0
      kill "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  ((loaded)) && note "redis.conf files loaded by $(redis-server --version | cut -d' ' -f1-3)"
else
  note "redis-server is not installed; redis.conf was checked by check_deploy.py only"
fi

# 4b. Redis behind Sentinel as redis-config.yaml runs it, on loopback TCP ports: a primary and a
# replica with the arguments start-redis.sh gives (--replica-announce-ip, --replicaof), and a
# sentinel from sentinel.conf with its monitor line pointed at that primary, as start-sentinel.sh
# does. The sentinel must load the file (hostnames on, per-master settings after the monitor
# line), name the primary and find the replica.
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && [[ -f "$tmp/redis-config/sentinel.conf" ]]; then
  for script in start-redis.sh start-sentinel.sh; do
    if ! output="$(sh -n "$tmp/redis-config/$script" 2>&1)"; then
      fail "deploy/kubernetes/redis-config.yaml: $script: sh -n: $output"
    fi
  done
  read -r primary_port replica_port sentinel_port < <("$venv/python" -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
  sentinel_dir="$(mktemp -d "$tmp/sentinel.XXXXXX")"
  for role in primary replica; do
    port="${role}_port"
    mkdir -p "$sentinel_dir/$role"
    args=(--bind 127.0.0.1 --port "${!port}" --dir "$sentinel_dir/$role" --logfile "$sentinel_dir/$role.log"
      --daemonize no --replica-announce-ip 127.0.0.1)
    [[ "$role" == replica ]] && args+=(--replicaof 127.0.0.1 "$primary_port")
    sed "s|^dir .*|dir $sentinel_dir/$role|" "$tmp/redis-config/redis.conf" >"$sentinel_dir/$role.conf"
    redis-server "$sentinel_dir/$role.conf" "${args[@]}" >/dev/null 2>&1 &
    pids+=($!)
  done
  sed -e "s|^sentinel monitor streamgate [^ ]* 6379 |sentinel monitor streamgate 127.0.0.1 $primary_port |" \
    -e "s|^dir .*|dir $sentinel_dir|" "$tmp/redis-config/sentinel.conf" >"$sentinel_dir/sentinel.conf"
  echo "sentinel announce-ip 127.0.0.1" >>"$sentinel_dir/sentinel.conf"
  redis-server "$sentinel_dir/sentinel.conf" --sentinel --bind 127.0.0.1 --port "$sentinel_port" \
    --logfile "$sentinel_dir/sentinel.log" --daemonize no >/dev/null 2>&1 &
  sentinel_pid=$!
  pids+=("$sentinel_pid")
  primary="" replicas=""
  for _ in $(seq 100); do
    kill -0 "$sentinel_pid" 2>/dev/null || break
    # Not listening yet is not a failure (pipefail would make it one): ask again.
    primary="$(redis-cli -p "$sentinel_port" --raw sentinel get-master-addr-by-name streamgate 2>/dev/null | tr '\n' ' ')" || primary=""
    replicas="$(redis-cli -p "$sentinel_port" --raw sentinel replicas streamgate 2>/dev/null | grep -c "^127.0.0.1:$replica_port$" || true)"
    [[ "$primary" == "127.0.0.1 $primary_port " && "$replicas" == 1 ]] && break
    sleep 0.2
  done
  if [[ "$primary" == "127.0.0.1 $primary_port " && "$replicas" == 1 ]]; then
    note "sentinel.conf loaded by a sentinel, which found the primary and its replica"
  else
    fail "deploy/kubernetes/redis-config.yaml: the sentinel (primary '${primary:-none}', replicas found ${replicas:-0}): $(grep -v '^$' "$sentinel_dir/sentinel.log" 2>/dev/null | tail -n 4)"
  fi
  for port in "$sentinel_port" "$replica_port" "$primary_port"; do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
fi

# 5. The kustomization builds.
if command -v kubectl >/dev/null 2>&1; then
  if output="$(kubectl kustomize deploy/kubernetes 2>&1 >/dev/null)"; then
    note "kubectl kustomize deploy/kubernetes builds"
  else
    fail "deploy/kubernetes/kustomization.yaml: kubectl kustomize: $output"
  fi
fi

if ((failed)); then
  echo "deploy: validation failed" >&2
  exit 1
fi
echo "deploy: all manifests valid"
