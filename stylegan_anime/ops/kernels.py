"""The two heavy ops of StyleGAN2, ``upfirdn2d`` and ``bias_act``.

This module holds their plain-PyTorch reference implementations, which *define*
the semantics; the native kernels in ``ops/`` must match them. Every network layer
calls ``upfirdn2d`` / ``bias_act`` from here, never the reference functions
directly, so that the native path can be switched in at one place: the native kernels
(``native_ops``, built on first use by ``native_build``) run wherever they build, and
``STYLEGAN_ANIME_OPS=ref`` or ``native_build.use_ops("ref")`` turns them off.

Parameters follow the public StyleGAN2 ops (facts, not code, carried over):

- ``upfirdn2d(x, f, up, down, padding, flip_filter, gain)``: insert ``up - 1``
  zeros after every input sample, pad (negative padding crops), convolve with the
  FIR filter ``f`` (a true convolution unless ``flip_filter``; 2-D or separable
  1-D), keep every ``down``-th sample. The filter is scaled by
  ``gain ** (f.ndim / 2)`` so that a separable filter applied twice gains ``gain``.
- ``bias_act(x, b, dim, act, alpha, gain, clamp)``: ``x + b`` (broadcast along
  ``dim``), activation, times ``gain`` (default: the activation's own gain, e.g.
  sqrt(2) for lrelu), clamped to ``[-clamp, clamp]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from . import native_ops


# --------------------------------------------------------------------------- bias_act


@dataclass(frozen=True)
class Activation:
    """One activation function: its formula, default alpha and default gain."""

    name: str
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("linear", lambda x, _: x, 0.0, 1.0),
        Activation("relu", lambda x, _: F.relu(x), 0.0, math.sqrt(2)),
        Activation("lrelu", lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
        Activation("tanh", lambda x, _: torch.tanh(x), 0.0, 1.0),
        Activation("sigmoid", lambda x, _: torch.sigmoid(x), 0.0, 1.0),
        Activation("elu", lambda x, _: F.elu(x), 0.0, 1.0),
        Activation("selu", lambda x, _: F.selu(x), 0.0, 1.0),
        Activation("softplus", lambda x, _: F.softplus(x), 0.0, 1.0),
        Activation("swish", lambda x, _: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
    ]
}


def activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


def resolve_bias_act_args(act: str, alpha: float | None, gain: float | None, clamp: float | None):
    """Fill in an activation's defaults: (alpha, gain, clamp) with clamp -1 = none."""
    spec = activation(act)
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    clamp = float(-1 if clamp is None else clamp)
    return alpha, gain, clamp


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                 alpha: float | None = None, gain: float | None = None,
                 clamp: float | None = None) -> torch.Tensor:
    """Reference bias + activation + gain + clamp.

    x: any shape; b: [x.shape[dim]] or None; clamp: None or >= 0.
    """
    alpha, gain, clamp = resolve_bias_act_args(act, alpha, gain, clamp)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias shape {tuple(b.shape)} does not match x.shape[{dim}] = {x.shape[dim]}")
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = activation(act).func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


# --------------------------------------------------------------------------- upfirdn2d


def parse_scaling(s: int | Sequence[int]) -> tuple[int, int]:
    """An int or (sx, sy) → (sx, sy), each >= 1."""
    sx, sy = (s, s) if isinstance(s, int) else tuple(s)
    if sx < 1 or sy < 1:
        raise ValueError(f"up/down factors must be >= 1, got {s}")
    return int(sx), int(sy)


