"""Synthesis network: ws → image, one block per resolution from 4×4 up."""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import nn

from ..ops import kernels, native_ops
from .config import GeneratorConfig
from . import fast_modconv
from .layers import Conv2dLayer
from .modulated_conv import SynthesisLayer, ToRGBLayer


class SynthesisBlock(nn.Module):
    """One resolution: (x, img) at res/2 → (x, img) at res.

    The 4×4 block starts from a learned constant. ``skip`` sums upsampled RGB
    outputs of every block; ``resnet`` adds a 1×1 shortcut around the two convs
    and converts to RGB in the last block only.
    """

    def __init__(self, cfg: GeneratorConfig, in_channels: int, out_channels: int, resolution: int, is_last: bool):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, cfg.architecture
        self.use_fp16 = resolution >= 2 ** (int(math.log2(cfg.img_resolution)) + 1 - cfg.num_fp16_res) \
            if cfg.num_fp16_res > 0 else False
        clamp, filt = cfg.conv_clamp, cfg.resample_filter
        self.register_buffer("resample_filter", kernels.setup_filter(filt), persistent=False)
        self.num_conv = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, cfg.w_dim, resolution, up=2,
                                        resample_filter=filt, conv_clamp=clamp)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, cfg.w_dim, resolution, conv_clamp=clamp)
        self.num_conv += 1
        self.num_torgb = 0
        if is_last or cfg.architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, cfg.img_channels, cfg.w_dim, conv_clamp=clamp)
            self.num_torgb = 1
        if in_channels != 0 and cfg.architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=filt)

    def layers(self) -> list[SynthesisLayer]:
        return [m for m in (getattr(self, "conv0", None), self.conv1) if m is not None]

    def block_input(self, x: torch.Tensor | None, ws: torch.Tensor) -> torch.Tensor:
        """What the first layer reads: the learnt constant for each of the N samples of ws (first
        block), else x; in float16 for fp16 blocks on CUDA, else float32."""
        dtype = torch.float16 if self.use_fp16 and ws.device.type == "cuda" else torch.float32
        if self.in_channels == 0:
            return self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        return x.to(dtype)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                noise: Iterator[torch.Tensor | None], grouped: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ws: [N, num_conv + num_torgb, w_dim]; ``noise`` yields one override (or None) per conv."""
        x = self.block_input(x, ws)
        w_iter = iter(ws.unbind(dim=1))
        if img is not None:
            if native_ops.needs_graph(img):
                img = kernels.upsample2d(img, self.resample_filter)
            else:
                img = fast_modconv.upsample_image(img, self.resample_filter)
        if self.architecture == "resnet" and self.in_channels != 0:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode, next(noise), grouped)
            x = self.conv1(x, next(w_iter), noise_mode, next(noise), grouped, gain=math.sqrt(0.5))
            x = y + x
        else:
            if self.in_channels != 0:
                x = self.conv0(x, next(w_iter), noise_mode, next(noise), grouped)
            x = self.conv1(x, next(w_iter), noise_mode, next(noise), grouped)
        if self.num_torgb:
            y = self.torgb(x, next(w_iter), grouped).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws: [N, num_ws, w_dim] → img: [N, img_channels, R, R], roughly in [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.img_resolution, self.img_channels, self.w_dim = cfg.img_resolution, cfg.img_channels, cfg.w_dim
        self.block_resolutions = [2 ** i for i in range(2, int(math.log2(cfg.img_resolution)) + 1)]
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = cfg.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(cfg, in_ch, cfg.channels(res), res, is_last=(res == cfg.img_resolution))
            self.num_ws += block.num_conv
            if res == cfg.img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def noise_layers(self) -> list[SynthesisLayer]:
        """Every layer that takes a noise input, in network order (4×4 first)."""
        return [layer for block in self.blocks() for layer in block.layers()]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const",
                noise: Sequence[torch.Tensor | None] | None = None, grouped: bool = False) -> torch.Tensor:
        """``noise``: one tensor (or None) per ``noise_layers()`` entry, overriding ``noise_mode`` there."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise is not None and len(noise) != len(self.noise_layers()):
            raise ValueError(f"noise needs {len(self.noise_layers())} entries, got {len(noise)}")
        noise_iter = iter(noise) if noise is not None else iter(lambda: None, 0)
        x = img = None
        w_idx = 0
        blocks = self.blocks()
        for block in blocks:
            block_ws = ws[:, w_idx: w_idx + block.num_conv + block.num_torgb]
            x, img = block(x, img, block_ws, noise_mode, noise_iter, grouped)
            w_idx += block.num_conv
        return img
