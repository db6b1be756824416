#!/usr/bin/env bash
# Creates StreamGate's Python virtual environment in .venv/ (repository root) when it is missing,
# and installs scripts/requirements.txt into it when that file is newer than the stamp
# .venv/.requirements-stamp. A second run does nothing and needs no network.
# PYTHON picks the interpreter (default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
requirements="$root/scripts/requirements.txt"
stamp="$venv/.requirements-stamp"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "python-env: $python not found; install Debian's python3 and python3-venv packages" >&2
  exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
  # Debian splits venv's ensurepip into python3-venv; without it `python3 -m venv` leaves a
  # half-made .venv behind, so check first.
  if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python-env: $python cannot create a virtual environment: Debian's python3-venv package is needed (scripts/bootstrap.sh installs it)" >&2
    exit 1
  fi
  echo "python-env: creating $venv" >&2
  "$python" -m venv --clear "$venv"
fi

if [[ ! -f "$stamp" || "$requirements" -nt "$stamp" ]]; then
  echo "python-env: installing scripts/requirements.txt into .venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
  touch "$stamp"
fi
