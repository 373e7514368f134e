"""The end of a synthesis layer's forward after its convolution, in one pass over memory.

    out = clamp(lrelu(FIR(y) · scale[n, c] + bias[c] + noise_gain · noise[n, i, j], alpha), ±clamp)

FIR is a separable correlation (vertical taps ``th``, horizontal ``tw``) over y zero-padded by
``pad`` on every side: the blur after an upsampling convolution. Without taps it is the identity
and the result may overwrite y. The native op (``ops/layer_epilogue.cpp``, CPU, float32/64) reads
and writes each activation once; elsewhere (CUDA, ``STYLEGAN_ANIME_OPS=ref``, a failed build,
float16) torch's ops compute the same thing in several passes. Inference only: it records no
gradients, and the layers use it only for forwards that need none.

``layer_epilogue_ref`` defines it with the reference kernels (``kernels.upfirdn2d_ref`` and
``kernels.bias_act_ref``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import kernels, native_ops

MAX_TAPS = 16  # per axis: the native op's bound (ops/layer_epilogue.cpp)


@dataclass(frozen=True)
class Fir:
    """A separable FIR filter as correlation taps. th: [kh], tw: [kw]; pad >= 0 on every side."""

    th: torch.Tensor
    tw: torch.Tensor
    pad: int

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        return h + 2 * self.pad - self.th.numel() + 1, w + 2 * self.pad - self.tw.numel() + 1


@dataclass(frozen=True)
class Finish:
    """What ``layer_epilogue`` does after the FIR filter: scale: [N, C] or None, bias: [C] or None,
    noise: broadcastable to [N, 1, H, W] or None, alpha in (0, 1], clamp: None or >= 0."""
    scale: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    noise_gain: float = 0.0
    alpha: float = 1.0
    clamp: float | None = None

    def native_args(self, n: int, c: int, h: int, w: int) -> tuple:
        """(scale [N, C], bias [C], noise [1 or N, H, W] (float32, contiguous, or None), noise_gain,
        alpha, clamp (-1: none)), as the native fused conv takes them."""
        f32 = torch.float32
        return (None if self.scale is None else self.scale.to(f32).reshape(n, c).contiguous(),
                None if self.bias is None else self.bias.to(f32).reshape(c).contiguous(),
                None if self.noise is None else _noise_planes(self.noise.to(f32), n, h, w),
                float(self.noise_gain), float(self.alpha), -1.0 if self.clamp is None else float(self.clamp))


def separable_taps(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A 2-D filter [kh, kw] as (fv [kh], fh [kw]) with outer(fv, fh) = f, or None if f is not
    separable (rank 1 with a non-zero sum), e.g. the [1, 3, 3, 1] ⊗ [1, 3, 3, 1] blur."""
    total = f.sum()
    if f.ndim != 2 or total == 0:
        return None
    fv, fh = f.sum(dim=1), f.sum(dim=0) / total
    return (fv, fh) if torch.allclose(torch.outer(fv, fh), f, rtol=1e-6, atol=1e-7 * float(f.abs().max())) else None


