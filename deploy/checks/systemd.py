"""The systemd units and their environment file, for hosts that share only Redis and the bucket."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from .cli import known_flags, unknown_flags
from .common import BINARY, ENV_FILE, S3_ENV_FILE, STATE_DIR, SYSTEMD, problem

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


def all_values(path: Path, key: str) -> list[str]:
    """Every value of a directive that may be repeated (configparser keeps only the last)."""
    return [m.strip() for m in re.findall(rf"^{re.escape(key)}=(.*)$", path.read_text(), re.M)]


def env_names(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def check_env_example(example: Path, env: dict[str, str]) -> None:
    if env.get("STREAMGATE_API_KEYS"):
        problem(example, "STREAMGATE_API_KEYS must stay empty in the example (no key is ever committed)")
    if "STREAMGATE_MASTER_KEY" in env:
        problem(example, "the master key is /etc/streamgate/master.key (LoadCredential=), not a variable")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if key in env:
            problem(example, f"{key} belongs in the root-only {S3_ENV_FILE}, not in this file (no key is ever committed)")
    if not env.get("STREAMGATE_STORE", "").startswith("s3://"):
        problem(example, "STREAMGATE_STORE must be s3://BUCKET/PREFIX: hosts share only Redis and the bucket")
    if "AWS_REGION" not in env:
        problem(example, "AWS_REGION must be defined (request signatures name the region)")
    if not env.get("STREAMGATE_REDIS_WAIT_REPLICAS", "").isdigit():
        problem(example, "STREAMGATE_REDIS_WAIT_REPLICAS must be a number (0 for one Redis, 1 behind Sentinel)")


def check_spool(path: Path, service, exec_start: str) -> None:
    """A worker's spool is its own cache folder, emptied before it starts."""
    match = re.search(r"--spool\s+\"?([^\s\"]+)", exec_start)
    if not match:
        problem(path, "pass --spool: a transcode's output waits there for the upload, not in the private /tmp")
        return
    spool = match.group(1)
    caches = [f"/var/cache/{d}" for d in (service.get("CacheDirectory") or "").split()]
    if spool not in caches:
        problem(path, f"--spool {spool} must be one of its CacheDirectory= folders ({', '.join(caches) or 'none'})")
    if not any(spool in line for line in all_values(path, "ExecStartPre")):
        problem(path, f"empty {spool} in ExecStartPre=: a killed worker leaves its transcode's files there")


def check_systemd() -> None:
    example = SYSTEMD / "streamgate.env.example"
    env = env_names(example) if example.exists() else {}
    if not example.exists():
        problem(example, "is missing")
    else:
        check_env_example(example, env)
    known = known_flags()

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
            "User": "streamgate", "KillSignal": "SIGTERM", "Restart": "on-failure", "NoNewPrivileges": "yes",
            "ProtectSystem": "strict", "PrivateTmp": "yes",
        }
        for key, value in required.items():
            if service.get(key) != value:
                problem(path, f"needs {key}={value} (has {service.get(key)!r})")
        # The S3 keys: a root-only file systemd reads before it drops privileges; `-` because a
        # host with a folder store has none.
        for wanted in (ENV_FILE, f"-{S3_ENV_FILE}"):
            if wanted not in all_values(path, "EnvironmentFile"):
                problem(path, f"needs EnvironmentFile={wanted}")
        if STATE_DIR not in (service.get("ReadWritePaths") or "").split():
            problem(path, f"needs ReadWritePaths={STATE_DIR}")
        exec_start = service.get("ExecStart") or ""
        if not exec_start:
            problem(path, "needs ExecStart=")
        elif not re.search(rf"{re.escape(BINARY)}\s+{subcommand}\b", exec_start):
            problem(path, f"ExecStart must run `{BINARY} {subcommand}`")
        for unknown in unknown_flags(exec_start.replace('"', " ").replace("'", " ").split(), known):
            problem(path, f"ExecStart passes {unknown}, which `streamgate {subcommand}` does not define (Sources/streamgate)")
        for wanted in ("--store", "--redis", "--redis-wait-replicas"):
            if wanted not in exec_start.split():
                problem(path, f"pass {wanted}")
        if subcommand != "serve":
            if "--profiles" not in exec_start:
                problem(path, "pass --profiles (the default, `profiles`, is relative to the working directory)")
            check_spool(path, service, exec_start)
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
