#!/usr/bin/env bash
# CI check of the CUDA kernels on a machine without a GPU: compile and link them with the CUDA
# build of torch, in a venv outside the checkout that is created once and reused while its torch
# matches. Builds are cached by source hash in the same folder, so an unchanged kernel costs
# nothing on the next run. Fails on a compile or link error and on a compiler warning in ops/.
#
#   STYLEGAN_ANIME_CI_CACHE  venv + build cache (default ~/.cache/stylegan-anime-ci)
#   CUDA_HOME                CUDA toolkit folder (default: the first of /usr/local/cuda-13.0, /usr/local/cuda)
#   TORCH_CUDA_ARCH_LIST     default "7.5;8.0;9.0+PTX" (T4, A100, H100, and PTX for newer GPUs)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${STYLEGAN_ANIME_CI_CACHE:-$HOME/.cache/stylegan-anime-ci}"
TORCH_VERSION="${STYLEGAN_ANIME_CUDA_TORCH:-2.14.1}"
VENV="$CACHE/venv-cuda"
start=$SECONDS

if [ -z "${CUDA_HOME:-}" ]; then
    for dir in /usr/local/cuda-13.0 /usr/local/cuda; do
        if [ -x "$dir/bin/nvcc" ] && [ -e "$dir/lib64/libcudart.so" ]; then CUDA_HOME="$dir"; break; fi
    done
fi
if [ -z "${CUDA_HOME:-}" ] || [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "build_cuda_ops: SKIPPED: no CUDA toolkit found (set CUDA_HOME)"
    exit 0
fi

mkdir -p "$CACHE"
if ! "$VENV/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION' or torch.version.cuda is None)" 2>/dev/null; then
    echo "build_cuda_ops: creating $VENV with torch==$TORCH_VERSION (CUDA build)"
    rm -rf "$VENV"
    python -m venv "$VENV"
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" ninja numpy > "$CACHE/venv-cuda-pip.log" 2>&1 \
        || { tail -20 "$CACHE/venv-cuda-pip.log"; exit 1; }
fi
echo "build_cuda_ops: venv ready after $((SECONDS - start)) s"

export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-7.5;8.0;9.0+PTX}"
export TORCH_EXTENSIONS_DIR="$CACHE/torch_extensions"
export MAX_JOBS="${MAX_JOBS:-2}"
log="$CACHE/build_cuda_ops.log"
# native_build.py runs stand-alone (it needs only torch), so the venv needs no other dependency.
set +e
"$VENV/bin/python" stylegan_anime/ops/native_build.py cuda --check-only --verbose > "$log" 2>&1
status=$?
set -e
grep -E "^(upfirdn2d|bias_act) cuda:" "$log" || true
if [ $status -ne 0 ]; then
    echo "build_cuda_ops: FAILED (log: $log)"
    grep -E -A3 "error|Error" "$log" | head -40
    exit 1
fi
if grep -E "/ops/[^:/]+:[0-9]+.*warning" "$log"; then
    echo "build_cuda_ops: FAILED: compiler warnings in ops/ (log: $log)"
    exit 1
fi
echo "build_cuda_ops: CUDA extensions compile and link (archs $TORCH_CUDA_ARCH_LIST) in $((SECONDS - start)) s"
