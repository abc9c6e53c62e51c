#!/usr/bin/env bash
# Sets up a development machine: the system packages the tests use, then a virtual environment with litdata.
#   bash scripts/setup.sh            (the README's first command runs this)
# Chromium renders the HTML report in a test; it comes from Debian's packages. Without root (or apt-get) the
# script says what to install and goes on; the HTML test then fails under CI=true instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: Chromium is missing; install it (e.g. 'sudo apt-get install chromium') for the HTML report test" >&2
  fi
fi

python3 -m venv .venv
. .venv/bin/activate
# torch is pinned so that pip takes the CPU build; an unpinned torch pulls a multi-GB CUDA build.
pip install -q torch==2.13.0 -e '.[dev]'
