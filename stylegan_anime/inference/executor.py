"""A synthesis forward run from an ``InferencePlan``: the same function as ``SynthesisNetwork.forward``
(its reference layers under autograd), with each layer's algorithm and derived filters taken from the
plan instead of decided and derived per forward. The modules' ``forward`` stays the reference path."""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

from ..networks import fast_modconv, memory
from ..networks.modulated_conv import SynthesisLayer
from ..networks.synthesis import SynthesisBlock
from ..ops import winograd_op
from ..ops.layer_epilogue import Finish
from ..ops.to_rgb import ToRgb
from .plan import InferencePlan, LayerPlan


@torch.no_grad()
def run_synthesis(plan: InferencePlan, ws: torch.Tensor, noise_mode: str = "const",
                  noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
    """ws: [plan.batch_size, num_ws, w_dim] → images [batch_size, C, R, R] roughly in [-1, 1]; ``noise``:
    one tensor (or None) per noise layer, overriding ``noise_mode`` there. Raises ``StalePlanError`` if
    the weights changed since the plan was built."""
    synthesis = plan.generator.synthesis
    if ws.ndim != 3 or ws.shape[1:] != (synthesis.num_ws, synthesis.w_dim) or ws.shape[0] != plan.batch_size:
        raise ValueError(f"ws must be [{plan.batch_size}, {synthesis.num_ws}, {synthesis.w_dim}] for this plan, "
                         f"got {tuple(ws.shape)}")
    if noise is not None and len(noise) != len(plan.layers):
        raise ValueError(f"noise needs {len(plan.layers)} entries, got {len(noise)}")
    plan.check()
    if ws.device.type == "cpu":
        memory.keep_freed_memory()  # until the plan owns its buffers (issue 19, item 2)
    noise_iter = iter(noise) if noise is not None else iter(lambda: None, 0)
    layer_iter = iter(plan.layers)
    blocks = synthesis.blocks()
    x = img = None
    w_idx = 0
    for block in blocks:
        block_ws = ws[:, w_idx: w_idx + block.num_conv + block.num_torgb]
        x, img = _run_block(block, layer_iter, x, img, block_ws, noise_mode, noise_iter, block is not blocks[-1])
        w_idx += block.num_conv
    return img


def _run_block(block: SynthesisBlock, plans: Iterator[LayerPlan], x: torch.Tensor | None, img: torch.Tensor | None,
               ws: torch.Tensor, noise_mode: str, noise: Iterator[torch.Tensor | None],
               keep_x: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``SynthesisBlock.forward`` on the inference path, its layers as ``plans`` says."""
    x = block.block_input(x, ws)
    w_iter = iter(ws.unbind(dim=1))
    if img is not None:
        img = fast_modconv.upsample_image(img, block.resample_filter)
    if block.architecture == "resnet" and block.in_channels != 0:
        y = block.skip(x, gain=math.sqrt(0.5))
        x = _run_layer(next(plans), block.conv0, x, next(w_iter), noise_mode, next(noise))
        x = y + _run_layer(next(plans), block.conv1, x, next(w_iter), noise_mode, next(noise), math.sqrt(0.5))
    else:
        if block.in_channels != 0:
            x = _run_layer(next(plans), block.conv0, x, next(w_iter), noise_mode, next(noise))
        if block.num_torgb:  # toRGB may run inside conv1's convolution
            w1, w_rgb = next(w_iter), next(w_iter)
            rgb = block.torgb.prepared(w_rgb, x.dtype, img, keep_x)
            return _run_layer_rgb(next(plans), block.conv1, x, w1, rgb, noise_mode, next(noise))
        x = _run_layer(next(plans), block.conv1, x, next(w_iter), noise_mode, next(noise))
    if block.num_torgb:
        y = block.torgb(x, next(w_iter)).to(torch.float32)
        img = img + y if img is not None else y
    return x, img


def _run_layer(lp: LayerPlan, layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor, noise_mode: str,
               noise: torch.Tensor | None, gain: float = 1.0) -> torch.Tensor:
    """``layer(x, w, noise_mode, noise, gain=gain)`` by the plan's algorithm: [N, in, H, W] → [N, out, H*up, W*up]."""
    styles = layer.affine(w)
    finish = _finish(lp, layer, x, styles, noise_mode, noise, gain)
    return fast_modconv.run_layer(lp.algorithm, x, layer.weight, styles, finish, layer.padding, lp.prepared,
                                  layer.up, layer.resample_filter, lp.fir)


def _run_layer_rgb(lp: LayerPlan, layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor, rgb: ToRgb,
                   noise_mode: str, noise: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(y, rgb(y)) for y = ``layer(x, w, ...)``; computed in one pass when the plan fused toRGB into the conv
    (then y is None unless ``rgb.keep_input``)."""
    if not lp.to_rgb_fused:
        y = _run_layer(lp, layer, x, w, noise_mode, noise)
        return y, rgb(y)
    styles = layer.affine(w)
    finish = _finish(lp, layer, x, styles, noise_mode, noise, 1.0)
    return winograd_op.conv3x3_fused_rgb(x, lp.prepared, styles, finish, rgb)


def _finish(lp: LayerPlan, layer: SynthesisLayer, x: torch.Tensor, styles: torch.Tensor, noise_mode: str,
            noise: torch.Tensor | None, gain: float) -> Finish:
    """What follows the layer's conv (``fast_modconv.make_finish``), from the plan's squared tap sums."""
    clamp = layer.conv_clamp * gain if layer.conv_clamp is not None else None
    return fast_modconv.make_finish(x, layer.weight, styles, layer.bias, layer._noise(x, noise_mode, noise),
                                    layer.noise_strength, layer.act_gain * gain, clamp, lp.square_sums)
