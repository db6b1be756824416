"""KEDA's ScaledObject, a CRD kubernetes-validate has no schema for: its target, its triggers on
both job streams (through the sentinels) and how gently it scales down."""

from __future__ import annotations

import re

from .common import CONSUMER_GROUP, K8S, KEDA_SENTINELS, SENTINEL_MASTER, STREAMS, WORKER, problem


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
    check_triggers(path, spec)
    check_behavior(path, spec.get("advanced") or {}, [t.get("name") for t in spec.get("triggers") or []])


def check_triggers(path, spec) -> None:
    lag_streams = set()
    for i, trigger in enumerate(spec.get("triggers") or []):
        where = f"trigger {trigger.get('name', i)}"
        metadata = trigger.get("metadata") or {}
        # Redis runs behind Sentinel: a fixed address would keep reading a demoted primary.
        if trigger.get("type") != "redis-sentinel-streams":
            problem(path, f"{where}: type must be redis-sentinel-streams (Redis runs behind Sentinel)")
        for key, value in metadata.items():
            if not isinstance(value, str):
                problem(path, f"{where}: metadata.{key} must be a string (KEDA rejects {value!r})")
        if metadata.get("stream") not in STREAMS:
            problem(path, f"{where}: stream {metadata.get('stream')!r} is not one of {', '.join(STREAMS)}")
        if metadata.get("consumerGroup") != CONSUMER_GROUP:
            problem(path, f"{where}: consumerGroup must be {CONSUMER_GROUP}")
        addresses = str(metadata.get("addresses", "")).replace(" ", "")
        if addresses != KEDA_SENTINELS:
            problem(path, f"{where}: addresses must be the sentinels' full names (KEDA runs in another namespace): {KEDA_SENTINELS}")
        if "address" in metadata or "host" in metadata:
            problem(path, f"{where}: a fixed address or host bypasses the sentinels; use addresses and sentinelMaster")
        if metadata.get("sentinelMaster") != SENTINEL_MASTER:
            problem(path, f"{where}: sentinelMaster must be {SENTINEL_MASTER}, the name the sentinels monitor")
        if "lagCount" in metadata:
            lag_streams.add(metadata.get("stream"))
            if not re.fullmatch(r"[1-9][0-9]*", str(metadata["lagCount"])):
                problem(path, f"{where}: lagCount must be a positive integer")
            if not re.fullmatch(r"[0-9]+", str(metadata.get("activationLagCount", ""))):
                problem(path, f"{where}: activationLagCount must be set to an integer")
        elif not re.fullmatch(r"[1-9][0-9]*", str(metadata.get("pendingEntriesCount", ""))):
            problem(path, f"{where}: needs lagCount (queue lag) or pendingEntriesCount (running jobs)")
    for stream in STREAMS:
        if stream not in lag_streams:
            problem(path, f"no redis-sentinel-streams trigger on the lag (lagCount) of {stream}")


def check_behavior(path, advanced, names) -> None:
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
        return
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
