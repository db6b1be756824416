#!/usr/bin/env python3
"""Checks what a JSON schema cannot see in StreamGate's deploy/ folder.

kubernetes-validate checks each built-in Kubernetes resource against its schema; this script checks
the rest, offline: the KEDA ScaledObject and the VerticalPodAutoscalers (CRDs it has no schema
for), that the manifests agree with each other and with StreamGate's command line (every flag they
pass exists in Sources/streamgate), the server's blue-green slots, Services, PodDisruptionBudgets
and HPAs and deploy/blue-green.sh's names, the canary workers (the workers' pods but for the
track), that the store is a bucket and nothing is shared on disk, that Redis runs behind sane sentinels, that no secret is committed and every Secret used is
created in deploy/README.md, that every systemd unit has what it needs, and that both redis.conf
files keep the queue durable and bounded.

Run by deploy/validate.sh with the project's .venv (PyYAML). Prints one line per problem, naming the
file, and exits 1 if there is any. The checks live in deploy/checks/, one module per concern.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ left in deploy/checks

from checks.cli import check_manifest_flags  # noqa: E402
from checks.common import DEPLOY, load_manifests, problem, problems, run  # noqa: E402
from checks.kubernetes import (  # noqa: E402
    check_common, check_kustomization, check_secrets_documented, check_server, check_store_config, check_worker,
)
from checks.redis import check_redis, check_redis_conf  # noqa: E402
from checks.rollout import check_blue_green, check_blue_green_script, check_canary, check_disruption_budgets  # noqa: E402
from checks.scaling import check_hpa, check_scaled_object, check_vpa  # noqa: E402
from checks.systemd import check_systemd  # noqa: E402


def main() -> int:
    docs = run(load_manifests) or []
    run(check_kustomization, docs)
    run(check_common, docs)
    run(check_secrets_documented, docs)
    run(check_store_config, docs)
    worker = run(check_worker, docs)
    run(check_server, docs, worker)
    run(check_redis, docs)
    run(check_scaled_object, docs, worker)
    run(check_blue_green, docs)
    run(check_blue_green_script, docs)
    run(check_canary, docs, worker)
    run(check_disruption_budgets, docs)
    run(check_hpa, docs)
    run(check_vpa, docs)
    run(check_manifest_flags, docs)
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
