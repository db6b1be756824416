"""What every check shares: the paths, the names the manifests must agree on, the problem list,
and small readers of Kubernetes objects."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
ROOT = DEPLOY.parent
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
README = DEPLOY / "README.md"

NAMESPACE = "streamgate"
WORKER = "streamgate-worker"
# Canary workers (`streamgate worker --track canary`): the worker's pods but for the track.
CANARY = "streamgate-worker-canary"
TRACK_LABEL = "streamgate.io/track"
# The server runs blue-green: one Deployment per slot, the Service SERVER selecting the live slot
# and SERVER_PREVIEW the idle one (deploy/blue-green.sh switches them).
SERVER = "streamgate-server"
SERVER_PREVIEW = "streamgate-server-preview"
SLOT_LABEL = "streamgate.io/slot"
SLOTS = ("blue", "green")
SERVER_SLOTS = tuple(f"{SERVER}-{slot}" for slot in SLOTS)
BLUE_GREEN = DEPLOY / "blue-green.sh"
# What the server does after SIGTERM: DrainBeforeClose.limit in Sources/Origin/Connections.
SERVER_DRAIN_SECONDS = 30
# The origin's HPA metric, which prometheus-adapter derives from the counter.
REQUEST_RATE_METRIC = "streamgate_origin_requests_per_second"
REQUEST_COUNTER = "streamgate_origin_requests_total"
STREAMS = ("{sg}:jobs:high", "{sg}:jobs:normal")
CONSUMER_GROUP = "workers"

# Redis behind Sentinel: three Redis pods (a primary and two replicas) and three sentinels, found
# by the DNS names their StatefulSets' headless Services give them.
SENTINEL_MASTER = "streamgate"
REDIS_PODS = 3
SENTINELS = 3
REDIS_HOST = "redis-{i}.redis-headless"
SENTINEL_HOST = "redis-sentinel-{i}.redis-sentinel-headless"
CLUSTER_SUFFIX = f".{NAMESPACE}.svc.cluster.local"
REDIS_URL = "redis+sentinel://" + ",".join(
    f"{SENTINEL_HOST.format(i=i)}:26379" for i in range(SENTINELS)
) + f"/{SENTINEL_MASTER}"
# KEDA runs in its own namespace: it needs the sentinels' full names.
KEDA_SENTINELS = ",".join(f"{SENTINEL_HOST.format(i=i)}{CLUSTER_SUFFIX}:26379" for i in range(SENTINELS))
# StreamGate's client retries a lost primary for this long (RedisClient.reconnectWindow).
RECONNECT_WINDOW_MS = 10_000

KEY_DIR = "/etc/streamgate"
KEY_FILE = f"{KEY_DIR}/master.key"
# Every Secret a manifest may use, with the keys it must hold; deploy/README.md creates each.
SECRETS = {
    "streamgate-master-key": ("master.key",),
    "streamgate-api-keys": ("keys",),
    "streamgate-s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
}
STORE_CONFIG = "streamgate-store"
SPOOL = "/var/spool/streamgate"

BINARY = "/usr/local/bin/streamgate"
ENV_FILE = "/etc/streamgate/streamgate.env"
S3_ENV_FILE = "/etc/streamgate/s3.env"
STATE_DIR = "/var/lib/streamgate"

problems: list[str] = []


def problem(path: Path, message: str) -> None:
    problems.append(f"{path.relative_to(ROOT)}: {message}")


def run(check, *args):
    # A value of an unexpected type (say replicas: "two") must end in a report, not a traceback.
    try:
        return check(*args)
    except Exception as error:  # noqa: BLE001
        problems.append(f"{check.__name__} stopped on an unexpected value ({type(error).__name__}: {error}); fix the problems above first")
        return None


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


def selects(selector, labels) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) matches a set of labels."""
    selector, labels = selector or {}, labels or {}
    if not selector:
        return False
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


QUANTITY_SUFFIXES = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                     "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value) -> float | None:
    """A Kubernetes quantity ("500m", "2", "512Mi") as a number, or None."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value))
    return float(match.group(1)) * QUANTITY_SUFFIXES[match.group(2) or ""] if match else None


def flag(args: list, name: str):
    """The value after `name` in a container's args, or None."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return str(args[i + 1])
    return None


def container_env(docs, container) -> dict[str, str]:
    """The variables a container gets from literal `env` values and from ConfigMaps (`envFrom`,
    `configMapKeyRef`); a Secret's values are not in the repository, so they are not here."""
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        name = (source.get("configMapRef") or {}).get("name")
        if name:
            _, config = find(docs, "ConfigMap", name)
            for key, value in ((config or {}).get("data") or {}).items():
                values[(source.get("prefix") or "") + key] = str(value)
    for env in container.get("env") or []:
        if "value" in env:
            values[env["name"]] = str(env["value"])
        ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
        if ref:
            _, config = find(docs, "ConfigMap", ref.get("name"))
            if config and ref.get("key") in (config.get("data") or {}):
                values[env["name"]] = str(config["data"][ref["key"]])
    return values


def expand(value: str, env: dict[str, str]) -> str:
    """An arg as Kubernetes runs it: $(NAME) replaced when NAME is defined, $$ kept as $."""
    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", substitute, value)


def referenced_secrets(doc) -> list[tuple[str, str | None]]:
    """(Secret name, key or None for all) for every Secret a pod template uses."""
    found = []
    for volume in pod_spec(doc).get("volumes") or []:
        secret = volume.get("secret")
        if secret:
            keys = [item.get("key") for item in secret.get("items") or []] or [None]
            found += [(secret.get("secretName"), key) for key in keys]
    for container in containers(doc):
        for source in container.get("envFrom") or []:
            if source.get("secretRef"):
                found.append((source["secretRef"].get("name"), None))
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                found.append((ref.get("name"), ref.get("key")))
    return found
