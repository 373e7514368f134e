"""Discriminator: resnet blocks from the image resolution down to 4×4, minibatch
standard deviation, and projection conditioning on labels."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..ops import kernels
from .config import DiscriminatorConfig
from .layers import Conv2dLayer, FullyConnectedLayer
from .mapping import MappingNetwork


class DiscriminatorBlock(nn.Module):
    """(x, img) at res → (x, img) at res/2; the first block reads RGB through ``fromrgb``."""

    def __init__(self, cfg: DiscriminatorConfig, in_channels: int, tmp_channels: int, out_channels: int,
                 resolution: int):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, cfg.architecture
        # The highest num_fp16_res resolutions run in float16 on CUDA (float32 on the CPU).
        self.use_fp16 = cfg.num_fp16_res > 0 and \
            resolution >= 2 ** (int(math.log2(cfg.img_resolution)) + 1 - cfg.num_fp16_res)
        clamp, filt = cfg.conv_clamp, cfg.resample_filter
        self.register_buffer("resample_filter", kernels.setup_filter(filt), persistent=False)
        if in_channels == 0 or cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, tmp_channels, kernel_size=1, activation="lrelu",
                                       conv_clamp=clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation="lrelu", conv_clamp=clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation="lrelu", down=2,
                                 resample_filter=filt, conv_clamp=clamp)
        if cfg.architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=filt)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None):
        device = (x if x is not None else img).device
        dtype = torch.float16 if self.use_fp16 and device.type == "cuda" else torch.float32
        x = x.to(dtype) if x is not None else None
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = kernels.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            return y + x, img
        return self.conv1(self.conv0(x)), img


def minibatch_std(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """Append the within-group feature standard deviation as extra channels.

    x: [N, C, H, W] → [N, C + num_channels, H, W]. Sample i is in group i mod (N / G),
    the layout of the published networks, so converted weights see the same statistics.
    """
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size else n
    if n % g:
        raise ValueError(f"batch size {n} must be a multiple of the minibatch-std group size {g}")
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [N/G, F]
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 features → one logit per image (projected onto the label embedding when conditional)."""

    def __init__(self, cfg: DiscriminatorConfig, in_channels: int, cmap_dim: int, resolution: int = 4):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.cmap_scale = 1 / math.sqrt(cmap_dim) if cfg.label_mode == "project" and cmap_dim else 1.0
        self.mbstd_group_size, self.mbstd_num_channels = cfg.mbstd_group_size, cfg.mbstd_num_channels
        # At 4×4 there are no blocks before the epilogue, so it reads the image itself.
        if cfg.architecture == "skip" or cfg.img_resolution == resolution:
            self.fromrgb = Conv2dLayer(cfg.img_channels, in_channels, kernel_size=1, activation="lrelu")
        self.conv = Conv2dLayer(in_channels + cfg.mbstd_num_channels, in_channels, kernel_size=3,
                                activation="lrelu", conv_clamp=cfg.conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(torch.float32) if x is not None else None
        if hasattr(self, "fromrgb"):
            y = self.fromrgb(img.to(torch.float32))
            x = x + y if x is not None else y
        if self.mbstd_num_channels > 0:
            x = minibatch_std(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.fc(self.conv(x).flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * self.cmap_scale
        return x


class Discriminator(nn.Module):
    """img: [N, img_channels, R, R] in [-1, 1] (and c: [N, c_dim]) → logits [N, 1]."""

    def __init__(self, cfg: DiscriminatorConfig | None = None, **kwargs):
        super().__init__()
        cfg = cfg if cfg is not None else DiscriminatorConfig(**kwargs)
        self.cfg = cfg
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = [2 ** i for i in range(int(math.log2(cfg.img_resolution)), 2, -1)]
        for res in self.block_resolutions:
            in_ch = cfg.channels(res) if res < cfg.img_resolution else 0
            setattr(self, f"b{res}", DiscriminatorBlock(cfg, in_ch, cfg.channels(res), cfg.channels(res // 2), res))
        cmap_dim = 0
        if cfg.c_dim > 0 and cfg.label_mode == "output":
            cmap_dim = cfg.c_dim
        elif cfg.c_dim > 0:
            cmap_dim = cfg.cmap_dim if cfg.cmap_dim is not None else cfg.channels(4)
            self.mapping = MappingNetwork(0, cfg.c_dim, cmap_dim, num_ws=None, num_layers=cfg.mapping_layers,
                                          lr_multiplier=cfg.mapping_lr_multiplier, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(cfg, cfg.channels(4), cmap_dim)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = None
        if self.c_dim > 0:
            cmap = c.to(torch.float32) if self.cfg.label_mode == "output" else self.mapping(None, c)
        return self.b4(x, img, cmap)
