"""The toRGB layer's arithmetic after modulation: a per-sample 1×1 convolution to a few channels,
a bias and a clamp, in one pass over the activations.

    y[n, o] = clamp(sum_c w[n, o, c] · x[n, c] + bias[o], ±clamp)

The native op (``ops/to_rgb.cpp``, CPU, float32/64) reads each activation once; MKL's batched
matmul, which torch uses for it elsewhere (CUDA, ``STYLEGAN_ANIME_OPS=ref``, a failed build,
float16, or when gradients are needed), reads them at about a third of memory speed with 3 output
rows. ``to_rgb_ref`` defines it.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class ToRgb:
    """A toRGB layer waiting for its input y: [N, C, H, W] (a synthesis layer's output):
    ``to_rgb(y, weight, bias, clamp)`` in float32, plus ``skip`` (the image so far, upsampled) if given.

    weight: [N, O, C] (per sample: modulated, no demodulation); bias: [O] or None; clamp: None or
    >= 0; skip: [N, O, H, W] float32 or None; keep_input: whether y is wanted afterwards (if not, a
    conv that computes the two together need not store y).
    """
    weight: torch.Tensor
    bias: torch.Tensor | None = None
    clamp: float | None = None
    skip: torch.Tensor | None = None
    keep_input: bool = True

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        rgb = to_rgb(y, self.weight, self.bias, self.clamp).to(torch.float32)
        return rgb if self.skip is None else self.skip + rgb

    def native_args(self) -> tuple:
        """(weight, bias, skip (float32, contiguous, or None), clamp (-1: none), keep_input), as the
        native fused conv takes them."""
        f32 = torch.float32
        return (self.weight.to(f32).contiguous(), None if self.bias is None else self.bias.to(f32).contiguous(),
                None if self.skip is None else self.skip.to(f32).contiguous(),
                -1.0 if self.clamp is None else float(self.clamp), self.keep_input)