def parse_padding(p: int | Sequence[int]) -> tuple[int, int, int, int]:
    """An int, (px, py) or (x0, x1, y0, y1) → (x0, x1, y0, y1)."""
    if isinstance(p, int):
        return p, p, p, p
    p = [int(v) for v in p]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must have 1, 2 or 4 values, got {p}")


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter; None is the 1×1 identity."""
    if f is None:
        return 1, 1
    return (f.shape[-1], f.shape[0]) if f.ndim == 2 else (f.shape[0], f.shape[0])


def setup_filter(f: Sequence[float] | torch.Tensor | None, normalize: bool = True,
                 separable: bool = False, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 FIR filter from taps: 1-D taps become their outer product unless
    ``separable``; ``normalize`` makes the taps sum to 1."""
    # Taps are built on the CPU, where they have values even under a meta-device context.
    f = torch.ones(1, device="cpu") if f is None else torch.as_tensor(f, dtype=torch.float32, device="cpu")
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    return f if device is None else f.to(device=device)


def upfirdn2d_out_size(in_h: int, in_w: int, fh: int, fw: int, up: tuple[int, int], down: tuple[int, int],
                       pad: tuple[int, int, int, int]) -> tuple[int, int]:
    """Output (height, width) of upfirdn2d; raises if it would be empty."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    out_h = (in_h * upy + py0 + py1 - fh) // downy + 1
    out_w = (in_w * upx + px0 + px1 - fw) // downx + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"upfirdn2d output would be empty ({out_h}×{out_w}) for input {in_h}×{in_w}")
    return out_h, out_w


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 1,
                  down: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                  flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Reference upsample → pad → FIR filter → downsample.

    x: [N, C, H, W]; f: [fh, fw] (2-D), [fw] (separable, applied along x then y) or None;
    returns [N, C, out_h, out_w] (see ``upfirdn2d_out_size``).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects NCHW input, got shape {tuple(x.shape)}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape
    fw, fh = filter_size(f)
    upfirdn2d_out_size(h, w, fh, fw, (upx, upy), (downx, downy), (px0, px1, py0, py1))

    # Zero insertion: every sample is followed by up-1 zeros, so the upsampled size is H*up.
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)

    # Positive padding pads with zeros, negative padding crops.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # conv2d correlates; flipping the taps makes it the true convolution the op defines.
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::downy, ::downx]


# --------------------------------------------------------------------------- dispatch


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 1,
              down: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
              flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d on the native kernel where it runs (see ``native_build``), else the reference.

    Same arguments and result as ``upfirdn2d_ref``; gradients flow to x (not to the filter).
    """
    module = native_ops.native_module("upfirdn2d", x) if x.ndim == 4 else None
    if module is None or (f is not None and f.requires_grad):
        return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    up, down, pad = parse_scaling(up), parse_scaling(down), parse_padding(padding)
    fw, fh = filter_size(f)
    upfirdn2d_out_size(x.shape[2], x.shape[3], fh, fw, up, down, pad)
    return native_ops.upfirdn2d(x, native_ops.filter_2d(f, x), up, down, pad, bool(flip_filter), float(gain))


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """bias_act on the native kernel where it runs (see ``native_build``), else the reference.

    Same arguments and result as ``bias_act_ref``, computed in one pass over memory.
    """
    module = native_ops.native_module("bias_act", x)
    if module is None:
        return bias_act_ref(x, b, dim, act, alpha, gain, clamp)
    alpha, gain, clamp = resolve_bias_act_args(act, alpha, gain, clamp)
    if b is not None and (b.ndim != 1 or not 0 <= dim < x.ndim or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias shape {tuple(b.shape)} does not match x.shape[{dim}]")
    return native_ops.bias_act(x, b, dim, act, alpha, gain, clamp)


# --------------------------------------------------------------------------- resampling helpers


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: int | Sequence[int] = 0,
               flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample by ``up`` with FIR filter ``f``: [N,C,H,W] → [N,C,H*up,W*up] (padding 0).

    The filter is scaled by up² so that a normalised filter keeps the mean level.
    """
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=pad, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: int | Sequence[int] = 0,
                 flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Downsample by ``down`` with FIR filter ``f``: [N,C,H,W] → [N,C,H/down,W/down] (padding 0)."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2,
           py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=pad, flip_filter=flip_filter, gain=gain)
