"""Which ws drive which resolution, and layer sets for style mixing ('coarse', '0-6', '0,1,4-7').

A synthesis block at resolution r owns the ws its convolutions read: ws index of a block =
sum of the earlier blocks' num_conv (each block's to-RGB shares the next block's first index;
the last block also owns its to-RGB index). So 4² owns ws 0, 8² owns 1–2, 16² owns 3–4, ...
The StyleGAN paper's named ranges by resolution: coarse = 4²–8², middle = 16²–32²,
fine = 64² and up; at 1024² (18 ws) that is 0–2, 3–6 and 7–17.
"""
from __future__ import annotations

import re

from ..errors import UserError

NAMED_RANGES = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 2 ** 30)}
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def ws_by_resolution(synthesis) -> dict[int, list[int]]:
    """{resolution: [ws indices]} for a SynthesisNetwork; the lists partition range(num_ws)."""
    out: dict[int, list[int]] = {}
    idx = 0
    blocks = synthesis.blocks()
    for i, block in enumerate(blocks):
        own = block.num_conv + (block.num_torgb if i == len(blocks) - 1 else 0)
        out[block.resolution] = list(range(idx, idx + own))
        idx += block.num_conv
    return out


def named_layers(synthesis, name: str) -> list[int]:
    """The ws of a named range ('coarse' | 'middle' | 'fine'), empty if the network has none."""
    lo, hi = NAMED_RANGES[name]
    return [i for res, idx in ws_by_resolution(synthesis).items() if lo <= res <= hi for i in idx]


def parse_layers(text: str, synthesis) -> list[int]:
    """'coarse', 'middle,fine', '0-6', '0,1,4-7', 'all' or '' (none) → sorted ws indices."""
    num_ws = synthesis.num_ws
    chosen: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part == "all":
            chosen.update(range(num_ws))
        elif part in NAMED_RANGES:
            idx = named_layers(synthesis, part)
            if not idx:
                lo = NAMED_RANGES[part][0]
                raise UserError(f"this {synthesis.img_resolution}² network has no {part} layers ({lo}² and up)")
            chosen.update(idx)
        else:
            m = _RANGE.match(part)
            if not m:
                raise UserError(f"bad layer list {text!r}: use coarse, middle, fine, all, or ranges like 0-6 or 0,1,4-7")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo or hi >= num_ws:
                raise UserError(f"bad layer range {part!r}: this network has ws 0-{num_ws - 1}")
            chosen.update(range(lo, hi + 1))
    return sorted(chosen)
