"""Redis: the queue's Redis behind Sentinel on Kubernetes (a primary, replicas, three sentinels,
all found by DNS name) and both redis.conf files, which must keep the queue durable and bounded."""

from __future__ import annotations

import re
from pathlib import Path

from .common import (
    CLUSTER_SUFFIX, K8S, RECONNECT_WINDOW_MS, REDIS_HOST, REDIS_PODS, SENTINEL_MASTER, SENTINELS,
    SERVER_SLOTS, WORKER, containers, find, flag, pod_spec, problem,
)


def check_redis(docs) -> None:
    path, doc = find(docs, "StatefulSet", "redis")
    if doc is None:
        problem(K8S, "no StatefulSet redis")
        return
    spec = doc["spec"]
    if spec.get("replicas") != REDIS_PODS:
        problem(path, f"redis needs {REDIS_PODS} pods, a primary and two replicas (the scripts in redis-config.yaml ask that many)")
    if spec.get("serviceName") != "redis-headless":
        problem(path, "serviceName must be redis-headless: the sentinels find the pods by those names")
    if not spec.get("volumeClaimTemplates"):
        problem(path, "Redis needs a volumeClaimTemplate so its append-only file outlives the pod")
    check_redis_image(path, doc, 6379)
    sentinel_path, sentinel = find(docs, "StatefulSet", "redis-sentinel")
    if sentinel is None:
        problem(K8S, "no StatefulSet redis-sentinel")
    else:
        if sentinel["spec"].get("replicas") != SENTINELS:
            problem(sentinel_path, f"redis-sentinel needs {SENTINELS} pods: a quorum of 2 that survives one lost sentinel")
        if sentinel["spec"].get("serviceName") != "redis-sentinel-headless":
            problem(sentinel_path, "serviceName must be redis-sentinel-headless: StreamGate and KEDA name the sentinels by it")
        check_redis_image(sentinel_path, sentinel, 26379)
    for name, port in (("redis-headless", 6379), ("redis-sentinel-headless", 26379)):
        service_path, service = find(docs, "Service", name)
        service_spec = (service or {}).get("spec") or {}
        if service is None or not any(p.get("port") == port for p in service_spec.get("ports") or []):
            problem(service_path or K8S, f"no Service {name} on port {port}")
        elif service_spec.get("clusterIP") != "None" or service_spec.get("publishNotReadyAddresses") is not True:
            problem(service_path, f"Service {name} must be headless with publishNotReadyAddresses (pods are found by name while they start)")
    # A ClusterIP in front of a primary and its replicas would send writes to replicas.
    service_path, service = find(docs, "Service", "redis")
    if service is not None:
        problem(service_path, "Service redis balances over the primary and its replicas; StreamGate and KEDA ask the sentinels")
    config_path, config = find(docs, "ConfigMap", "redis-config")
    data = (config or {}).get("data") or {}
    for key in ("redis.conf", "sentinel.conf", "start-redis.sh", "start-sentinel.sh"):
        if key not in data:
            problem(config_path or K8S, f"no {key} in the ConfigMap redis-config")
    if "redis.conf" in data:
        check_redis_conf(config_path, data["redis.conf"], loopback=False)
    if "sentinel.conf" in data:
        check_sentinel_conf(config_path, data["sentinel.conf"])
    scripts = {
        "start-redis.sh": ("--replica-announce-ip", "--replicaof", f"get-master-addr-by-name {SENTINEL_MASTER}"),
        "start-sentinel.sh": ("announce-ip", f"sentinel monitor {SENTINEL_MASTER}", f"get-master-addr-by-name {SENTINEL_MASTER}"),
    }
    for key, needles in scripts.items():
        for needle in needles:
            if key in data and needle not in data[key]:
                problem(config_path, f"{key} must use `{needle}`: pods announce their DNS names and find the current primary")
    check_wait_replicas(docs)


def check_redis_image(path, doc, port) -> None:
    for container in pod_spec(doc).get("containers") or []:
        if not str(container.get("image", "")).startswith("redis:7"):
            problem(path, "Redis must be redis:7 (the consumer-group lag KEDA reads needs Redis 7)")
        for kind in ("livenessProbe", "readinessProbe"):
            command = " ".join(((container.get(kind) or {}).get("exec") or {}).get("command") or [])
            if "redis-cli" not in command or "ping" not in command or (port != 6379 and f"-p {port}" not in command):
                problem(path, f"the {kind} must run redis-cli ping on port {port}")
        if not any(p.get("containerPort") == port for p in container.get("ports") or []):
            problem(path, f"the container must expose port {port}")


