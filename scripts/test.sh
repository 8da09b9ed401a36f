#!/usr/bin/env bash
# Sets everything up, lints, then runs the whole test suite (extra arguments go to pytest).
# `scripts/test.sh -m "not training"` is the fast suite: every test that trains carries that marker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements-dev.txt
scripts/setup-browser.sh  # Debian's chromium for the docs test (skipped with the reason if it cannot be had)
source scripts/test-services.sh  # PostgreSQL and Redis: the machine's when they answer, else started here
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
