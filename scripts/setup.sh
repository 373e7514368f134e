#!/usr/bin/env bash
# Install stylegan-anime and its dependencies into the current Python (a venv is recommended).
# The CPU build of torch is pinned first so that pip does not pull a multi-GB CUDA build;
# on a GPU machine (Colab) keep the torch that is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --upgrade pip >/dev/null
if ! python -c "import torch" 2>/dev/null; then
    python -m pip install -q "torch==2.13.0"
fi
python -m pip install -q -e ".[test,notebook,export,app]"
bash scripts/setup_browser.sh
