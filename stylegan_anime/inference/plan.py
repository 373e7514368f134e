"""The inference plan: a generator's synthesis layers walked once for a device and batch size.

For each layer the plan holds its conv algorithm and why (``policy.py``), where its epilogue
(demodulation, noise, bias, lrelu, clamp) runs, whether its block's toRGB runs inside its conv, and
the tensors derived from its weights alone (squared tap sums, Winograd filter transforms, the
transposed conv's layout, the split FIR taps). ``executor.py`` runs forwards from it.

A plan knows the weights it was built from: the version counter, storage, dtype and shape of every
parameter and buffer of the synthesis network. In-place updates (optimiser steps,
``load_state_dict``, EMA) bump the version; assigning ``.data`` changes the storage. Either makes
the plan stale, and running a stale plan raises ``StalePlanError`` (``refreshed()`` builds a new
one). Edits made *through* ``.data`` in place bypass both: rebuild the plan after them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from ..networks import fast_modconv
from ..ops.layer_epilogue import Fir
from . import policy

if TYPE_CHECKING:
    from ..networks import Generator
    from ..networks.modulated_conv import SynthesisLayer

# A tensor's version as the plan saw it: (name, version counter, data pointer, dtype, device, shape).
Stamp = tuple[str, int, int, torch.dtype, torch.device, tuple[int, ...]]


class StalePlanError(RuntimeError):
    """The generator's weights changed after the plan was built."""


@dataclass
class LayerPlan:
    """One synthesis layer: input [batch, in_channels, res/up, res/up] → [batch, out_channels, res, res]."""
    name: str  # e.g. "b64.conv0"
    resolution: int  # of the output
    in_channels: int
    out_channels: int
    up: int
    dtype: torch.dtype
    algorithm: str  # one of fast_modconv.SAME_ALGORITHMS / UP_ALGORITHMS
    why: str
    to_rgb_fused: bool  # the block's toRGB runs inside this layer's conv
    square_sums: torch.Tensor = field(repr=False)  # [out, in]
    # Winograd filters ([36, out, in] or the stride-2 ones), or the transposed layout [in, out, k, k]
    prepared: torch.Tensor | None = field(repr=False)
    fir: Fir | None = field(default=None, repr=False)  # the upsampling FIR's split taps (None: reference resampling)

    @property
    def epilogue(self) -> str:
        """Where demodulation, noise, bias, lrelu and clamp run."""
        return "in the conv" if self.algorithm == "fused" else "one pass after"


