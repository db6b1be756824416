"""The Kubernetes manifests: the kustomization, what every object shares, the server and worker
Deployments, the bucket store they share instead of a volume, and the Secrets they use."""

from __future__ import annotations

import re

import yaml

from .common import (
    K8S, KEY_DIR, KEY_FILE, NAMESPACE, README, REDIS_URL, SECRETS, SERVER, SERVER_SLOTS, SPOOL, STORE_CONFIG,
    WORKER, container_env, containers, expand, find, flag, pod_spec, problem, referenced_secrets,
)


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
        if kind == "PersistentVolumeClaim":
            problem(path, f"PersistentVolumeClaim {name}: nothing is shared on disk any more (the store is a bucket); only Redis has volumes, from its volumeClaimTemplates")
        if kind != "Namespace" and meta.get("namespace") != NAMESPACE:
            problem(path, f"{kind} {name} must be in namespace {NAMESPACE}")
        for container in containers(doc):
            for env in container.get("env") or []:
                if env.get("name") == "STREAMGATE_MASTER_KEY":
                    problem(path, f"{kind} {name}: the master key is a mounted Secret file, never an environment variable")
            for value in (container.get("command") or []) + (container.get("args") or []):
                if not isinstance(value, str):
                    problem(path, f"{kind} {name}: command and args must be strings, found {value!r}")
        for secret, key in referenced_secrets(doc):
            if secret not in SECRETS:
                problem(path, f"{kind} {name}: Secret {secret} is not one deploy/README.md tells how to create")
            elif key is not None and key not in SECRETS[secret]:
                problem(path, f"{kind} {name}: Secret {secret} has no key {key} (it holds {', '.join(SECRETS[secret])})")
        for volume in pod_spec(doc).get("volumes") or []:
            if volume.get("persistentVolumeClaim"):
                problem(path, f"{kind} {name}: volume {volume.get('name')} is a PersistentVolumeClaim; the store is a bucket now")
            config_map = (volume.get("configMap") or {}).get("name")
            if config_map and find(docs, "ConfigMap", config_map)[1] is None:
                problem(path, f"{kind} {name}: ConfigMap {config_map} is not defined in deploy/kubernetes")
            if "emptyDir" in volume and not (volume.get("emptyDir") or {}).get("sizeLimit"):
                problem(path, f"{kind} {name}: emptyDir {volume.get('name')} needs a sizeLimit (it fills the node's disk otherwise)")
        for container in containers(doc):
            for source in container.get("envFrom") or []:
                config_map = (source.get("configMapRef") or {}).get("name")
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


def check_secrets_documented(docs) -> None:
    """Every Secret a manifest uses is created, with its keys, by a command in deploy/README.md."""
    text = README.read_text() if README.exists() else ""
    # Commands continue over backslash-newlines; join them before reading one.
    commands = re.findall(r"kubectl\b[^\n]*?create secret generic ([a-z0-9-]+)((?:[^\n]*\\\n)*[^\n]*)", text)
    created = {name: rest for name, rest in commands}
    used = {secret for _, doc in docs for secret, _ in referenced_secrets(doc)}
    for secret in sorted(used & set(SECRETS)):
        if secret not in created:
            problem(README, f"no `kubectl create secret generic {secret}` command, though the manifests use that Secret")
            continue
        for key in SECRETS[secret]:
            if not re.search(rf"--from-(?:literal|file)={re.escape(key)}=", created[secret]):
                problem(README, f"the command creating Secret {secret} does not set its key {key}")


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


def check_store(docs, path, doc) -> str | None:
    """The bucket store and Redis behind Sentinel; returns the store as the container runs it."""
    name = doc["metadata"]["name"]
    store = None
    for container in pod_spec(doc).get("containers") or []:
        args = container.get("args") or []
        given = flag(args, "--store")
        store = resolved_store(docs, doc)
        if store is None:
            problem(path, f"{name}: pass --store s3://BUCKET/PREFIX")
        elif not store.startswith("s3://") or len(store) <= len("s3://"):
            problem(path, f"{name}: --store must be a bucket, s3://BUCKET/PREFIX (runs as {store!r}); nothing is shared on disk")
        elif "$(" in store:
            problem(path, f"{name}: --store {given} names a variable the container does not define")
        sources = container.get("envFrom") or []
        if not any((s.get("configMapRef") or {}).get("name") == STORE_CONFIG for s in sources):
            problem(path, f"{name}: read the store's settings from the ConfigMap {STORE_CONFIG} (envFrom)")
        if not any((s.get("secretRef") or {}).get("name") == "streamgate-s3" for s in sources):
            problem(path, f"{name}: read the bucket's keys from the Secret streamgate-s3 (envFrom)")
        if flag(args, "--redis") != REDIS_URL:
            problem(path, f"{name}: pass --redis {REDIS_URL}")
        if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            problem(path, f"{name}: keep readOnlyRootFilesystem: true")
    return store


