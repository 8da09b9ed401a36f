#!/usr/bin/env bash
# Sets everything up, then runs the server on 127.0.0.1:8000 (SQLite and the built-in executor in ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
exec .venv/bin/python -m uvicorn main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
