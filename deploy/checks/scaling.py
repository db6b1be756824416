"""Autoscaling. KEDA's ScaledObject, a CRD kubernetes-validate has no schema for: its target, its
triggers on both job streams (through the sentinels) and how gently it scales down. The origin's
HorizontalPodAutoscalers, one per blue-green slot, on CPU and the request rate. The
VerticalPodAutoscalers (another CRD without a schema): recommendations only, sane bounds."""

from __future__ import annotations

import re

from .common import (
    CONSUMER_GROUP, K8S, KEDA_SENTINELS, README, REQUEST_COUNTER, REQUEST_RATE_METRIC, ROOT, SENTINEL_MASTER,
    SERVER_SLOTS, STREAMS, WORKER, pod_spec, problem, quantity,
)
from .rollout import without_slot

ORIGIN_METRICS = ROOT / "Sources" / "Origin" / "Playback" / "OriginMetrics.swift"


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


def check_hpa(docs) -> None:
    """One autoscaling/v2 HPA per server slot, on CPU and the request rate; none on the workers."""
    hpas = [(p, d) for p, d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    deployments = {d["metadata"]["name"]: (p, d) for p, d in docs if d["kind"] == "Deployment"}
    by_target: dict[str, list] = {}
    for path, hpa in hpas:
        name = hpa["metadata"]["name"]
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if hpa.get("apiVersion") != "autoscaling/v2":
            problem(path, f"HorizontalPodAutoscaler {name}: use autoscaling/v2")
        if target.get("kind") != "Deployment" or target.get("name") not in deployments:
            problem(path, f"HorizontalPodAutoscaler {name}: scaleTargetRef {target.get('kind')} {target.get('name')} is no Deployment here")
            continue
        if target["name"] == WORKER:
            problem(path, f"HorizontalPodAutoscaler {name}: KEDA already scales {WORKER} (through an HPA of its own); two would fight")
        by_target.setdefault(target["name"], []).append((path, hpa))
    for slot in SERVER_SLOTS:
        found = by_target.get(slot, [])
        if len(found) != 1:
            problem(K8S, f"Deployment {slot} needs exactly one HorizontalPodAutoscaler (found {len(found)})")
            continue
        check_server_hpa(*found[0], deployments[slot][1])
    if all(len(by_target.get(s, [])) == 1 for s in SERVER_SLOTS):
        (path, first), (_, second) = (by_target[s][0] for s in SERVER_SLOTS)
        slots = [s.rsplit("-", 1)[1] for s in SERVER_SLOTS]
        if without_slot(first, slots[0]) != without_slot(second, slots[1]):
            problem(path, "the HPAs of both slots must be the same but for the slot")
    check_request_rate_source()


def check_server_hpa(path, hpa, deployment) -> None:
    name, spec = hpa["metadata"]["name"], hpa.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not isinstance(low, int) or low < 2:
        problem(path, f"HorizontalPodAutoscaler {name}: minReplicas must be at least 2 (one node lost, one pod drained)")
    if not isinstance(high, int) or not isinstance(low, int) or high < low:
        problem(path, f"HorizontalPodAutoscaler {name}: maxReplicas {high!r} must be at least minReplicas")
    metrics = spec.get("metrics") or []
    cpu = [m for m in metrics if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"]
    target = ((cpu[0].get("resource") or {}).get("target") or {}) if cpu else {}
    utilization = target.get("averageUtilization")
    if target.get("type") != "Utilization" or not isinstance(utilization, int) or not 10 <= utilization <= 95:
        problem(path, f"HorizontalPodAutoscaler {name}: scale on CPU Utilization, a target between 10 and 95 %")
    for container in pod_spec(deployment).get("containers") or []:
        if "cpu" not in ((container.get("resources") or {}).get("requests") or {}):
            problem(path, f"HorizontalPodAutoscaler {name}: CPU utilization needs a cpu request on container {container.get('name')}")
    rate = [m for m in metrics if m.get("type") == "Pods" and ((m.get("pods") or {}).get("metric") or {}).get("name") == REQUEST_RATE_METRIC]
    rate_target = ((rate[0].get("pods") or {}).get("target") or {}) if rate else {}
    value = quantity(rate_target.get("averageValue", ""))
    if rate_target.get("type") != "AverageValue" or not value:
        problem(path, f"HorizontalPodAutoscaler {name}: scale on the Pods metric {REQUEST_RATE_METRIC} too, an AverageValue above 0")
    down = (spec.get("behavior") or {}).get("scaleDown") or {}
    window = down.get("stabilizationWindowSeconds")
    if not isinstance(window, int) or window < 60 or not down.get("policies"):
        problem(path, f"HorizontalPodAutoscaler {name}: behavior.scaleDown needs policies and a stabilizationWindowSeconds of 60 or more (each pod removed takes its cache)")


def check_request_rate_source() -> None:
    """The HPA's request rate comes from a counter the origin exports, by a rule the README shows."""
    if not ORIGIN_METRICS.exists() or f'Counter(label: "{REQUEST_COUNTER}"' not in ORIGIN_METRICS.read_text():
        problem(ORIGIN_METRICS, f"defines no counter {REQUEST_COUNTER}, from which prometheus-adapter computes the HPA's {REQUEST_RATE_METRIC}")
    text = README.read_text() if README.exists() else ""
    if not re.search(rf"seriesQuery: '{REQUEST_COUNTER}\b", text) or f'as: "{REQUEST_RATE_METRIC}"' not in text:
        problem(README, f"must give prometheus-adapter's rule turning {REQUEST_COUNTER} into {REQUEST_RATE_METRIC}")


VPA_RESOURCES = ("cpu", "memory")


def check_vpa(docs) -> None:
    """VerticalPodAutoscalers: recommendations only, one per Deployment, bounds around what runs."""
    objects = [(p, d) for p, d in docs if d["kind"] == "VerticalPodAutoscaler"]
    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    covered: dict[str, int] = {}
    for path, vpa in objects:
        name, spec = vpa["metadata"]["name"], vpa.get("spec") or {}
        if vpa.get("apiVersion") != "autoscaling.k8s.io/v1":
            problem(path, f"VerticalPodAutoscaler {name}: apiVersion must be autoscaling.k8s.io/v1")
        target = spec.get("targetRef") or {}
        deployment = deployments.get(target.get("name"))
        if target.get("apiVersion") != "apps/v1" or target.get("kind") != "Deployment" or deployment is None:
            problem(path, f"VerticalPodAutoscaler {name}: targetRef must name a Deployment here (apps/v1), not {target.get('kind')} {target.get('name')}")
        else:
            covered[target["name"]] = covered.get(target["name"], 0) + 1
        mode = (spec.get("updatePolicy") or {}).get("updateMode")
        if mode != "Off":
            hint = " (quote it: a bare Off is YAML's false)" if mode is False else ""
            problem(path, f"VerticalPodAutoscaler {name}: updateMode must be \"Off\", recommendations only{hint}; found {mode!r}")
        policies = (spec.get("resourcePolicy") or {}).get("containerPolicies") or []
        if not policies:
            problem(path, f"VerticalPodAutoscaler {name}: give resourcePolicy.containerPolicies with minAllowed and maxAllowed")
        for policy in policies:
            check_vpa_policy(path, name, policy, deployment)
    for name in deployments:
        if covered.get(name, 0) != 1:
            problem(K8S, f"Deployment {name} needs exactly one VerticalPodAutoscaler (found {covered.get(name, 0)})")


def check_vpa_policy(path, name, policy, deployment) -> None:
    container_name = policy.get("containerName")
    containers = {c.get("name"): c for c in pod_spec(deployment or {}).get("containers") or []}
    where = f"VerticalPodAutoscaler {name}, container {container_name}"
    if container_name != "*" and deployment is not None and container_name not in containers:
        problem(path, f"{where}: the target has no such container ({', '.join(containers)})")
    controlled = policy.get("controlledResources") or list(VPA_RESOURCES)
    if any(r not in VPA_RESOURCES for r in controlled):
        problem(path, f"{where}: controlledResources may name only {', '.join(VPA_RESOURCES)}")
    if policy.get("controlledValues", "RequestsAndLimits") != "RequestsOnly":
        problem(path, f"{where}: controlledValues must be RequestsOnly (the limits are set by hand, see vpa.yaml)")
    resources = (containers.get(container_name) or {}).get("resources") or {}
    low, high = policy.get("minAllowed") or {}, policy.get("maxAllowed") or {}
    for resource in controlled:
        lo, hi = quantity(low.get(resource, "")), quantity(high.get(resource, ""))
        if lo is None or hi is None:
            problem(path, f"{where}: minAllowed and maxAllowed need a {resource} quantity")
            continue
        if not 0 < lo <= hi:
            problem(path, f"{where}: minAllowed {resource} {low[resource]} must be above 0 and at most maxAllowed {high[resource]}")
        request = quantity(((resources.get("requests") or {}).get(resource, "")))
        limit = quantity(((resources.get("limits") or {}).get(resource, "")))
        if request is not None and not lo <= request <= hi:
            problem(path, f"{where}: the {resource} request it runs with ({resources['requests'][resource]}) is outside [{low[resource]}, {high[resource]}]")
        if limit is not None and hi > limit:
            problem(path, f"{where}: maxAllowed {resource} {high[resource]} is above the limit {resources['limits'][resource]}; a request may not exceed it")
