"""Equalised-learning-rate layers: the building blocks of mapping and discriminator.

Weights are stored with unit variance and scaled at run time (He's constant), so
that Adam sees every layer at the same learning rate; ``lr_multiplier`` slows a
layer down (the mapping network uses 0.01).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..ops import kernels
from .resample_conv import conv2d_resample


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square: x: [N, D] → [N, D]."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Dense layer: x: [N, in_features] → [N, out_features]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        # Divided in place: a temporary here leaves a hole in the heap per layer (its memory cannot take the
        # next 64-byte-aligned block of the same size), 20 MiB over a 256² generator's affine layers.
        self.weight = nn.Parameter(torch.randn([out_features, in_features]).div_(lr_multiplier))
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The weight gain rides in the matmul (alpha) rather than scaling the whole weight first.
        w = self.weight.to(x.dtype)
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t(), alpha=self.weight_gain)
        if x.ndim == 2:
            return kernels.bias_act(torch.mm(x, w.t()).mul_(self.weight_gain), b, act=self.activation)
        return kernels.bias_act(x.matmul(w.t() * self.weight_gain), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with optional FIR up/downsampling: [N, in, H, W] → [N, out, H*up/down, W*up/down]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.activation = in_channels, out_channels, activation
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        self.register_buffer("resample_filter", kernels.setup_filter(resample_filter), persistent=False)
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = kernels.activation(activation).def_gain
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        # Correlation (no flip) is faster for plain convs; transposed convs keep the stored orientation.
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding,
                            flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return kernels.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"activation={self.activation}, up={self.up}, down={self.down}")
