"""A synthesis forward run from an ``InferencePlan``: the same function as ``SynthesisNetwork.forward``
(its reference layers under autograd), with each layer's algorithm and derived filters taken from the
plan instead of decided and derived per forward. The modules' ``forward`` stays the reference path.

The plan's stages run depth first: a pass of a stage takes ``stage.samples`` samples of its parent's
pass through the stage's blocks, then hands them to the next stage, pass by pass, before its own next
pass; the last stage writes its images into the returned tensor. Layer outputs go to the plan's buffer
slots, so no large tensor is allocated after the first forward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..networks import fast_modconv
from ..networks.modulated_conv import SynthesisLayer
from ..networks.synthesis import SynthesisBlock
from ..ops import winograd_op
from ..ops.layer_epilogue import Finish
from ..ops.to_rgb import ToRgb
from .buffers import LayerScratch
from .plan import InferencePlan, LayerPlan


@dataclass
class _Pass:
    """One pass's inputs: ws [n, num_ws, w_dim] and the noise overrides, sliced to its samples."""
    ws: torch.Tensor
    noise: list[torch.Tensor | None]
    noise_mode: str

    def slice(self, rows: slice, batch: int) -> _Pass:
        return _Pass(self.ws[rows], [_rows(t, rows, batch) for t in self.noise], self.noise_mode)


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
    res, channels = synthesis.img_resolution, synthesis.img_channels
    images = torch.empty(plan.batch_size, channels, res, res, device=ws.device)
    inputs = _Pass(ws, list(noise) if noise is not None else [None] * len(plan.layers), noise_mode)
    with plan.buffers.lock:
        plan.buffers.reserve(plan.buffer_bytes)
        _run_stage(plan, 0, inputs, None, None, images)
    return images


def _run_stage(plan: InferencePlan, k: int, inputs: _Pass, x: torch.Tensor | None, img: torch.Tensor | None,
               images: torch.Tensor) -> None:
    """Stage k over the samples of ``inputs`` (x, img: their activations from stage k - 1, or None),
    ``stage.samples`` at a time, each pass going on through the later stages; ``images``: where the
    last stage writes these samples' images."""
    stage, blocks, batch = plan.stages[k], plan.generator.synthesis.blocks(), inputs.ws.shape[0]
    first_layer = sum(len(b.layers()) for b in blocks[:stage.first])
    first_w = sum(b.num_conv for b in blocks[:stage.first])  # each block before takes one w per conv
    last = k == len(plan.stages) - 1
    for start in range(0, batch, stage.samples):
        rows = slice(start, min(start + stage.samples, batch))
        part = inputs.slice(rows, batch) if stage.samples < batch else inputs
        xs, imgs = (x[rows] if x is not None else None), (img[rows] if img is not None else None)
        layer_iter, w_idx = iter(plan.layers[first_layer:]), first_w
        for block in blocks[stage.first: stage.end]:
            xs, imgs = _run_block(plan, block, layer_iter, xs, imgs, part, w_idx, block is not blocks[-1])
            w_idx += block.num_conv
        if last:
            images[rows] = imgs
        else:
            _run_stage(plan, k + 1, part, xs, imgs, images[rows])


