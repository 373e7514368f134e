"""The inference plan: a generator's synthesis layers walked once for a device and batch size.

For each layer the plan holds its conv algorithm and why (``policy.py``), where its epilogue
(demodulation, noise, bias, lrelu, clamp) runs, whether its block's toRGB runs inside its conv, and
the tensors derived from its weights alone (squared tap sums, Winograd filter transforms, the
transposed conv's layout, for oneDNN in its own format, the split FIR taps). ``executor.py`` runs
forwards from it.

The plan also owns the forward's memory: the blocks form stages by how many samples a pass takes
(``policy.samples_per_pass``: the high-resolution blocks run a few samples at a time, each pass going
on through the later stages before the next starts), and every large layer output goes to a buffer
slot the plan assigned (``buffers.py``), allocated once and reused.

A plan knows the weights it was built from: the version counter, storage, dtype and shape of every
parameter and buffer of the synthesis network. In-place updates (optimiser steps,
``load_state_dict``, EMA) bump the version; assigning ``.data`` changes the storage. Either makes
the plan stale, and running a stale plan raises ``StalePlanError`` (``refreshed()`` builds a new
one). Edits made *through* ``.data`` in place bypass both: rebuild the plan after them.

``G.plan`` keeps the plan on the generator (``kept_plan``) and returns it again while the weights are
unchanged, so the generation API's calls after the first pay no filter transforms and reuse warm buffers.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import torch

from ..networks import fast_modconv, winograd
from ..ops import winograd_op
from ..ops.native_build import OPS_MODE
from ..ops.layer_epilogue import Fir
from . import policy
from .buffers import TILES_OVER_RAW, TRANSIENT_ARENA, ActivationBuffers, Slot, arena_bytes, output_at

if TYPE_CHECKING:
    from ..networks import Generator
    from ..networks.modulated_conv import SynthesisLayer

# A tensor's version as the plan saw it: (name, version counter, data pointer, dtype, device, shape).
Stamp = tuple[str, int, int, torch.dtype, torch.device, tuple[int, ...]]


# The upsampling convs whose output before the epilogue pass (2H + 1 wide, before the FIR filter) goes to
# the plan's "raw" slot; a stride-1 conv writes into its layer's own output slot (the epilogue runs in
# place), and the other upsampling convs allocate theirs.
RAW_SLOT_ALGORITHMS = ("up_fused", "up_winograd", "up_winograd_unkept")

# Whether a plan makes a stride-2 Winograd layer's filter planes per call in its arena, where they fit beside
# the call's own tensors without growing it, instead of keeping them (``_filters_in_arena``).
FILTERS_IN_ARENA = True


def raw_side(resolution: int, up: int) -> int:
    """Side of a layer's conv output before its epilogue: an upsampling conv's (2H + 1) is one more than the
    layer's output."""
    return resolution + (1 if up > 1 else 0)


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
    # Winograd filters ([36, out, in] or the stride-2 ones; "up_winograd_unkept": those without their planes), or the
    # transposed layout [in, out, k, k] (as a onednn_deconv.PackedDeconv where oneDNN's transposed conv reads it)
    prepared: torch.Tensor | None = field(repr=False)
    fir: Fir | None = field(default=None, repr=False)  # the upsampling FIR's split taps (None: reference resampling)
    index: int = 0  # in InferencePlan.layers (and in a forward's noise overrides)
    stage: int = 0  # index into InferencePlan.stages
    out_slot: str | None = None  # the buffer slot of its output (None: allocated per forward, or not stored)
    out_at: int = 0  # where in that slot its output starts (bytes; ``buffers.output_at``)
    raw_slot: str | None = None  # ... of its conv's output before the epilogue pass
    tiles_over_raw: bool = False  # its conv's input tiles may lie where its raw output will (one call)

    @property
    def raw_side(self) -> int:
        return raw_side(self.resolution, self.up)

    @property
    def scratch_shared(self) -> dict[str, str] | None:
        """Which of its call's transient roles may share bytes (``buffers.LayerScratch``)."""
        return TILES_OVER_RAW if self.tiles_over_raw else None

    @property
    def epilogue(self) -> str:
        """Where demodulation, noise, bias, lrelu and clamp run."""
        return "in the conv" if self.algorithm == "fused" else "one pass after"


@dataclass(frozen=True)
class Stage:
    """Blocks ``first`` .. ``end - 1`` (of ``synthesis.blocks()``), run ``samples`` samples a pass."""
    first: int
    end: int
    samples: int


