#!/usr/bin/env python3
"""Checks what a JSON schema cannot see in StreamGate's deploy/ folder.

kubernetes-validate checks each built-in Kubernetes resource against its schema; this script checks
the rest, offline: the KEDA ScaledObject (a CRD it has no schema for), that the manifests agree with
each other and with StreamGate's command line, that no secret is committed, that every systemd unit
has what it needs, and that both redis.conf files keep the queue durable and bounded.

Run by deploy/validate.sh with the project's .venv (PyYAML). Prints one line per problem, naming the
file, and exits 1 if there is any.
"""

from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"

NAMESPACE = "streamgate"
WORKER = "streamgate-worker"
SERVER = "streamgate-server"
STREAMS = ("{sg}:jobs:high", "{sg}:jobs:normal")
CONSUMER_GROUP = "workers"
REDIS_ADDRESS = "redis.streamgate.svc.cluster.local:6379"
REDIS_URL = "redis://redis:6379"
STORE = "/data/store"
KEY_DIR = "/etc/streamgate"
KEY_FILE = f"{KEY_DIR}/master.key"
SECRETS = {"streamgate-master-key": "master.key", "streamgate-api-keys": "keys"}
BINARY = "/usr/local/bin/streamgate"
ENV_FILE = "/etc/streamgate/streamgate.env"
STATE_DIR = "/var/lib/streamgate"

problems: list[str] = []


def problem(path: Path, message: str) -> None:
    problems.append(f"{path.relative_to(ROOT)}: {message}")


# --- Kubernetes -------------------------------------------------------------------------------


def load_manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.y*ml")):
        if path.name == "kustomization.yaml":
            continue
        try:
            loaded = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as error:
            problem(path, f"is not valid YAML: {error}")
            continue
        for doc in loaded:
            if not isinstance(doc, dict) or "kind" not in doc:
                problem(path, "holds a document that is not a Kubernetes object")
                continue
            docs.append((path, doc))
    return docs


def find(docs, kind, name):
    for path, doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return path, doc
    return None, None


def pod_spec(doc) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {}) or {}


