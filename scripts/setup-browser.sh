#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium` package) for the browser test of the API docs
# (tests/system/test_api_docs.py); a no-op when `chromium` is already on PATH. Needs root or sudo; without
# them, or without a package index, it says why and exits 0 (that test then skips, naming the reason).
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
as_root=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup-browser: chromium is missing and installing it needs root; the browser test will skip" >&2
    exit 0
  fi
  as_root=(sudo -n)
fi
echo "installing chromium (Debian package) for the browser test…"
if ! { "${as_root[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq \
    --no-install-recommends chromium >/dev/null; }; then
  echo "setup-browser: could not install chromium; the browser test will skip" >&2
fi
