#!/usr/bin/env bash
# Set up and run the whole test suite (CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One build cache per checkout: native ops compile once per test run, not per test.
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$PWD/.build/torch_extensions}"
python -m pytest -q tests "$@"