def _run_block(plan: InferencePlan, block: SynthesisBlock, plans: Iterator[LayerPlan], x: torch.Tensor | None,
               img: torch.Tensor | None, inputs: _Pass, w_idx: int,
               keep_x: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``SynthesisBlock.forward`` on the inference path, its layers as ``plans`` says; its ws start at
    ``w_idx`` of the pass's."""
    ws = inputs.ws[:, w_idx: w_idx + block.num_conv + block.num_torgb]
    x = block.block_input(x, ws)
    w_iter = iter(ws.unbind(dim=1))
    if img is not None:
        img = fast_modconv.upsample_image(img, block.resample_filter)

    def layer(lp: LayerPlan, module: SynthesisLayer, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        return _run_layer(plan, lp, module, x, next(w_iter), inputs, gain)

    if block.architecture == "resnet" and block.in_channels != 0:
        y = block.skip(x, gain=math.sqrt(0.5))
        x = layer(next(plans), block.conv0, x)
        x = y + layer(next(plans), block.conv1, x, math.sqrt(0.5))
    else:
        if block.in_channels != 0:
            x = layer(next(plans), block.conv0, x)
        if block.num_torgb:  # toRGB may run inside conv1's convolution
            lp, w1, w_rgb = next(plans), next(w_iter), next(w_iter)
            rgb = block.torgb.prepared(w_rgb, x.dtype, img, keep_x)
            return _run_layer_rgb(plan, lp, block.conv1, x, w1, rgb, inputs)
        x = layer(next(plans), block.conv1, x)
    if block.num_torgb:
        y = block.torgb(x, next(w_iter)).to(torch.float32)
        img = img + y if img is not None else y
    return x, img


def _run_layer(plan: InferencePlan, lp: LayerPlan, layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor,
               inputs: _Pass, gain: float = 1.0) -> torch.Tensor:
    """``layer(x, w, noise_mode, noise, gain=gain)`` by the plan's algorithm: [N, in, H, W] → [N, out, H*up, W*up],
    into the layer's buffer slot."""
    styles = layer.affine(w)
    finish = _finish(lp, layer, x, styles, inputs, gain)
    out = _slot(plan, lp, lp.out_slot, x.shape[0], lp.resolution, x.dtype)
    scratch = LayerScratch(plan.buffers, lp.scratch_shared)  # the call's raw output, tiles, band buffers
    prepared = lp.prepared
    if lp.algorithm == "up_winograd_unkept":  # its planes first, as the plan sized the arena for them
        prepared = winograd_op.up_filters_into(prepared, scratch)
    if lp.up == 1:
        raw = out  # the epilogue runs in place
    elif lp.raw_slot is None:
        raw = None  # the conv allocates its own
    else:
        raw = scratch(lp.raw_slot, (x.shape[0], lp.out_channels, lp.raw_side, lp.raw_side), x.dtype)
    return fast_modconv.run_layer(lp.algorithm, x, layer.weight, styles, finish, layer.padding, prepared,
                                  layer.up, layer.resample_filter, lp.fir, out=out, raw=raw, scratch=scratch)


def _run_layer_rgb(plan: InferencePlan, lp: LayerPlan, layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor,
                   rgb: ToRgb, inputs: _Pass) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(y, rgb(y)) for y = ``layer(x, w, ...)``; computed in one pass when the plan fused toRGB into the conv
    (then y is None unless ``rgb.keep_input``; rgb(y) is written over the upsampled image it adds to)."""
    if not lp.to_rgb_fused:
        y = _run_layer(plan, lp, layer, x, w, inputs)
        return y, rgb(y)
    styles = layer.affine(w)
    finish = _finish(lp, layer, x, styles, inputs, 1.0)
    out = _slot(plan, lp, lp.out_slot, x.shape[0], lp.resolution, x.dtype) if rgb.keep_input else None
    return winograd_op.conv3x3_fused_rgb(x, lp.prepared, styles, finish, rgb, out=out, rgb_out=rgb.skip,
                                         scratch=LayerScratch(plan.buffers))


def _slot(plan: InferencePlan, lp: LayerPlan, role: str | None, n: int, side: int,
          dtype: torch.dtype) -> torch.Tensor | None:
    """The layer's [n, out_channels, side, side] view of its stage's buffer slot ``role`` (None: no slot)."""
    if role is None:
        return None
    return plan.buffers.view((lp.stage, role), (n, lp.out_channels, side, side), dtype, lp.out_at)


def _finish(lp: LayerPlan, layer: SynthesisLayer, x: torch.Tensor, styles: torch.Tensor, inputs: _Pass,
            gain: float) -> Finish:
    """What follows the layer's conv (``fast_modconv.make_finish``), from the plan's squared tap sums."""
    clamp = layer.conv_clamp * gain if layer.conv_clamp is not None else None
    noise = layer._noise(x, inputs.noise_mode, inputs.noise[lp.index])
    return fast_modconv.make_finish(x, layer.weight, styles, layer.bias, noise, layer.noise_strength,
                                    layer.act_gain * gain, clamp, lp.square_sums)


def _rows(t: torch.Tensor | None, rows: slice, batch: int) -> torch.Tensor | None:
    """A noise override's rows for a pass: its batch axis sliced if it has one of ``batch`` samples."""
    if t is None or t.ndim < 4 or t.shape[0] != batch or batch == 1:
        return t
    return t[rows]
