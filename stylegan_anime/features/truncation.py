"""Truncation sweep: one row per seed, one column per psi, to see variety traded for quality.

psi pulls each w towards the average w (w_avg + psi * (w - w_avg)): psi = 0 is the same
"average character" in every row, psi = 1 is untruncated, psi > 1 exaggerates.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from ..errors import UserError
from .generation import synthesize
from ..latents.keyframes import keyframe_name, keyframe_ws, parse_keyframes
from .render import make_grid, save_image

DEFAULT_PSIS = (0.3, 0.7, 1.0, 1.3)


def parse_psis(text: str | Sequence[float]) -> list[float]:
    """'0.3,0.7,1' → [0.3, 0.7, 1.0]; each finite (nan / inf would draw blank cells)."""
    if not isinstance(text, str):
        psis = [float(v) for v in text]
    else:
        try:
            psis = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"bad psi list {text!r}: use numbers like 0.3,0.7,1.0") from None
    if not psis:
        raise UserError("no psi values given")
    bad = [p for p in psis if not math.isfinite(p)]
    if bad:
        raise UserError(f"bad psi list {text!r}: {bad[0]} is not a finite number")
    return psis


@torch.no_grad()
def truncation_images(G, seeds, psis: Sequence[float], cutoff: int | None = None, c: torch.Tensor | None = None,
                      noise_mode: str = "const", batch_size: int = 8) -> torch.Tensor:
    """[len(seeds) * len(psis), C, H, W] in [-1, 1], row by row (seed-major).

    A saved w (projected) is treated as untruncated and pulled towards w_avg like a seed's."""
    keys = parse_keyframes(seeds)
    ws = torch.stack([keyframe_ws(G, k, 1.0, None, c) for k in keys])  # [S, num_ws, w_dim]
    rows = [G.mapping.truncate(ws, psi, cutoff) for psi in psis]       # each [S, num_ws, w_dim]
    cells = torch.stack(rows, dim=1).flatten(0, 1)                     # [S * P, num_ws, w_dim]
    return synthesize(G, cells, noise_mode, batch_size)


def truncation_grid(G, seeds, psis: Sequence[float] | str = DEFAULT_PSIS, captions: bool = True,
                    **kwargs) -> Image.Image:
    """Seeds as rows, psi values as columns; optional caption 'seed N psi P' under each cell."""
    psis = parse_psis(psis)
    keys = parse_keyframes(seeds)
    images = truncation_images(G, keys, psis, **kwargs)
    # A long caption would run into the next cell on small images: keep only psi there.
    long = G.img_resolution >= 96
    labels = [f"{keyframe_name(k)} psi {p:g}" if long else f"{p:g}" for k in keys for p in psis] \
        if captions else None
    return make_grid(images, cols=len(psis), labels=labels)


def save_truncation_grid(G, seeds, path: str | Path, psis: Sequence[float] | str = DEFAULT_PSIS,
                         **kwargs) -> Path:
    """``truncation_grid`` written to ``path`` (.png)."""
    return save_image(truncation_grid(G, seeds, psis, **kwargs), path)