@dataclass
class InferencePlan:
    """``generator``'s synthesis for ``batch_size`` images on ``device``; layers in network order."""
    generator: Generator = field(repr=False)
    device: torch.device
    batch_size: int
    layers: list[LayerPlan]
    stamp: list[Stamp] = field(repr=False)
    stages: list[Stage] = field(default_factory=list)
    buffer_bytes: dict[Slot, int] = field(default_factory=dict, repr=False)  # what a forward needs by slot
    # Derived tensors by (layer name, kind), shared with plans for other batch sizes of the same weights.
    store: dict[tuple[str, str], object] = field(default_factory=dict, repr=False)
    buffers: ActivationBuffers | None = field(default=None, repr=False)  # shared likewise

    def __post_init__(self):
        if self.buffers is None:
            self.buffers = ActivationBuffers(self.device)

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
        if self.stale_reason() is None:
            return self
        return build_plan(self.generator, self.device, self.batch_size, buffers=self.buffers)

    def for_batch(self, batch_size: int) -> InferencePlan:
        """The plan for another batch size, sharing this one's prepared tensors (checked fresh) and buffers."""
        if batch_size == self.batch_size:
            return self
        self.check()
        return build_plan(self.generator, self.device, batch_size, self.store, self.buffers)

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
        """The plan as a text table: layer, resolution, channels, samples a pass, algorithm, epilogue, toRGB, why."""
        head = (f"{'layer':<10} {'res':>5} {'channels':>9} {'pass':>4}  {'algorithm':<18} {'epilogue':<14} "
                f"{'toRGB':<6} why")
        rows = [f"{lp.name:<10} {lp.resolution:>5} {f'{lp.in_channels}>{lp.out_channels}':>9} "
                f"{self.stages[lp.stage].samples:>4}  {lp.algorithm:<18} {lp.epilogue:<14} "
                f"{'fused' if lp.to_rgb_fused else '-':<6} {lp.why}" for lp in self.layers]
        mib, kept = sum(self.buffer_bytes.values()) / 2 ** 20, total_prepared_bytes(self) / 2 ** 20
        return "\n".join([f"inference plan: batch {self.batch_size} on {self.device}; memory: {kept:.0f} MiB of "
                          f"prepared filters, {mib:.0f} MiB of activation buffers (layer outputs; each layer call's raw "
                          f"output, Winograd tiles and band buffers); pass: samples a pass takes, at most "
                          f"{policy.PASS_BYTES >> 20} MiB a tensor",
                          head, *rows])


def weights_stamp(G: Generator) -> list[Stamp]:
    """The version of every parameter and buffer of G's synthesis network, in a fixed order."""
    tensors = list(G.synthesis.named_parameters()) + list(G.synthesis.named_buffers())
    return [(name, t._version, t.data_ptr(), t.dtype, t.device, tuple(t.shape)) for name, t in tensors]


def kept_plan(G: Generator, kept: dict, device: torch.device | str | None = None,
              batch_size: int = 1) -> InferencePlan:
    """G's plan for ``batch_size`` images on ``device``, kept in ``kept`` (G's) between calls: while G's
    weights are unchanged the plan kept for this device and these settings (Winograd and ops modes,
    pass budget) is returned, or one for another batch size sharing its filters and buffers; after a
    weight change a new plan replaces them, reusing their buffers, and stale plans kept for other
    settings or devices are dropped."""
    device = G.device if device is None else torch.device(device)
    key = (device, winograd.winograd_mode(), OPS_MODE.get(), policy.PASS_BYTES)
    plans: dict[int, InferencePlan] = kept.get(key, {})
    some = next(iter(plans.values()), None)
    if some is not None and some.stale_reason() is None:
        if batch_size not in plans:
            plans[batch_size] = some.for_batch(batch_size)
        return plans[batch_size]
    plan = build_plan(G, device, batch_size, buffers=None if some is None else some.buffers)
    for other in [k for k, held in kept.items() if k != key and next(iter(held.values())).stale_reason()]:
        del kept[other]  # e.g. the CPU plans of a generator moved to the GPU: their memory goes
    kept[key] = {batch_size: plan}
    return plan


