"""Safe rollouts: the server's blue-green slots (two Deployments that differ only in their slot, a
live Service and a preview Service on opposite slots, a preStop that outlasts endpoint removal),
the canary workers (the workers' pods but for `--track canary`, out of their selector), the
PodDisruptionBudgets of every workload, and deploy/blue-green.sh's names."""

from __future__ import annotations

import re

from .common import (
    BLUE_GREEN, CANARY, K8S, SERVER, SERVER_DRAIN_SECONDS, SERVER_PREVIEW, SERVER_SLOTS, SLOT_LABEL, SLOTS, TRACK_LABEL,
    WORKER, find, pod_spec, problem, selects,
)

PLACEHOLDER = "<slot>"


def without_slot(value, slot):
    """A copy of an object with its slot name (and the name derived from it) replaced, to compare slots."""
    if isinstance(value, dict):
        return {k: without_slot(v, slot) for k, v in value.items()}
    if isinstance(value, list):
        return [without_slot(v, slot) for v in value]
    if value == slot:
        return PLACEHOLDER
    if isinstance(value, str) and value.endswith(f"-{slot}"):
        return value[: -len(slot)] + PLACEHOLDER
    return value


def max_unavailable_zero(value) -> bool:
    return value in (0, "0", "0%")


def pre_stop_seconds(container) -> int | None:
    """How long a container's preStop hook waits: `exec: sleep N` or `sleep: {seconds: N}`."""
    hook = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in hook:
        seconds = (hook.get("sleep") or {}).get("seconds")
        return seconds if isinstance(seconds, int) else None
    command = [str(w) for w in (hook.get("exec") or {}).get("command") or []]
    if len(command) == 2 and command[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep") and command[1].isdigit():
        return int(command[1])
    return None


def check_blue_green(docs) -> None:
    slots = {}
    for slot, name in zip(SLOTS, SERVER_SLOTS):
        path, doc = find(docs, "Deployment", name)
        if doc is not None:
            slots[slot] = (path, doc)
            check_slot(path, doc, slot)
    if len(slots) == len(SLOTS):
        (path, first), (_, second) = (slots[s] for s in SLOTS)
        if without_slot(first, SLOTS[0]) != without_slot(second, SLOTS[1]):
            problem(path, f"{SERVER_SLOTS[0]} and {SERVER_SLOTS[1]} must be the same but for the slot: a switch must change the version only")
    check_services(docs)


def check_slot(path, doc, slot) -> None:
    name, spec = doc["metadata"]["name"], doc["spec"]
    template = spec.get("template") or {}
    for where, labels in (("metadata.labels", doc["metadata"].get("labels")),
                          ("spec.selector.matchLabels", (spec.get("selector") or {}).get("matchLabels")),
                          ("the pod template's labels", (template.get("metadata") or {}).get("labels"))):
        if (labels or {}).get(SLOT_LABEL) != slot:
            problem(path, f"{name}: {where} needs {SLOT_LABEL}: {slot}")
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or not max_unavailable_zero((strategy.get("rollingUpdate") or {}).get("maxUnavailable")):
        problem(path, f"{name}: strategy must be RollingUpdate with maxUnavailable: 0, so a rollout inside a slot never lowers its capacity")
    grace = pod_spec(doc).get("terminationGracePeriodSeconds", 30)
    for container in pod_spec(doc).get("containers") or []:
        seconds = pre_stop_seconds(container)
        if seconds is None:
            problem(path, f"{name}: container {container.get('name')} needs a preStop `sleep N`: the server stops accepting on SIGTERM, before every proxy has seen the pod leave the endpoints")
        elif not 5 <= seconds <= 60:
            problem(path, f"{name}: the preStop sleep of {seconds} s should be 5 to 60 s")
        elif not isinstance(grace, int) or grace < seconds + SERVER_DRAIN_SECONDS:
            problem(path, f"{name}: terminationGracePeriodSeconds {grace} must cover the preStop ({seconds} s) and the server's {SERVER_DRAIN_SECONDS} s of draining after SIGTERM")


def check_services(docs) -> None:
    live_path, live = find(docs, "Service", SERVER)
    preview_path, preview = find(docs, "Service", SERVER_PREVIEW)
    if preview is None:
        problem(K8S, f"no Service {SERVER_PREVIEW}, which selects the idle slot for testing")
    if live is None or preview is None:
        return
    selectors = {}
    for path, service in ((live_path, live), (preview_path, preview)):
        selector = dict((service.get("spec") or {}).get("selector") or {})
        slot = selector.pop(SLOT_LABEL, None)
        if slot not in SLOTS:
            problem(path, f"Service {service['metadata']['name']} must select one slot: {SLOT_LABEL} {' or '.join(SLOTS)}, not {slot!r}")
        selectors[service["metadata"]["name"]] = (slot, selector, service["spec"].get("ports"))
    (live_slot, live_rest, live_ports), (preview_slot, preview_rest, preview_ports) = selectors[SERVER], selectors[SERVER_PREVIEW]
    if live_slot == preview_slot:
        problem(preview_path, f"Service {SERVER_PREVIEW} must select the idle slot, not {live_slot}, which {SERVER} selects")
    if live_rest != preview_rest or live_ports != preview_ports:
        problem(preview_path, f"Service {SERVER_PREVIEW} must have {SERVER}'s selector (but the slot) and ports, so a preview is what goes live")


def without_track(spec):
    """A pod spec with `--track canary` taken out of its containers' args, to compare with the workers'."""
    spec = dict(spec)
    containers = []
    for container in spec.get("containers") or []:
        args = [str(a) for a in container.get("args") or []]
        for i in range(len(args) - 1):
            if args[i] == "--track" and args[i + 1] == "canary":
                args = args[:i] + args[i + 2:]
                break
        containers.append({**container, "args": args})
    spec["containers"] = containers
    return spec


def check_canary(docs, worker) -> None:
    """The canary workers run the workers' pods but for `--track canary`, under labels of their
    own that the workers' selector does not match, at a fixed count nothing autoscales."""
    path, canary = find(docs, "Deployment", CANARY)
    if canary is None:
        problem(K8S, f"no Deployment {CANARY} (the canary workers of `streamgate rollout`)")
        return
    spec = canary.get("spec") or {}
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        problem(path, f"{CANARY}: set replicas (1): nothing autoscales the canary")
    template_labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    for where, labels in (("metadata.labels", canary["metadata"].get("labels")),
                          ("spec.selector.matchLabels", (spec.get("selector") or {}).get("matchLabels")),
                          ("the pod template's labels", template_labels)):
        if (labels or {}).get(TRACK_LABEL) != "canary":
            problem(path, f"{CANARY}: {where} needs {TRACK_LABEL}: canary")
    for container in pod_spec(canary).get("containers") or []:
        args = [str(a) for a in container.get("args") or []]
        if not any(args[i:i + 2] == ["--track", "canary"] for i in range(len(args))):
            problem(path, f"{CANARY}: container {container.get('name')} must pass --track canary")
    for _, doc in docs:
        target = ((doc.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
        if doc["kind"] in ("ScaledObject", "HorizontalPodAutoscaler") and target == CANARY:
            problem(path, f"{doc['kind']} {doc['metadata']['name']} scales {CANARY}: the canary's count is set by hand, its share by `rollout set-share`")
    if worker is None:
        return
    worker_labels = (worker["spec"].get("template") or {}).get("metadata", {}).get("labels") or {}
    if selects(worker["spec"].get("selector"), template_labels):
        problem(path, f"{CANARY}: its pods match {WORKER}'s selector, which cannot change: give them another app.kubernetes.io/component")
    if selects(spec.get("selector"), worker_labels):
        problem(path, f"{CANARY}: its selector matches {WORKER}'s pods")
    for container in pod_spec(worker).get("containers") or []:
        if "--track" in [str(a) for a in container.get("args") or []]:
            problem(path, f"{WORKER}: the stable workers take the default track; --track belongs to {CANARY}")
    if without_track(pod_spec(canary)) != without_track(pod_spec(worker)):
        problem(path, f"{CANARY}: its pod spec must be {WORKER}'s but for --track canary, so a canary judges the version alone")
    worker_annotations = (worker["spec"].get("template") or {}).get("metadata", {}).get("annotations")
    if (spec.get("template") or {}).get("metadata", {}).get("annotations") != worker_annotations:
        problem(path, f"{CANARY}: its pod annotations must be {WORKER}'s (scraping, eviction)")


def check_disruption_budgets(docs) -> None:
    """Every replicated workload has exactly one budget (the eviction API refuses a pod with two);
    the autoscaled ones a maxUnavailable that lets a drain go on."""
    budgets = [(p, d) for p, d in docs if d["kind"] == "PodDisruptionBudget"]
    for path, workload in docs:
        if workload["kind"] not in ("Deployment", "StatefulSet"):
            continue
        name = workload["metadata"]["name"]
        labels = ((workload["spec"].get("template") or {}).get("metadata") or {}).get("labels")
        covering = [(p, b) for p, b in budgets if selects((b.get("spec") or {}).get("selector"), labels)]
        if len(covering) > 1:
            problem(path, f"{name}: its pods match {len(covering)} PodDisruptionBudgets ({', '.join(b['metadata']['name'] for _, b in covering)}); the eviction API refuses such pods, so drains stall")
        if not covering:
            problem(path, f"{name}: no PodDisruptionBudget covers its pods")
            continue
        budget_path, budget = covering[0]
        spec = budget.get("spec") or {}
        if name in (*SERVER_SLOTS, WORKER):
            if "minAvailable" in spec or "maxUnavailable" not in spec:
                problem(budget_path, f"PodDisruptionBudget {budget['metadata']['name']}: use maxUnavailable, which follows the count an autoscaler sets")
            elif max_unavailable_zero(spec["maxUnavailable"]):
                problem(budget_path, f"PodDisruptionBudget {budget['metadata']['name']}: maxUnavailable 0 blocks every node drain")
        if name in SERVER_SLOTS and (spec.get("selector") or {}).get("matchLabels", {}).get(SLOT_LABEL) is None:
            problem(budget_path, f"PodDisruptionBudget {budget['metadata']['name']}: select one slot ({SLOT_LABEL}), or the idle slot's pods could let a drain empty the live one")


def check_blue_green_script(docs) -> None:
    """deploy/blue-green.sh names what the manifests name."""
    if not BLUE_GREEN.exists():
        problem(BLUE_GREEN, "is missing")
        return
    text = BLUE_GREEN.read_text()
    if not text.startswith("#!/usr/bin/env bash\n") or "set -euo pipefail" not in text:
        problem(BLUE_GREEN, "must be a bash script with set -euo pipefail")
    values = dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.M))
    _, blue = find(docs, "Deployment", SERVER_SLOTS[0])
    container = ((pod_spec(blue).get("containers") or [{}])[0].get("name")) if blue else None
    expected = {"LIVE_SERVICE": SERVER, "PREVIEW_SERVICE": SERVER_PREVIEW, "DEPLOYMENT_PREFIX": f"{SERVER}-",
                "SLOT_LABEL": SLOT_LABEL, "CONTAINER": container}
    for variable, value in expected.items():
        if values.get(variable) != value:
            problem(BLUE_GREEN, f"{variable}={values.get(variable)} does not match the manifests ({value})")
    # kubectl's jsonpath needs the label's dots escaped; the script spells it out there.
    escaped = SLOT_LABEL.replace(".", "\\.")
    if escaped not in text:
        problem(BLUE_GREEN, f"reads the slot with a jsonpath that does not name {escaped}")
    if not all(re.search(rf"^\s*{slot}\) echo ", text, re.M) for slot in SLOTS):
        problem(BLUE_GREEN, f"must know the slots {', '.join(SLOTS)} (its function `other`)")