def directives(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.split() and not line.split()[0].startswith("#")]


def check_sentinel_conf(path: Path, text: str) -> None:
    lines = directives(text)
    options = {tuple(words[:2]): words[2:] for words in lines if words[0] == "sentinel"}
    for name in ("resolve-hostnames", "announce-hostnames"):
        if options.get(("sentinel", name)) != ["yes"]:
            problem(path, f"sentinel.conf needs `sentinel {name} yes`: pods are named by DNS, their IPs change")
    if ["port", "26379"] not in [w[:2] for w in lines]:
        problem(path, "sentinel.conf needs `port 26379`")
    monitor = options.get(("sentinel", "monitor"))
    primary = f"{REDIS_HOST.format(i=0)}{CLUSTER_SUFFIX}"
    if not monitor or len(monitor) != 4:
        problem(path, f"sentinel.conf needs `sentinel monitor {SENTINEL_MASTER} {primary} 6379 2`")
        return
    name, host, port, quorum = monitor
    if name != SENTINEL_MASTER:
        problem(path, f"sentinel monitor names {name}; StreamGate and KEDA ask for {SENTINEL_MASTER}")
    if host != primary or port != "6379":
        problem(path, f"sentinel monitor must start from {primary} 6379 (start-sentinel.sh replaces it with the current primary)")
    if not quorum.isdigit() or not SENTINELS // 2 < int(quorum) <= SENTINELS:
        problem(path, f"sentinel quorum {quorum} must be a majority of the {SENTINELS} sentinels")
    per_master = {words[1]: words[2:] for words in lines if words[0] == "sentinel" and len(words) >= 3 and words[2] == name}
    down = (per_master.get("down-after-milliseconds") or [None, ""])[1]
    failover = (per_master.get("failover-timeout") or [None, ""])[1]
    if not down.isdigit() or not 1000 <= int(down) < RECONNECT_WINDOW_MS:
        problem(path, f"sentinel down-after-milliseconds {down or 'missing'}: must be set, 1000 or more and under StreamGate's reconnect window ({RECONNECT_WINDOW_MS} ms) so calls ride through a failover")
    if not failover.isdigit() or (down.isdigit() and int(failover) < 2 * int(down)):
        problem(path, f"sentinel failover-timeout {failover or 'missing'}: must be set, at least twice down-after-milliseconds")


def check_wait_replicas(docs) -> None:
    """--redis-wait-replicas N needs N + 1 replicas, so the new primary after a failover has N."""
    for name in (*SERVER_SLOTS, WORKER):
        path, doc = find(docs, "Deployment", name)
        for container in (containers(doc) if doc else []):
            wait = flag(container.get("args") or [], "--redis-wait-replicas")
            if wait is None or not wait.isdigit() or int(wait) < 1:
                problem(path, f"{name}: pass --redis-wait-replicas 1, so a failover loses no acknowledged job")
            elif int(wait) + 1 > REDIS_PODS - 1:
                problem(path, f"{name}: --redis-wait-replicas {wait} needs {int(wait) + 1} replicas; redis has {REDIS_PODS - 1}")


def check_redis_conf(path: Path, text: str, loopback: bool) -> None:
    settings: dict[str, list[str]] = {}
    for words in directives(text):
        settings[words[0].lower()] = words[1:]
    # volatile-lru: only keys with a TTL (nonces, caches) may go; the queue's state has none.
    expect = {"appendonly": ["yes"], "appendfsync": ["everysec"], "maxmemory-policy": ["volatile-lru"]}
    for key, value in expect.items():
        if settings.get(key) != value:
            problem(path, f"redis.conf needs `{key} {' '.join(value)}` (has {' '.join(settings.get(key, [])) or 'nothing'})")
    if len(settings.get("maxmemory", [])) != 1 or settings["maxmemory"][0] in ("0", "0b"):
        problem(path, "redis.conf needs a maxmemory (without one nothing is evicted and Redis grows until the kernel kills it)")
    if "replicaof" in settings or "slaveof" in settings:
        problem(path, "redis.conf must not fix a primary (replicaof): start-redis.sh asks the sentinels which pod it is")
    if loopback:
        if "unixsocket" not in settings:
            problem(path, "redis.conf needs a unixsocket")
        addresses = [a.lstrip("-") for a in settings.get("bind", [])]
        if not addresses or any(a not in ("127.0.0.1", "::1") for a in addresses):
            problem(path, f"redis.conf must bind loopback only (has bind {' '.join(settings.get('bind', []))})")