def build_plan(G: Generator, device: torch.device | str | None = None, batch_size: int = 1,
               store: dict | None = None, buffers: ActivationBuffers | None = None) -> InferencePlan:
    """Walk G's synthesis layers once for ``batch_size`` images on ``device`` (G's own; G must already
    be there). ``store``, ``buffers``: prepared tensors and activation buffers of another plan of the
    same weights, reused."""
    device = G.device if device is None else torch.device(device)
    if device.type != G.device.type or (device.index is not None and device != G.device):
        raise ValueError(f"the generator is on {G.device}, not {device}: move it first (G.to(device))")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    store = {} if store is None else store
    blocks = G.synthesis.blocks()
    samples = policy.samples_per_pass(batch_size, [_largest_bytes(b, device) for b in blocks])
    stages = _stages(samples)
    layers = []
    with torch.no_grad():
        for stage_index, stage in enumerate(stages):
            for block in blocks[stage.first: stage.end]:
                layers += _plan_block(block, stage.samples, device, stage_index, store)
    for i, lp in enumerate(layers):
        lp.index = i
    plan = InferencePlan(G, device, batch_size, layers, weights_stamp(G), stages, {}, store, buffers)
    _assign_slots(plan, blocks)
    if FILTERS_IN_ARENA:
        _filters_in_arena(plan)
    with torch.no_grad():
        for lp, layer in zip(layers, (layer for stage in stages for block in blocks[stage.first: stage.end]
                                      for layer in block.layers())):
            lp.prepared = _prepared(lp, layer, stages[lp.stage].samples, store)
    return plan


def _plan_block(block, n: int, device: torch.device, stage: int, store: dict) -> list[LayerPlan]:
    """The block's layers planned for passes of n samples."""
    dtype = _block_dtype(block, device)
    fuse_rgb = block.num_torgb and block.architecture != "resnet"
    plans = []
    for layer in block.layers():
        rgb = bool(fuse_rgb) and layer is block.conv1
        plans.append(_plan_layer(f"b{block.resolution}.{_short(block, layer)}", layer, n, dtype, device, rgb, store))
        plans[-1].stage = stage
    return plans


def _block_dtype(block, device: torch.device) -> torch.dtype:
    return torch.float16 if block.use_fp16 and device.type == "cuda" else torch.float32


def _largest_bytes(block, device: torch.device) -> int:
    """Bytes per sample of the block's largest activation (a conv's output, an upsampling conv's before
    its FIR filter)."""
    size = _block_dtype(block, device).itemsize
    return max(layer.weight.shape[0] * raw_side(layer.resolution, layer.up) ** 2 * size for layer in block.layers())


def _stages(samples: list[int]) -> list[Stage]:
    """Runs of consecutive blocks taking the same samples a pass."""
    stages, first = [], 0
    for i in range(1, len(samples) + 1):
        if i == len(samples) or samples[i] != samples[first]:
            stages.append(Stage(first, i, samples[first]))
            first = i
    return stages


def _grow(sizes: dict[Slot, int], slot: Slot, nbytes: int) -> None:
    """Make ``sizes[slot]`` at least ``nbytes``."""
    sizes[slot] = max(sizes.get(slot, 0), nbytes)


def _assign_slots(plan: InferencePlan, blocks) -> None:
    """Give each layer's output (and raw conv output) a place in a buffer slot and size the slots: a stage's
    outputs share its "x" slot, each placed by ``buffers.output_at`` against the input it reads (the previous
    layer's output; a stage's first layer reads its parent stage's slot). The resnet architecture's blocks keep
    the allocating path."""
    layer_iter = iter(plan.layers)
    last = blocks[-1]
    for stage_index, stage in enumerate(plan.stages):
        held = None  # (start, bytes) in the stage's slot of the output the next layer reads
        for block in blocks[stage.first: stage.end]:
            for layer in block.layers():
                lp = next(layer_iter)
                if block.architecture == "resnet":
                    continue
                if not (lp.to_rgb_fused and block is last):  # else its output is not stored
                    nbytes = stage.samples * lp.out_channels * lp.resolution ** 2 * lp.dtype.itemsize
                    lp.out_slot, lp.out_at = "x", output_at(nbytes, held, input_dead=lp.up > 1)
                    held = (lp.out_at, nbytes)
                    _grow(plan.buffer_bytes, (stage_index, "x"), lp.out_at + nbytes)
                lp.raw_slot = "raw" if lp.algorithm in RAW_SLOT_ALGORITHMS else None
                side = lp.resolution // lp.up
                lp.tiles_over_raw = lp.raw_slot is not None and winograd.one_call(lp.algorithm, stage.samples,
                                                                                  side, side)
                arena = arena_bytes(_transient_requests(lp, stage.samples), lp.scratch_shared)
                _grow(plan.buffer_bytes, TRANSIENT_ARENA, arena)


