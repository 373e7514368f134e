"""The activation buffers an inference plan owns: allocated once, at the sizes the plan computed from its
layers, and reused by every forward, so that no forward allocates (or page-faults in) a large tensor.

Without them each forward's big activations (tens to hundreds of MiB at 256²–512²) come from mmap and
go back to the kernel when freed, and the next forward zero-fills every page again: 30 % of a 512²
batch-8 forward on the CPU (``benchmarks/plan_memory.py``). Owning the buffers keeps that cost out
without changing how the process allocates anything else.

A slot is named by (stage, role): the plan's layers write their outputs into the slots it assigned
them (``LayerPlan.out_slot``, ``raw_slot``); a slot holds bytes and is viewed as each layer's dtype
and shape. Plans for other batch sizes of the same weights (``InferencePlan.for_batch``) share one
``ActivationBuffers``, which grows a slot when a plan needs it larger. A lock keeps two threads from
running forwards on the same buffers at once.
"""
from __future__ import annotations

import math
import threading
from typing import Iterable

import torch

# (stage index, role): "x" for layer outputs, each at the place ``output_at`` gives it; a stage's "x" holds what
# its next pass, or its child stage, still reads. What lives only within one layer's call shares one slot, the arena
# (``TRANSIENT_ARENA``), laid out per call by ``LayerScratch``: "raw" for an upsampling conv's output before
# its epilogue, "tiles_in" / "tiles_out" for a Winograd conv's transformed input and its products
# ("tiles_in" also the fused convs' band buffers). Laid end to end per call, the arena is the largest
# layer's sum, not the sum of each role's largest: 77 instead of 125 MiB at 512² batch 1.
Slot = tuple[int, str]
TRANSIENT = -1
TRANSIENT_ARENA: Slot = (TRANSIENT, "arena")
# Cache lines each role's tensors start after (see ActivationBuffers._offset): distinct modulo 64.
ROLE_LINES = {"x": 0, "raw": 34, "tiles_in": 51, "tiles_out": 9}
# ... that an output placed past its layer's input starts after its page, so that the two differ too.
PAST_INPUT_LINES = 17


class ActivationBuffers:
    """Byte buffers by slot on one device, sized by ``reserve`` before a forward and viewed by ``view``."""

    def __init__(self, device: torch.device):
        self.device = device
        self.lock = threading.Lock()
        self._bytes: dict[Slot, torch.Tensor] = {}

    def reserve(self, sizes: dict[Slot, int]) -> None:
        """Make every slot at least ``sizes[slot]`` bytes (allocating only slots that are too small)."""
        for slot, nbytes in sizes.items():
            have = self._bytes.get(slot)
            if have is None or have.numel() - self._offset(slot) < nbytes:
                self._bytes.pop(slot, None)  # freed before the larger one is allocated
                self._bytes[slot] = torch.empty(nbytes + self._offset(slot), dtype=torch.uint8, device=self.device)

    def view(self, slot: Slot, shape: Iterable[int], dtype: torch.dtype, at: int = 0) -> torch.Tensor:
        """The slot's bytes from byte ``at`` on as a contiguous tensor of ``shape`` and ``dtype``; a slot not
        reserved large enough grows (views taken before keep the old bytes alive)."""
        shape = tuple(shape)
        nbytes = math.prod(shape) * dtype.itemsize
        self.reserve({slot: at + nbytes})
        start = self._offset(slot) + at
        return self._bytes[slot][start: start + nbytes].view(dtype).view(shape)

    def _offset(self, slot: Slot) -> int:
        """Where the slot's tensors start in its buffer. Large allocations all start at the same offset
        within a 4 KiB page, so a layer reading one slot and writing another at the same offsets
        within their pages makes the CPU stall (4K aliasing) and share cache sets: 5 % of a 512²
        batch-8 forward (``benchmarks.compare_ports``). A different number of 64-byte lines per role
        and stage keeps them apart."""
        return (ROLE_LINES.get(slot[1], 0) + 23 * (slot[0] + 1)) % 64 * 64

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(t.numel() for t in self._bytes.values())

    def release(self) -> None:
        """Free every slot (the next forward allocates them again)."""
        self._bytes.clear()


# A role that may take an earlier role's bytes in a call: an unfused upsampling conv that takes all its tiles
# in one call (``winograd.one_call``) reads its input tiles only before it writes its raw output, so the
# tiles may lie where the raw output will: an arena of 63 instead of 77 MiB at 256² batch 1, 67 instead of
# 77 at 512².
TILES_OVER_RAW = {"tiles_in": "raw"}


class LayerScratch:
    """One layer call's transient tensors, end to end in ``buffers``' arena, each role at the first place it
    got in the call (the unfused convs ask again for each slice or band of their input, never for more).
    ``shared``: role → the role placed just before it whose bytes it may take (``TILES_OVER_RAW``).
    Callable as ``winograd_op.Scratch``: (role, shape, dtype) → tensor."""

    def __init__(self, buffers: ActivationBuffers | None = None, shared: dict[str, str] | None = None):
        self.buffers = buffers
        self.shared = shared or {}
        self.places: dict[str, tuple[int, int]] = {}  # role → (start, bytes)
        self.last: str | None = None  # the role placed last
        self.end = 0

    def place(self, role: str, nbytes: int) -> int:
        """Where role's ``nbytes`` start in the arena: where its shared role starts if that was placed last,
        else after the roles placed before, on a page of its own and a different number of cache lines into
        it (``ActivationBuffers._offset``'s 4K aliasing)."""
        start, held = self.places.get(role, (0, -1))
        if nbytes > held:
            host = self.shared.get(role)
            if host is not None and host == self.last:
                start = self.places[host][0]
            else:
                start = -(-self.end // 4096) * 4096 + ROLE_LINES.get(role, 0) * 64
            self.places[role] = (start, nbytes)
            self.end, self.last = max(self.end, start + nbytes), role
        return start

    def __call__(self, role: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        at = self.place(role, math.prod(shape) * dtype.itemsize)
        return self.buffers.view(TRANSIENT_ARENA, shape, dtype, at)


def arena_bytes(requests: Iterable[tuple[str, int]], shared: dict[str, str] | None = None) -> int:
    """The arena bytes one layer call takes for its ``requests`` (role, bytes), in the order it asks
    (``shared`` as ``LayerScratch`` takes it)."""
    layout = LayerScratch(shared=shared)
    for role, nbytes in requests:
        layout.place(role, nbytes)
    return layout.end


def output_at(nbytes: int, held: tuple[int, int] | None, input_dead: bool) -> int:
    """Where in its stage's "x" slot a layer's ``nbytes`` output starts. ``held``: (start, bytes) of its input
    in that slot (None: the input lies elsewhere); ``input_dead``: the layer reads all its input before it
    writes its output (an upsampling conv, whose epilogue reads only its conv's output). Such an output, or
    one whose input lies elsewhere, starts at 0; another starts at 0 if it ends before its input, else past it.
    So a block's two outputs take the slot in turns and the last block's unstored conv1 leaves its conv0's
    output alone in it: 32 instead of 48 MiB at 256² batch 1, 64 instead of 96 at 512²."""
    if held is None or input_dead or nbytes <= held[0]:
        return 0
    return -(-(held[0] + held[1]) // 4096) * 4096 + PAST_INPUT_LINES * 64
