"""`stylegan-anime doctor`: which path (native kernel or reference) each op would take now on each
device kind, and why; ``--build`` builds the native ops of the devices present and waits."""
from __future__ import annotations

import argparse

import torch

from ..errors import UserError
from ..ops import native_build
from ..networks import winograd
from . import doctor_check
from .args import int_arg, resolution_arg


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="show whether the native ops are used, per op and device, and why")
    p.add_argument("--build", action="store_true",
                   help="build the native ops now (CPU, and CUDA when a GPU is present) and wait, "
                        "retrying builds that failed")
    doctor_check.add_arguments(p)
    p.add_argument("--plan", action="store_true",
                   help="print the inference plan: per synthesis layer its resolution, channels, "
                        "convolution algorithm, epilogue, toRGB fusion and why")
    p.add_argument("--network", default=None,
                   help="with --plan: registry name, weights file or URL (default: random config-F weights; "
                        "the plan depends only on the shapes)")
    p.add_argument("--batch", type=int_arg("--batch", 1), default=1, help="with --plan: images per forward")
    p.add_argument("--resolution", type=resolution_arg("--resolution"), default=256,
                   help="with --plan and no --network: the random network's resolution")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.build:
        kinds = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for kind in kinds:
            native_build.main([kind])
    if args.check:
        return doctor_check.run_check(args)
    if args.plan:
        return run_plan(args)
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}), "
          f"ops mode {native_build.ops_mode()} (${native_build.ENV_MODE}), cache {native_build.cache_root()}")
    rows = [(op, kind, *native_build.status(op, kind)) for op in native_build.OPS for kind in native_build.DEVICE_KINDS]
    width = max(len(op) for op in native_build.OPS)
    print(f"{'op':<{width}} {'device':<7} {'path':<7} why")
    for op, kind, path, why in rows:
        print(f"{op:<{width}} {kind:<7} {path:<7} {why}")
    isa = " ".join(native_build.cpu_isa_flags()) or "none (no AVX2)"
    print(f"native CPU builds: vector flags {isa} (torch's CPU capability: {torch.backends.cpu.get_cpu_capability()})")
    for line in _winograd_status():
        print(line)
    print("each synthesis layer's choice for a network and batch size: stylegan-anime doctor --plan "
          "[--network N] [--batch B]")
    return 0


def _winograd_status() -> list[str]:
    """What the 3x3 convolutions on the CPU run as: inference forwards, and with gradients."""
    mode = winograd.winograd_mode()
    if mode == "off":
        return [f"3x3 convs on the cpu: direct (oneDNN) everywhere (${winograd.ENV_MODE}=off)"]
    every = mode == "always"
    if not winograd.nnpack_available():
        inference = "direct (oneDNN) everywhere: this torch has no usable NNPACK"
    else:
        where = "every layer" if every else (f"large layers (>= {winograd.MIN_PIXELS} pixels and "
                                             f"{winograd.MIN_WORK} pixel*channel^2)")
        inference = f"Winograd (NNPACK) on {where}, direct elsewhere"
    status, why = native_build.status("winograd", "cpu")
    if status != "native":
        training = f"direct (oneDNN) everywhere: the winograd op is unavailable ({why})"
    else:
        where = "every layer" if every else (f">= {winograd.MIN_TILES} tiles and {winograd.MIN_CHANNELS} channels")
        training = f"Winograd F(4x4,3x3) on {where}, direct elsewhere"
    lines = [f"3x3 convs, inference on the cpu: {inference} (${winograd.ENV_MODE}={mode})",
             f"3x3 convs, with gradients on the cpu: {training} (${winograd.ENV_MODE}={mode})"]
    if status == "native":
        where = "every stride-1 layer" if every else (f"stride-1 layers of >= {winograd.FUSED_MIN_PIXELS} pixels "
                                                      f"and <= {winograd.FUSED_MAX_CHANNELS} channels")
        lines.append(f"3x3 convs, generation API (filters kept): fused Winograd F(4x4,3x3) on {where}")
        where = "every layer (unfused for float64)" if every else (
            f"fused stride-2 Winograd on >= {winograd.FUSED_UP_MIN_PIXELS} input pixels and "
            f"<= {winograd.FUSED_UP_MAX_CHANNELS} channels in, unfused on >= {winograd.UP_MIN_TILES} windows of 4x4 "
            f"and >= {winograd.UP_MIN_CHANNELS} channels in, oneDNN elsewhere")
        lines.append(f"upsampling convs, generation API (filters kept): {where}")
    return lines


def run_plan(args: argparse.Namespace) -> int:
    """Print the inference plan of --network (or of random config-F weights) for --batch images on the CPU
    (or --device)."""
    from ..networks import Generator, GeneratorConfig
    device = torch.device(args.device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: there is no CUDA device")
    if args.network is None:
        G = Generator(GeneratorConfig(img_resolution=args.resolution)).eval().requires_grad_(False).to(device)
        source = f"random config-F weights at {args.resolution}x{args.resolution}"
    else:
        from ..io import loading
        G, source = loading.load(args.network, device=device), args.network
    print(f"network: {source}")
    print(G.plan(device, args.batch).table())
    return 0

