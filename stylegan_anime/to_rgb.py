"""The toRGB layer's arithmetic after modulation: a per-sample 1×1 convolution to a few channels,
a bias and a clamp, in one pass over the activations.

    y[n, o] = clamp(sum_c w[n, o, c] · x[n, c] + bias[o], ±clamp)

The native op (``ops/to_rgb.cpp``, CPU, float32/64) reads each activation once; MKL's batched
matmul, which torch uses for it elsewhere (CUDA, ``STYLEGAN_ANIME_OPS=ref``, a failed build,
float16, or when gradients are needed), reads them at about a third of memory speed with 3 output
rows. ``to_rgb_ref`` defines it.
"""
from __future__ import annotations

import torch

from . import native_ops


def to_rgb(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None,
           clamp: float | None = None) -> torch.Tensor:
    """x: [N, C, H, W]; w: [N, O, C] (per-sample weights); bias: [O] or None; clamp: None or >= 0
    → [N, O, H, W]."""
    module = native_ops.inference_module("to_rgb", x, w, bias)
    if module is None:
        return _torch_to_rgb(x, w, bias, clamp)
    dtype = x.dtype
    b = x.new_empty(0) if bias is None else bias.to(dtype).contiguous()
    with torch.profiler.record_function("sa::to_rgb"):  # a pybind call: profiles see it only so
        return module.to_rgb(x.contiguous(), w.to(dtype).contiguous(), b, -1.0 if clamp is None else float(clamp))


def _torch_to_rgb(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, clamp: float | None) -> torch.Tensor:
    n, c, h, w_ = x.shape
    o = w.shape[1]
    w = w.to(x.dtype)
    xs = x.reshape(n, c, h * w_)
    if bias is None:
        y = torch.bmm(w, xs)
    else:  # a 1×1 conv to 3 channels as a batched matmul: MKL's runs about twice as fast as the conv
        y = torch.baddbmm(bias.to(x.dtype).reshape(1, o, 1).expand(n, o, 1), w, xs)
    y = y.reshape(n, o, h, w_)
    return y if clamp is None else y.clamp(-clamp, clamp)


def to_rgb_ref(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None,
               clamp: float | None = None) -> torch.Tensor:
    """The definition of ``to_rgb``: a grouped 1×1 conv, one group per sample."""
    n, c, h, w_ = x.shape
    o = w.shape[1]
    y = torch.nn.functional.conv2d(x.reshape(1, n * c, h, w_), w.to(x.dtype).reshape(n * o, c, 1, 1), groups=n)
    y = y.reshape(n, o, h, w_)
    if bias is not None:
        y = y + bias.to(x.dtype).reshape(1, o, 1, 1)
    return y if clamp is None else y.clamp(-clamp, clamp)
