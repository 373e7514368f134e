"""`stylegan-anime doctor`: which path (native kernel or reference) each op takes on each
device kind, and why; builds the CPU kernels if they are not built yet."""
from __future__ import annotations

import argparse

import torch

from .. import native_build


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="show whether the native ops are used, per op and device, and why")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}), "
          f"ops mode {native_build.ops_mode()} (${native_build.ENV_MODE}), cache {native_build.cache_root()}")
    rows = [(op, kind, *native_build.status(op, kind)) for op in native_build.OPS for kind in native_build.DEVICE_KINDS]
    print(f"{'op':<10} {'device':<7} {'path':<7} why")
    for op, kind, path, why in rows:
        print(f"{op:<10} {kind:<7} {path:<7} {why}")
    return 0