@dataclass
class InferencePlan:
    """``generator``'s synthesis for ``batch_size`` images on ``device``; layers in network order."""
    generator: Generator = field(repr=False)
    device: torch.device
    batch_size: int
    layers: list[LayerPlan]
    stamp: list[Stamp] = field(repr=False)
    # Derived tensors by (layer name, kind), shared with plans for other batch sizes of the same weights.
    store: dict[tuple[str, str], object] = field(default_factory=dict, repr=False)

    def stale_reason(self) -> str | None:
        """None while the weights are those the plan was built from, else the first changed tensor."""
        now = weights_stamp(self.generator)
        if len(now) != len(self.stamp):
            return "the network's tensors changed"
        for before, after in zip(self.stamp, now):
            if before != after:
                return f"{after[0]} changed after the plan was built"
        return None

    def check(self) -> None:
        """Raise ``StalePlanError`` if the weights changed since the plan was built."""
        reason = self.stale_reason()
        if reason is not None:
            raise StalePlanError(f"stale inference plan: {reason}; build a new one (plan.refreshed())")

    def refreshed(self) -> InferencePlan:
        """This plan if its weights are unchanged, else a new one built from the current weights."""
        return self if self.stale_reason() is None else build_plan(self.generator, self.device, self.batch_size)

    def for_batch(self, batch_size: int) -> InferencePlan:
        """The plan for another batch size, sharing this one's prepared tensors (checked fresh)."""
        if batch_size == self.batch_size:
            return self
        self.check()
        return build_plan(self.generator, self.device, batch_size, self.store)

    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const",
                   noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """ws: [batch_size, num_ws, w_dim] → images [batch_size, C, R, R], as ``G.synthesis(ws, ...)``."""
        from .executor import run_synthesis  # the executor imports this module's dataclasses
        return run_synthesis(self, ws, noise_mode, noise)

    def generate(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                 noise_mode: str = "const", noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """z: [batch_size, z_dim] → images, as ``G(z, c, psi=psi, cutoff=cutoff, noise_mode=..., noise=...)``."""
        with torch.no_grad():
            ws = self.generator.mapping(z, c, psi=psi, cutoff=cutoff)
        return self.synthesize(ws, noise_mode, noise)

    def table(self) -> str:
        """The plan as a text table: layer, resolution, channels, algorithm, epilogue, toRGB, why."""
        head = f"{'layer':<10} {'res':>5} {'channels':>9}  {'algorithm':<11} {'epilogue':<14} {'toRGB':<6} why"
        rows = [f"{lp.name:<10} {lp.resolution:>5} {f'{lp.in_channels}>{lp.out_channels}':>9}  {lp.algorithm:<11} "
                f"{lp.epilogue:<14} {'fused' if lp.to_rgb_fused else '-':<6} {lp.why}" for lp in self.layers]
        return "\n".join([f"inference plan: batch {self.batch_size} on {self.device}", head, *rows])


def weights_stamp(G: Generator) -> list[Stamp]:
    """The version of every parameter and buffer of G's synthesis network, in a fixed order."""
    tensors = list(G.synthesis.named_parameters()) + list(G.synthesis.named_buffers())
    return [(name, t._version, t.data_ptr(), t.dtype, t.device, tuple(t.shape)) for name, t in tensors]


def build_plan(G: Generator, device: torch.device | str | None = None, batch_size: int = 1,
               store: dict | None = None) -> InferencePlan:
    """Walk G's synthesis layers once for ``batch_size`` images on ``device`` (G's own; G must already
    be there). ``store``: prepared tensors of another plan of the same weights, reused."""
    device = G.device if device is None else torch.device(device)
    if device.type != G.device.type or (device.index is not None and device != G.device):
        raise ValueError(f"the generator is on {G.device}, not {device}: move it first (G.to(device))")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    store = {} if store is None else store
    layers = []
    with torch.no_grad():
        for block in G.synthesis.blocks():
            dtype = torch.float16 if block.use_fp16 and device.type == "cuda" else torch.float32
            fuse_rgb = block.num_torgb and block.architecture != "resnet"
            for layer in block.layers():
                rgb = bool(fuse_rgb) and layer is block.conv1
                layers.append(_plan_layer(f"b{block.resolution}.{_short(block, layer)}", layer, batch_size,
                                          dtype, device, rgb, store))
    return InferencePlan(G, device, batch_size, layers, weights_stamp(G), store)


def _short(block, layer) -> str:
    return "conv1" if layer is block.conv1 else "conv0"


def _plan_layer(name: str, layer: SynthesisLayer, n: int, dtype: torch.dtype, device: torch.device,
                block_rgb: bool, store: dict) -> LayerPlan:
    """Decide one layer's algorithm and prepare what it reads of its weights."""
    w = layer.weight
    out_c, in_c, k = w.shape[0], w.shape[1], w.shape[2]
    res, fir = layer.resolution, None

    def kept(kind: str, make):
        key = (name, kind)
        if key not in store:
            store[key] = make()
        return store[key]

    square_sums = kept("square_sums", lambda: fast_modconv.weight_square_sums(w))
    if layer.up == 1:
        choice = policy.choose_same(n, in_c, out_c, res, k, layer.padding, dtype, device)
        prepared = kept(f"f43_{dtype}", lambda: fast_modconv.prepare_f43(w, dtype)) \
            if choice.algorithm in ("fused", "f43") else None
    else:
        if k == w.shape[3]:
            fir = kept("fir", lambda: fast_modconv.upsample_fir(layer.resample_filter, layer.up, layer.padding, k))
        choice = policy.choose_up(n, in_c, out_c, res // layer.up, k, layer.up, fir is not None, dtype, device)
        winograd_up = choice.algorithm in ("up_fused", "up_winograd")
        prepared = kept(f"up_{dtype}" if winograd_up else "transposed",
                        lambda: fast_modconv.prepare_up(choice.algorithm, w, dtype))
    return LayerPlan(name, res, in_c, out_c, layer.up, dtype, choice.algorithm, choice.why,
                     block_rgb and choice.algorithm == "fused", square_sums, prepared, fir)


def total_prepared_bytes(plan: InferencePlan) -> int:
    """Bytes of the tensors the plan keeps (its store)."""
    return sum(t.numel() * t.element_size() for t in plan.store.values() if isinstance(t, torch.Tensor))
