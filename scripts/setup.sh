#!/usr/bin/env bash
# Creates .venv (Python 3.11), installs the pinned requirements and the project itself (editable, for the
# `imagerec` command); a no-op when nothing changed.
# Usage: scripts/setup.sh [requirements-file]   (default: requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
requirements="${1:-requirements.txt}"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "imagerec needs Python 3.11 (found $("$python_bin" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
stamp=.venv/.imagerec-requirements
wanted="$(cat requirements.txt "$requirements" pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing $requirements into .venv (torch takes a couple of minutes the first time)…"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  # The project itself, editable, for the `imagerec` command; --no-deps: requirements.txt is the pin list.
  # --no-build-isolation builds with the venv's own setuptools, nothing fetched; that needs setuptools >= 70.1
  # (older ones need `wheel` too, and a fresh venv's bundled one is older): else pip fetches what pyproject.toml's
  # [build-system] names.
  install_self=(.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .)
  "${install_self[@]}" --no-build-isolation 2>/dev/null || "${install_self[@]}"
  echo "$wanted" > "$stamp"
fi
