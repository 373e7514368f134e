"""Modulated convolution with weight demodulation, and the two layers built on it.

Each sample's style scales the conv weight's input channels; demodulation then
rescales each output channel to unit expected variance, which replaces AdaIN's
instance normalisation without its droplet artefacts.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..ops import kernels, native_ops
from ..ops.to_rgb import ToRgb
from . import fast_modconv
from .layers import FullyConnectedLayer
from .resample_conv import conv2d_resample

NOISE_MODES = ("const", "random", "none")


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     flip_weight: bool = True, grouped: bool = False) -> torch.Tensor:
    """x: [N, in, H, W], weight: [out, in, k, k], styles: [N, in] → [N, out, H*up, W*up].

    ``grouped=False`` scales activations instead of weights, so that the whole batch
    shares one convolution (faster on the CPU, and each sample's result does not
    depend on the rest of the batch); ``grouped=True`` builds per-sample weights and
    runs a grouped convolution. Both compute the same function.
    """
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    dcoefs = fast_modconv.demod_coefficients(weight, styles) if demodulate else None  # [N, out]
    if not grouped:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_c, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=n, flip_weight=flip_weight)
    return x.reshape(n, -1, *x.shape[2:])


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv + noise + bias + lrelu: [N, in, H, W], w: [N, w_dim] → [N, out, H*up, W*up]."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", kernels.setup_filter(resample_filter), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.act_gain = kernels.activation("lrelu").def_gain

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                noise: torch.Tensor | None = None, grouped: bool = False, gain: float = 1.0) -> torch.Tensor:
        """``noise``: explicit [N or 1, 1, res, res] noise, overriding ``noise_mode``.

        Without gradients and with ``grouped=False`` this runs ``fast_modconv``'s inference path.
        """
        styles = self.affine(w)
        noise = self._noise(x, noise_mode, noise)
        if not grouped and not native_ops.needs_graph(x, styles, self.weight, self.bias, self.noise_strength):
            clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
            return fast_modconv.synthesis_layer_forward(x, self.weight, styles, self.bias, noise, self.noise_strength,
                                                        self.up, self.padding, self.resample_filter,
                                                        self.act_gain * gain, clamp)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1), grouped=grouped)
        if noise is not None:
            x = x + noise.to(x.dtype) * self.noise_strength.to(x.dtype)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return kernels.bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=self.act_gain * gain, clamp=clamp)


    def _noise(self, x: torch.Tensor, noise_mode: str, noise: torch.Tensor | None) -> torch.Tensor | None:
        """The noise to add: ``noise`` if given, else what ``noise_mode`` says."""
        if noise is not None:
            return noise
        if noise_mode == "random":
            return torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
        if noise_mode == "const":
            return self.noise_const
        if noise_mode != "none":
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return None


class ToRGBLayer(nn.Module):
    """Modulated 1×1 conv without demodulation: [N, in, H, W] → [N, img_channels, H, W]."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, grouped: bool = False) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if not grouped and not native_ops.needs_graph(x, styles, self.weight, self.bias):
            return fast_modconv.torgb_forward(x, self.weight, styles, self.bias, self.conv_clamp)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, grouped=grouped)
        return kernels.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

    def prepared(self, w: torch.Tensor, dtype: torch.dtype, skip: torch.Tensor | None = None,
                 keep_input: bool = True) -> ToRgb:
        """This layer for w: [N, w_dim] as a ``ToRgb`` on inputs of dtype (inference path, no gradients):
        ``forward(x, w)`` in float32, plus skip: [N, img_channels, H, W] if given."""
        styles = self.affine(w) * self.weight_gain
        return ToRgb(fast_modconv.torgb_weights(self.weight, styles, dtype), self.bias, self.conv_clamp, skip,
                     keep_input)