def containers(doc) -> list[dict]:
    spec = pod_spec(doc)
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def flag(args: list, name: str):
    """The value after `name` in a container's args, or None."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return str(args[i + 1])
    return None


def check_kustomization(docs) -> None:
    path = K8S / "kustomization.yaml"
    if not path.exists():
        problem(path, "is missing")
        return
    kustomization = yaml.safe_load(path.read_text()) or {}
    if kustomization.get("namespace") != NAMESPACE:
        problem(path, f"namespace must be {NAMESPACE}")
    listed = set(kustomization.get("resources") or [])
    present = {p.name for p in K8S.glob("*.y*ml")} - {"kustomization.yaml"}
    for name in sorted(present - listed):
        problem(path, f"does not list {name} under resources")
    for name in sorted(listed - present):
        problem(path, f"lists {name}, which does not exist")


def check_common(docs) -> None:
    for path, doc in docs:
        kind, meta = doc["kind"], doc.get("metadata", {})
        name = meta.get("name", "?")
        if kind == "Secret":
            problem(path, f"Secret {name}: Secrets are created with kubectl (deploy/README.md), never committed")
        if kind != "Namespace" and meta.get("namespace") != NAMESPACE:
            problem(path, f"{kind} {name} must be in namespace {NAMESPACE}")
        for container in containers(doc):
            for env in container.get("env") or []:
                if env.get("name") == "STREAMGATE_MASTER_KEY":
                    problem(path, f"{kind} {name}: the master key is a mounted Secret file, never an environment variable")
            for value in (container.get("command") or []) + (container.get("args") or []):
                if not isinstance(value, str):
                    problem(path, f"{kind} {name}: command and args must be strings, found {value!r}")
        for volume in pod_spec(doc).get("volumes") or []:
            secret = volume.get("secret")
            if secret and secret.get("secretName") not in SECRETS:
                problem(path, f"{kind} {name}: Secret {secret.get('secretName')} is not one deploy/README.md tells how to create")
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and find(docs, "PersistentVolumeClaim", claim)[1] is None:
                problem(path, f"{kind} {name}: PersistentVolumeClaim {claim} is not defined in deploy/kubernetes")
            config_map = (volume.get("configMap") or {}).get("name")
            if config_map and find(docs, "ConfigMap", config_map)[1] is None:
                problem(path, f"{kind} {name}: ConfigMap {config_map} is not defined in deploy/kubernetes")

    workloads = [(p, d) for p, d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for path, doc in docs:
        if doc["kind"] != "Service":
            continue
        selector = doc.get("spec", {}).get("selector") or {}
        matched = [
            (p, w) for p, w in workloads
            if selector and selector.items() <= (w["spec"]["template"]["metadata"].get("labels") or {}).items()
        ]
        if not matched:
            problem(path, f"Service {doc['metadata']['name']} selects no pod of any Deployment or StatefulSet")
        for port in doc.get("spec", {}).get("ports") or []:
            target = port.get("targetPort")
            if isinstance(target, str):
                for wpath, workload in matched:
                    names = {p.get("name") for c in containers(workload) for p in c.get("ports") or []}
                    if target not in names:
                        problem(path, f"Service {doc['metadata']['name']}: no container port named {target} in {workload['metadata']['name']}")


def check_master_key_mount(path, doc) -> None:
    name = doc["metadata"]["name"]
    volumes = {v["name"]: v for v in pod_spec(doc).get("volumes") or []}
    for container in pod_spec(doc).get("containers") or []:
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == KEY_DIR]
        if not mounts:
            problem(path, f"{name}: the master key Secret is not mounted at {KEY_DIR}")
            continue
        mount = mounts[0]
        if mount.get("readOnly") is not True:
            problem(path, f"{name}: the master key mount must be readOnly")
        secret = (volumes.get(mount["name"]) or {}).get("secret") or {}
        if secret.get("secretName") != "streamgate-master-key":
            problem(path, f"{name}: {KEY_DIR} must come from the Secret streamgate-master-key")
        mode = secret.get("defaultMode")
        if mode is not None and mode & 0o007:
            problem(path, f"{name}: the master key must not be world-readable (defaultMode {oct(mode)})")
        if flag(container.get("args") or [], "--master-key-file") != KEY_FILE:
            problem(path, f"{name}: pass --master-key-file {KEY_FILE}")


def check_store_mount(path, doc) -> None:
    name = doc["metadata"]["name"]
    volumes = {v["name"]: v for v in pod_spec(doc).get("volumes") or []}
    for container in pod_spec(doc).get("containers") or []:
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == STORE]
        claim = ((volumes.get(mounts[0]["name"]) or {}).get("persistentVolumeClaim") or {}).get("claimName") if mounts else None
        if claim != "streamgate-store":
            problem(path, f"{name}: the PersistentVolumeClaim streamgate-store must be mounted at {STORE}")
        if flag(container.get("args") or [], "--store") != STORE:
            problem(path, f"{name}: pass --store {STORE}")
        if flag(container.get("args") or [], "--redis") != REDIS_URL:
            problem(path, f"{name}: pass --redis {REDIS_URL}")


def http_probe(container, kind) -> dict:
    return (container.get(kind) or {}).get("httpGet") or {}


def port_number(container, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_worker(docs) -> dict | None:
    path, doc = find(docs, "Deployment", WORKER)
    if doc is None:
        problem(K8S, f"no Deployment {WORKER}")
        return None
    spec = doc["spec"]
    if "replicas" in spec:
        problem(path, "the worker Deployment must not set replicas: KEDA owns the count, and apply would reset it")
    grace = pod_spec(doc).get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < 600:
        problem(path, f"terminationGracePeriodSeconds {grace} is too short for a worker to finish a transcode when it drains")
    check_master_key_mount(path, doc)
    check_store_mount(path, doc)
    annotations = spec["template"]["metadata"].get("annotations") or {}
    for container in pod_spec(doc).get("containers") or []:
        args = container.get("args") or []
        if not args or args[0] != "worker":
            problem(path, f"container {container.get('name')}: args must start with the `worker` subcommand")
        profiles = flag(args, "--profiles")
        if not profiles or not profiles.startswith("/"):
            problem(path, "pass --profiles with an absolute folder (the default, `profiles`, is relative to the working directory)")
        port = flag(args, "--metrics-port")
        if port is None:
            problem(path, "pass --metrics-port")
            continue
        if flag(args, "--metrics-host") != "0.0.0.0":
            problem(path, "pass --metrics-host 0.0.0.0: the metrics server listens on loopback by default, out of reach of probes and Prometheus")
        probe = http_probe(container, "livenessProbe")
        if probe.get("path") != "/healthz" or str(port_number(container, probe.get("port"))) != port:
            problem(path, f"the liveness probe must be GET /healthz on the metrics port {port}")
        if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != port:
            problem(path, f"the pod template needs prometheus.io/scrape \"true\" and prometheus.io/port \"{port}\"")
        requests = (container.get("resources") or {}).get("requests") or {}
        if "cpu" not in requests or "memory" not in requests:
            problem(path, "the worker needs cpu and memory requests")
    return doc


def check_server(docs) -> None:
    path, doc = find(docs, "Deployment", SERVER)
    if doc is None:
        problem(K8S, f"no Deployment {SERVER}")
        return
    replicas = doc["spec"].get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 2:
        problem(path, f"the server needs at least 2 replicas (has {replicas!r})")
    check_master_key_mount(path, doc)
    check_store_mount(path, doc)
    for container in pod_spec(doc).get("containers") or []:
        args = container.get("args") or []
        if not args or args[0] != "serve":
            problem(path, f"container {container.get('name')}: args must start with the `serve` subcommand")
        port = flag(args, "--port")
        for kind, route in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            probe = http_probe(container, kind)
            if probe.get("path") != route or str(port_number(container, probe.get("port"))) != port:
                problem(path, f"the {kind} must be GET {route} on port {port}")
        keys = [e for e in container.get("env") or [] if e.get("name") == "STREAMGATE_API_KEYS"]
        ref = ((keys[0].get("valueFrom") or {}).get("secretKeyRef") or {}) if keys else {}
        if ref.get("name") != "streamgate-api-keys" or ref.get("key") != SECRETS["streamgate-api-keys"]:
            problem(path, "STREAMGATE_API_KEYS must come from the Secret streamgate-api-keys, key `keys`")
    service_path, service = find(docs, "Service", SERVER)
    if service is None or not any(p.get("port") == 8080 for p in service["spec"].get("ports") or []):
        problem(service_path or K8S, f"no Service {SERVER} on port 8080")


def check_redis(docs) -> None:
    path, doc = find(docs, "StatefulSet", "redis")
    if doc is None:
        problem(K8S, "no StatefulSet redis")
        return
    if not doc["spec"].get("volumeClaimTemplates"):
        problem(path, "Redis needs a volumeClaimTemplate so its append-only file outlives the pod")
    for container in pod_spec(doc).get("containers") or []:
        if not str(container.get("image", "")).startswith("redis:7"):
            problem(path, "Redis must be redis:7 (the consumer-group lag KEDA reads needs Redis 7)")
        for kind in ("livenessProbe", "readinessProbe"):
            command = " ".join(((container.get(kind) or {}).get("exec") or {}).get("command") or [])
            if "redis-cli" not in command or "ping" not in command:
                problem(path, f"the {kind} must run redis-cli ping")
    service_path, service = find(docs, "Service", "redis")
    if service is None or not any(p.get("port") == 6379 for p in service["spec"].get("ports") or []):
        problem(service_path or K8S, "no Service redis on port 6379")
    config_path, config = find(docs, "ConfigMap", "redis-config")
    if config is None or "redis.conf" not in (config.get("data") or {}):
        problem(config_path or K8S, "no ConfigMap redis-config with a redis.conf")
    else:
        check_redis_conf(config_path, config["data"]["redis.conf"], loopback=False)


def check_scaled_object(docs, worker) -> None:
    objects = [(p, d) for p, d in docs if d["kind"] == "ScaledObject"]
    if len(objects) != 1:
        problem(K8S, f"expected one KEDA ScaledObject, found {len(objects)}")
        return
    path, so = objects[0]
    if so.get("apiVersion") != "keda.sh/v1alpha1":
        problem(path, "apiVersion must be keda.sh/v1alpha1")
    spec = so.get("spec") or {}
    target = spec.get("scaleTargetRef") or {}
    if worker is None or target.get("name") != worker["metadata"]["name"]:
        problem(path, f"scaleTargetRef.name {target.get('name')!r} is not the worker Deployment {WORKER!r}")
    if target.get("kind", "Deployment") != "Deployment":
        problem(path, "scaleTargetRef.kind must be Deployment")
    for field in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        if field in spec and not isinstance(spec[field], int):
            problem(path, f"{field} must be an integer")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if low not in (0, 1):
        problem(path, f"minReplicaCount must be 0 or 1, not {low!r}")
    if not isinstance(high, int) or high < max(low, 1):
        problem(path, f"maxReplicaCount {high!r} must be at least 1 and at least minReplicaCount")
    cooldown = spec.get("cooldownPeriod", 300)
    if not isinstance(cooldown, int) or cooldown < 300:
        problem(path, "cooldownPeriod must be at least 300 s")

    triggers = spec.get("triggers") or []
    lag_streams, names = set(), []
    for i, trigger in enumerate(triggers):
        where = f"trigger {trigger.get('name', i)}"
        metadata = trigger.get("metadata") or {}
        if trigger.get("type") != "redis-streams":
            problem(path, f"{where}: type must be redis-streams")
        for key, value in metadata.items():
            if not isinstance(value, str):
                problem(path, f"{where}: metadata.{key} must be a string (KEDA rejects {value!r})")
        if metadata.get("stream") not in STREAMS:
            problem(path, f"{where}: stream {metadata.get('stream')!r} is not one of {', '.join(STREAMS)}")
        if metadata.get("consumerGroup") != CONSUMER_GROUP:
            problem(path, f"{where}: consumerGroup must be {CONSUMER_GROUP}")
        if metadata.get("address") != REDIS_ADDRESS:
            problem(path, f"{where}: address must be {REDIS_ADDRESS}")
        if "lagCount" in metadata:
            lag_streams.add(metadata.get("stream"))
            if not re.fullmatch(r"[1-9][0-9]*", str(metadata["lagCount"])):
                problem(path, f"{where}: lagCount must be a positive integer")
            if not re.fullmatch(r"[0-9]+", str(metadata.get("activationLagCount", ""))):
                problem(path, f"{where}: activationLagCount must be set to an integer")
        elif not re.fullmatch(r"[1-9][0-9]*", str(metadata.get("pendingEntriesCount", ""))):
            problem(path, f"{where}: needs lagCount (queue lag) or pendingEntriesCount (running jobs)")
        names.append(trigger.get("name"))
    for stream in STREAMS:
        if stream not in lag_streams:
            problem(path, f"no redis-streams trigger on the lag (lagCount) of {stream}")

    advanced = spec.get("advanced") or {}
    modifiers = advanced.get("scalingModifiers")
    if modifiers:
        formula = modifiers.get("formula") or ""
        for name in names:
            if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problem(path, f"with scalingModifiers every trigger needs a name usable in the formula, not {name!r}")
            elif not re.search(rf"\b{re.escape(name)}\b", formula):
                problem(path, f"scalingModifiers.formula does not use trigger {name}")
        try:
            if float(modifiers.get("target")) <= 0:
                raise ValueError
        except (TypeError, ValueError):
            problem(path, "scalingModifiers.target must be a positive number, as a string")
    behavior = (advanced.get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {}
    down = behavior.get("scaleDown")
    if not down:
        problem(path, "advanced.horizontalPodAutoscalerConfig.behavior.scaleDown must be set (drain workers gently)")
    else:
        window = down.get("stabilizationWindowSeconds", 0)
        if not isinstance(window, int) or window < 300:
            problem(path, "scaleDown.stabilizationWindowSeconds must be at least 300")
        policies = down.get("policies") or []
        if not policies:
            problem(path, "scaleDown needs at least one policy")
        for policy in policies:
            if not isinstance(policy.get("value"), int) or not isinstance(policy.get("periodSeconds"), int):
                problem(path, f"scaleDown policy {policy}: value and periodSeconds must be integers")
                continue
            per_minute = policy.get("value", 0) * 60 / max(policy.get("periodSeconds", 1), 1)
            if policy.get("type") == "Pods" and per_minute > 2:
                problem(path, f"scaleDown policy {policy} removes more than 2 workers a minute")
            if policy.get("type") == "Percent" and per_minute > 10:
                problem(path, f"scaleDown policy {policy} removes more than 10% of the workers a minute")


# --- systemd ------------------------------------------------------------------------------------

TIME_UNITS = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
              "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}


def seconds(span: str) -> float | None:
    """A systemd time span ("3600", "1h", "1h 30min") in seconds, or None."""
    if span.strip() == "infinity":
        return float("inf")
    total, matched = 0.0, False
    for number, unit in re.findall(r"([0-9.]+)\s*([a-z]*)", span):
        if unit not in TIME_UNITS:
            return None
        total, matched = total + float(number) * TIME_UNITS[unit], True
    return total if matched else None


def read_unit(path: Path) -> configparser.ConfigParser:
    # systemd joins lines ending in a backslash; configparser does not.
    text = re.sub(r"\\\n", " ", path.read_text())
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str
    parser.read_string(text, source=str(path))
    return parser


def env_names(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def check_systemd() -> None:
    example = SYSTEMD / "streamgate.env.example"
    env = env_names(example) if example.exists() else {}
    if not example.exists():
        problem(example, "is missing")
    if env.get("STREAMGATE_API_KEYS"):
        problem(example, "STREAMGATE_API_KEYS must stay empty in the example (no key is ever committed)")
    if "STREAMGATE_MASTER_KEY" in env:
        problem(example, "the master key is /etc/streamgate/master.key (LoadCredential=), not a variable")

    units = {
        "streamgate-server.service": ("serve", False),
        "streamgate-worker@.service": ("worker", True),
        "streamgate-farm.service": ("farm", True),
    }
    for name, (subcommand, drains) in units.items():
        path = SYSTEMD / name
        if not path.exists():
            problem(path, "is missing")
            continue
        try:
            unit = read_unit(path)
        except configparser.Error as error:
            problem(path, f"does not parse: {error}")
            continue
        for section in ("Unit", "Service", "Install"):
            if not unit.has_section(section):
                problem(path, f"has no [{section}] section")
        if not all(unit.has_section(s) for s in ("Unit", "Service", "Install")):
            continue
        service = unit["Service"]
        if not unit["Unit"].get("Description"):
            problem(path, "needs Description=")
        if not unit["Install"].get("WantedBy"):
            problem(path, "needs WantedBy= under [Install]")
        required = {
            "User": "streamgate", "KillSignal": "SIGTERM", "Restart": "on-failure",
            "EnvironmentFile": ENV_FILE, "NoNewPrivileges": "yes", "ProtectSystem": "strict",
            "PrivateTmp": "yes",
        }
        for key, value in required.items():
            if service.get(key) != value:
                problem(path, f"needs {key}={value} (has {service.get(key)!r})")
        if STATE_DIR not in (service.get("ReadWritePaths") or "").split():
            problem(path, f"needs ReadWritePaths={STATE_DIR}")
        exec_start = service.get("ExecStart") or ""
        if not exec_start:
            problem(path, "needs ExecStart=")
        elif not re.search(rf"{re.escape(BINARY)}\s+{subcommand}\b", exec_start):
            problem(path, f"ExecStart must run `{BINARY} {subcommand}`")
        if subcommand != "serve" and "--profiles" not in exec_start:
            problem(path, "pass --profiles (the default, `profiles`, is relative to the working directory)")
        if "--master-key-file" not in exec_start or "LoadCredential" not in service:
            problem(path, "pass the master key with LoadCredential= and --master-key-file %d/master.key")
        for variable in sorted(set(re.findall(r"\b(STREAMGATE_[A-Z0-9_]+)\b", exec_start))):
            if variable not in env:
                problem(path, f"ExecStart uses {variable}, which {example.name} does not define")
        stop = seconds(service.get("TimeoutStopSec", "90"))
        if drains:
            if stop is None or stop < 600:
                problem(path, f"TimeoutStopSec={service.get('TimeoutStopSec')} is too short for a worker to finish its transcode")
            if service.get("KillMode") != "mixed":
                problem(path, "needs KillMode=mixed, so SIGTERM reaches the worker and not its running transcode")


# --- redis.conf ---------------------------------------------------------------------------------


def check_redis_conf(path: Path, text: str, loopback: bool) -> None:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            settings[words[0].lower()] = words[1:]
    # volatile-lru: only keys with a TTL (nonces, caches) may go; the queue's state has none.
    expect = {"appendonly": ["yes"], "appendfsync": ["everysec"], "maxmemory-policy": ["volatile-lru"]}
    for key, value in expect.items():
        if settings.get(key) != value:
            problem(path, f"redis.conf needs `{key} {' '.join(value)}` (has {' '.join(settings.get(key, [])) or 'nothing'})")
    if len(settings.get("maxmemory", [])) != 1 or settings["maxmemory"][0] in ("0", "0b"):
        problem(path, "redis.conf needs a maxmemory (without one nothing is evicted and Redis grows until the kernel kills it)")
    if loopback:
        if "unixsocket" not in settings:
            problem(path, "redis.conf needs a unixsocket")
        addresses = [a.lstrip("-") for a in settings.get("bind", [])]
        if not addresses or any(a not in ("127.0.0.1", "::1") for a in addresses):
            problem(path, f"redis.conf must bind loopback only (has bind {' '.join(settings.get('bind', []))})")


def run(check, *args):
    # A value of an unexpected type (say replicas: "two") must end in a report, not a traceback.
    try:
        return check(*args)
    except Exception as error:  # noqa: BLE001
        problems.append(f"{check.__name__} stopped on an unexpected value ({type(error).__name__}: {error}); fix the problems above first")
        return None


def main() -> int:
    docs = run(load_manifests) or []
    run(check_kustomization, docs)
    run(check_common, docs)
    worker = run(check_worker, docs)
    run(check_server, docs)
    run(check_redis, docs)
    run(check_scaled_object, docs, worker)
    run(check_systemd)
    conf = DEPLOY / "redis" / "redis.conf"
    if conf.exists():
        run(check_redis_conf, conf, conf.read_text(), True)
    else:
        problem(conf, "is missing")
    for line in problems:
        print(f"deploy: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