def layer_epilogue(y: torch.Tensor, fir: Fir | None = None, scale: torch.Tensor | None = None,
                   bias: torch.Tensor | None = None, noise: torch.Tensor | None = None, noise_gain: float = 0.0,
                   alpha: float = 0.2, clamp: float | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """y: [N, C, H, W]; scale: [N, C] or None; bias: [C] or None; noise: broadcastable to [N, 1, Ho, Wo] or None;
    alpha: the leaky ReLU's slope below zero (1: linear); clamp: None or >= 0.
    Returns [N, C, Ho, Wo] (``fir.out_size``): ``out`` if given (contiguous, y's dtype, apart from y when
    there is a ``fir``), else without ``fir`` y itself, overwritten."""
    module = native_ops.inference_module("layer_epilogue", y)
    if fir is not None and max(fir.th.numel(), fir.tw.numel()) > MAX_TAPS:
        module = None
    if module is None:
        result = _torch_epilogue(y, fir, scale, bias, noise, noise_gain, alpha, clamp)
        return result if out is None else out.copy_(result)
    n, c, h, w = y.shape
    ho, wo = fir.out_size(h, w) if fir is not None else (h, w)
    dtype, empty = y.dtype, y.new_empty(0)
    th, tw, pad = (fir.th, fir.tw, fir.pad) if fir is not None else (y.new_ones(1), y.new_ones(1), 0)
    if out is None:
        out = y.new_empty(n, c, ho, wo) if fir is not None else y
    elif out.shape != (n, c, ho, wo) or out.dtype != dtype or not out.is_contiguous():
        raise ValueError(f"out must be contiguous {dtype} [{n}, {c}, {ho}, {wo}], got {out.dtype} {tuple(out.shape)}")
    args = (y.contiguous(), th.to(dtype).contiguous(), tw.to(dtype).contiguous(), pad,
            empty if scale is None else scale.to(dtype).reshape(n, c).contiguous(),
            empty if bias is None else bias.to(dtype).reshape(c).contiguous(),
            empty if noise is None else _noise_planes(noise.to(dtype), n, ho, wo), float(noise_gain),
            float(alpha), -1.0 if clamp is None else float(clamp), out)
    with torch.profiler.record_function("sa::layer_epilogue"):  # a pybind call: profiles see it only so
        return module.layer_epilogue(*args)


def _noise_planes(noise: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """Noise broadcastable to [N, 1, H, W] as [1 or N, H, W], contiguous."""
    if noise.numel() != h * w:
        return torch.broadcast_to(noise, (n, 1, h, w)).reshape(n, h, w).contiguous()
    return noise.reshape(1, h, w).contiguous()


def _torch_epilogue(y: torch.Tensor, fir: Fir | None, scale: torch.Tensor | None, bias: torch.Tensor | None,
                    noise: torch.Tensor | None, noise_gain: float, alpha: float, clamp: float | None) -> torch.Tensor:
    """``layer_epilogue`` with torch's ops: the FIR filter as one depthwise conv that pads by itself
    (and adds the bias when there is no scale to apply first), the rest in place."""
    n, c = y.shape[:2]
    dtype = y.dtype
    if fir is not None:
        taps = torch.outer(fir.th, fir.tw).to(dtype)
        fused_bias = bias.to(dtype) if bias is not None and scale is None else None
        # oneDNN's depthwise conv is ~4x slower on [1, N*C, H, W] than on [N, C, H, W].
        y = F.conv2d(y, taps[None, None].expand(c, 1, *taps.shape), bias=fused_bias, padding=fir.pad, groups=c)
        bias = None if fused_bias is not None else bias
    if scale is not None:
        y.mul_(scale.to(dtype).reshape(n, c, 1, 1))
    if bias is not None:
        y.add_(bias.to(dtype).reshape(1, c, 1, 1))
    if noise is not None:
        y.add_(noise.to(dtype) * noise_gain)
    if alpha != 1:
        F.leaky_relu_(y, alpha)
    if clamp is not None:
        y.clamp_(-clamp, clamp)
    return y


def layer_epilogue_ref(y: torch.Tensor, fir: Fir | None = None, scale: torch.Tensor | None = None,
                       bias: torch.Tensor | None = None, noise: torch.Tensor | None = None, noise_gain: float = 0.0,
                       alpha: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """The definition of ``layer_epilogue``, with the reference kernels (never in place)."""
    n, c = y.shape[:2]
    if fir is not None:
        f2d = torch.outer(fir.th, fir.tw).to(y.dtype)
        y = kernels.upfirdn2d_ref(y, f2d, padding=fir.pad, flip_filter=True)  # flipped convolution = correlation
    if scale is not None:
        y = y * scale.to(y.dtype).reshape(n, c, 1, 1)
    if noise is not None:
        y = y + noise.to(y.dtype) * noise_gain
    return kernels.bias_act_ref(y, bias, act="lrelu", alpha=alpha, gain=1.0, clamp=clamp)