def resolved_store(docs, doc) -> str | None:
    """--store of a pod's first container, $(VARIABLES) expanded as Kubernetes does."""
    for container in pod_spec(doc).get("containers") or []:
        given = flag(container.get("args") or [], "--store")
        return expand(given, container_env(docs, container)) if given else None
    return None


def check_store_config(docs) -> None:
    path, config = find(docs, "ConfigMap", STORE_CONFIG)
    if config is None:
        problem(K8S, f"no ConfigMap {STORE_CONFIG} with the store's settings")
        return
    data = config.get("data") or {}
    if not str(data.get("STREAMGATE_STORE", "")).startswith("s3://"):
        problem(path, "STREAMGATE_STORE must be s3://BUCKET/PREFIX")
    if not data.get("AWS_REGION"):
        problem(path, "AWS_REGION must be set (request signatures name the region)")
    for key in data:
        if re.search(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY", key):
            problem(path, f"{key} is a credential: it belongs in the Secret streamgate-s3, created with kubectl")


def check_spool(path, doc) -> None:
    volumes = {v["name"]: v for v in pod_spec(doc).get("volumes") or []}
    for container in pod_spec(doc).get("containers") or []:
        spool = flag(container.get("args") or [], "--spool")
        if spool != SPOOL:
            problem(path, f"worker: pass --spool {SPOOL} (the default is in /tmp, which is small here)")
            continue
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == spool]
        volume = volumes.get(mounts[0]["name"]) if mounts else None
        if volume is None or "emptyDir" not in volume:
            problem(path, f"worker: mount an emptyDir at {spool} for the spool")
        elif not (volume.get("emptyDir") or {}).get("sizeLimit"):
            problem(path, "worker: the spool emptyDir needs a sizeLimit")
        if "ephemeral-storage" not in ((container.get("resources") or {}).get("requests") or {}):
            problem(path, "worker: request ephemeral-storage for the spool, so the pod lands on a node with the disk")


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
    check_store(docs, path, doc)
    check_spool(path, doc)
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


def check_server(docs, worker) -> None:
    """Each slot's Deployment (blue-green, checks/rollout.py), and the Service players use."""
    for name in SERVER_SLOTS:
        path, doc = find(docs, "Deployment", name)
        if doc is None:
            problem(K8S, f"no Deployment {name}")
        else:
            check_server_deployment(docs, worker, path, doc)
    service_path, service = find(docs, "Service", SERVER)
    if service is None or not any(p.get("port") == 8080 for p in service["spec"].get("ports") or []):
        problem(service_path or K8S, f"no Service {SERVER} on port 8080")


def check_server_deployment(docs, worker, path, doc) -> None:
    name = doc["metadata"]["name"]
    if "replicas" in doc["spec"]:
        problem(path, f"{name} must not set replicas: its HorizontalPodAutoscaler owns the count, and apply would reset it")
    check_master_key_mount(path, doc)
    store = check_store(docs, path, doc)
    published = resolved_store(docs, worker) if worker is not None else None
    if published and store and store != published:
        problem(path, f"{name} reads {store} but the workers publish to {published}")
    for container in pod_spec(doc).get("containers") or []:
        args = container.get("args") or []
        if not args or args[0] != "serve":
            problem(path, f"container {container.get('name')}: args must start with the `serve` subcommand")
        port = flag(args, "--port")
        for kind, route in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            probe = http_probe(container, kind)
            if probe.get("path") != route or str(port_number(container, probe.get("port"))) != port:
                problem(path, f"{name}: the {kind} must be GET {route} on port {port}")
        keys = [e for e in container.get("env") or [] if e.get("name") == "STREAMGATE_API_KEYS"]
        ref = ((keys[0].get("valueFrom") or {}).get("secretKeyRef") or {}) if keys else {}
        if ref.get("name") != "streamgate-api-keys" or ref.get("key") != SECRETS["streamgate-api-keys"][0]:
            problem(path, f"{name}: STREAMGATE_API_KEYS must come from the Secret streamgate-api-keys, key `keys`")