def _filters_in_arena(plan: InferencePlan) -> None:
    """Make the stride-2 Winograd layers whose filter planes (36 MiB at 512 × 512 channels) fit in the arena
    beside their call's own tensors, as the other layers sized it, "up_winograd_unkept": their planes are
    made per call there (4-6 ms at 512 × 512 channels, benchmarks/THRESHOLDS.md) instead of kept. Not where
    another plan of these weights keeps them already."""
    arena = plan.buffer_bytes.get(TRANSIENT_ARENA, 0)
    for lp in plan.layers:
        if lp.algorithm != "up_winograd" or (lp.name, f"up_{lp.dtype}") in plan.store:
            continue
        unkept = replace(lp, algorithm="up_winograd_unkept")
        if arena_bytes(_transient_requests(unkept, plan.stages[lp.stage].samples), unkept.scratch_shared) <= arena:
            lp.algorithm, lp.why = unkept.algorithm, f"{lp.why}; its filters made per call in the arena's free room"


def _transient_requests(lp: LayerPlan, n: int) -> list[tuple[str, int]]:
    """What a call of the layer on n samples puts in the arena, in order (``buffers.LayerScratch``): the filter
    planes it makes per call, its raw conv output, then its conv's scratch."""
    requests = []
    if lp.algorithm == "up_winograd_unkept":
        requests.append(("filters", winograd_op.UP_DISTINCT * lp.out_channels * lp.in_channels * lp.dtype.itemsize))
    if lp.raw_slot is not None:
        requests.append((lp.raw_slot, n * lp.out_channels * lp.raw_side ** 2 * lp.dtype.itemsize))
    side = lp.resolution // lp.up
    return requests + winograd.scratch_requests(lp.algorithm, n, lp.in_channels, lp.out_channels, side, side,
                                                lp.dtype.itemsize)


def _short(block, layer) -> str:
    return "conv1" if layer is block.conv1 else "conv0"


def _plan_layer(name: str, layer: SynthesisLayer, n: int, dtype: torch.dtype, device: torch.device,
                block_rgb: bool, store: dict) -> LayerPlan:
    """Decide one layer's algorithm (its squared tap sums and FIR taps kept in ``store``); what it reads of its
    weights is prepared once the plan has sized its buffers (``_prepared``)."""
    w = layer.weight
    out_c, in_c, k = w.shape[0], w.shape[1], w.shape[2]
    res = layer.resolution
    square_sums = _kept(store, name, "square_sums", lambda: fast_modconv.weight_square_sums(w))
    if layer.up == 1:
        choice = policy.choose_same(n, in_c, out_c, res, k, layer.padding, dtype, device)
        fir = None
    else:
        fir = _kept(store, name, "fir", lambda: fast_modconv.upsample_fir(layer.resample_filter, layer.up,
                                                                          layer.padding, w.shape[2:]))
        choice = policy.choose_up(n, in_c, out_c, res // layer.up, k, layer.up, fir is not None, dtype, device)
    return LayerPlan(name, res, in_c, out_c, layer.up, dtype, choice.algorithm, choice.why,
                     block_rgb and choice.algorithm == "fused", square_sums, None, fir)


def _prepared(lp: LayerPlan, layer: SynthesisLayer, n: int, store: dict):
    """What the layer's algorithm reads of its weights (``LayerPlan.prepared``), for passes of n samples, kept
    in ``store`` by (layer name, kind)."""
    w, dtype, algorithm = layer.weight, lp.dtype, lp.algorithm
    if lp.up == 1:
        if algorithm not in ("fused", "f43"):
            return None
        return _kept(store, lp.name, f"f43_{dtype}", lambda: fast_modconv.prepare_f43(w, dtype))
    packed = algorithm == "up_direct" and lp.fir is not None
    kind = (f"up_{dtype}" if algorithm in ("up_fused", "up_winograd") else
            f"up_edges_{dtype}" if algorithm == "up_winograd_unkept" else f"onednn_{dtype}" if packed else "transposed")
    size = (n, lp.in_channels, lp.resolution // lp.up, lp.resolution // lp.up) if packed else None
    return _kept(store, lp.name, kind, lambda: fast_modconv.prepare_up(algorithm, w, dtype, size, layer.up))


def _kept(store: dict, name: str, kind: str, make):
    """``store[(name, kind)]``, made by ``make()`` if missing."""
    if (name, kind) not in store:
        store[(name, kind)] = make()
    return store[(name, kind)]


def total_prepared_bytes(plan: InferencePlan) -> int:
    """Bytes of the tensors the plan keeps (its store; the stride-2 filters are a tuple), each storage once
    (a view shares its tensor's)."""
    tensors = [t for v in plan.store.values() for t in (v if isinstance(v, tuple) else (v,))
               if isinstance(t, torch.Tensor)]
    return sum(dict(_storage(t) for t in tensors).values())


def _storage(t: torch.Tensor) -> tuple[int, int]:
    """(an id of t's storage, its bytes); an opaque tensor (oneDNN's layout) has no storage: its own."""
    if t.layout != torch.strided:
        return id(t), t.numel() * t.element_size()
    return t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()
