"""Which convolution each synthesis layer runs, decided once per layer shape, with the reason.

The thresholds live in ``networks/winograd.py`` (each cites the measurement that set it) and the
order of the rules in ``networks/fast_modconv.py`` (``same_conv_algorithm``, ``up_conv_algorithm``);
this module asks them once for a layer's shapes instead of once per forward, and says why in words.
A plan keeps its filters between forwards, so the rules that need kept filters apply.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..networks import fast_modconv, winograd


# A pass over the high-resolution blocks takes as many samples as keep the block's largest tensor within
# this many bytes (at least one): the activations then stay small, whatever the batch. 64 MiB was no
# faster at 512² batch 8 and holds 160 MiB more; 16 MiB was slower (benchmarks/THRESHOLDS.md).
PASS_BYTES = 32 * 2 ** 20


def samples_per_pass(batch_size: int, block_bytes: Sequence[int], budget: int | None = None) -> list[int]:
    """For each block in order, the samples one pass takes: the most (up to ``batch_size``) whose largest
    tensor, ``block_bytes`` per sample, fits ``budget`` (default ``PASS_BYTES``); at least one; never more
    than the block before (a pass runs a sub-batch of its parent's)."""
    budget = PASS_BYTES if budget is None else budget
    out, cap = [], batch_size
    for nbytes in block_bytes:
        cap = max(1, min(cap, budget // max(1, nbytes)))
        out.append(cap)
    return out


@dataclass(frozen=True)
class Choice:
    """A layer's conv algorithm (one of ``fast_modconv.SAME_ALGORITHMS`` / ``UP_ALGORITHMS``) and why."""
    algorithm: str
    why: str


def probe(n: int, c: int, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A [n, c, h, w] tensor of dtype on device holding one element: the rules read only shape, dtype
    and device, so the walk allocates no activations."""
    return torch.zeros((), dtype=dtype, device=device).expand(n, c, h, w)


def choose_same(n: int, in_c: int, out_c: int, res: int, k: int, padding: int, dtype: torch.dtype,
                device: torch.device) -> Choice:
    """The stride-1 modulated conv of [n, in_c, res, res] with a [out_c, in_c, k, k] kernel."""
    x = probe(n, in_c, res, res, dtype, device)
    algorithm = fast_modconv.same_conv_algorithm(x, (out_c, in_c, k, k), padding, filters_kept=True)
    return Choice(algorithm, _why(algorithm, x, (out_c, in_c, k, k), padding))


def choose_up(n: int, in_c: int, out_c: int, in_res: int, k: int, up: int, fir_splits: bool,
              dtype: torch.dtype, device: torch.device) -> Choice:
    """The upsampling modulated conv of [n, in_c, in_res, in_res] with a [out_c, in_c, k, k] kernel;
    ``fir_splits``: whether its FIR filter splits into separable taps."""
    x = probe(n, in_c, in_res, in_res, dtype, device)
    algorithm = fast_modconv.up_conv_algorithm(x, (out_c, in_c, k, k), fir_splits, up, filters_kept=True)
    why = _why(algorithm, x, (out_c, in_c, k, k), k // 2)
    return Choice(algorithm, why if fir_splits else why + "; FIR filter not separable: reference resampling")


def _why(algorithm: str, x: torch.Tensor, shape: tuple[int, int, int, int], padding: int) -> str:
    """The rule that picked ``algorithm`` for x: [N, C, H, W] and a kernel of ``shape``, in words."""
    mode = winograd.winograd_mode()
    if mode == "always" and algorithm not in ("grouped", "direct", "up_weights", "up_direct"):
        return f"${winograd.ENV_MODE}=always"
    px = x.shape[2] * x.shape[3]
    if algorithm == "fused":
        return f"{px} px >= {winograd.FUSED_MIN_PIXELS}, <= {winograd.FUSED_MAX_CHANNELS} channels"
    if algorithm == "f43_unkept":
        return (f">= {winograd.KEPT_FILTER_MIN_CHANNELS} channels, {winograd.UNKEPT_MIN_TILES}-"
                f"{winograd.UNKEPT_MAX_TILES} tiles a call: F(4x4,3x3), its filters made per call, not kept")
    if algorithm == "f43":
        if winograd.f43_preferred(x, shape, padding, True):
            return (f">= {winograd.KEPT_FILTER_MIN_CHANNELS} channels, <= {winograd.KEPT_FILTER_MAX_TILES} "
                    "tiles a call: kept F(4x4,3x3) filters beat NNPACK")
        return f">= {winograd.MIN_TILES} tiles and >= {winograd.MIN_CHANNELS} channels"
    if algorithm == "nnpack":
        return f"{px} px >= {winograd.MIN_PIXELS} and px*C_in*C_out >= 2^28"
    if algorithm == "grouped":
        return "per-sample weights are smaller than the activations"
    if algorithm == "up_fused":
        return f"{px} input px >= {winograd.FUSED_UP_MIN_PIXELS}, <= {winograd.FUSED_UP_MAX_CHANNELS} channels in"
    if algorithm == "up_winograd":
        return f">= {winograd.UP_MIN_TILES} windows and >= {winograd.UP_MIN_CHANNELS} channels in"
    if algorithm == "up_weights":
        return "one image: per-sample weights are smaller than the activations"
    if mode == "off":
        return f"${winograd.ENV_MODE}=off"
    return "small layer: oneDNN's direct conv is as fast"
