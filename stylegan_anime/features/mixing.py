"""Style mixing grids ("merge two characters"): row sources down the left, column sources along
the top; cell (r, c) is row r's ws with the chosen layers taken from column c.

With the coarse layers (``--layers coarse`` or ``0-6`` for coarse + middle) a cell has the
column character's pose and face shape and the row character's colours, as in the StyleGAN
paper's figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from ..errors import UserError
from .generation import synthesize
from ..latents.keyframes import Keyframe, keyframe_ws, parse_keyframes
from .render import make_grid, save_image, to_pil


@torch.no_grad()
def mixing_images(G, rows: Sequence[Keyframe], cols: Sequence[Keyframe], layers: str | Sequence[int],
                  psi: float = 1.0, cutoff: int | None = None, c: torch.Tensor | None = None,
                  noise_mode: str = "const", batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row sources [R, C, H, W], column sources [K, C, H, W], cells [R * K, C, H, W] row by row), in [-1, 1]."""
    if not rows or not cols:
        raise UserError("a mixing grid needs at least one row source and one column source")
    w_rows = torch.stack([keyframe_ws(G, k, psi, cutoff, c) for k in rows])  # [R, num_ws, w_dim]
    w_cols = torch.stack([keyframe_ws(G, k, psi, cutoff, c) for k in cols])  # [K, num_ws, w_dim]
    R, K = len(rows), len(cols)
    w_cells = G.mix(w_rows.repeat_interleave(K, dim=0), w_cols.repeat(R, 1, 1), layers)
    return (synthesize(G, w_rows, noise_mode, batch_size), synthesize(G, w_cols, noise_mode, batch_size),
            synthesize(G, w_cells, noise_mode, batch_size))


def mixing_grid(G, rows, cols, layers: str | Sequence[int], psi: float = 1.0, cutoff: int | None = None,
                c: torch.Tensor | None = None, noise_mode: str = "const", batch_size: int = 8) -> Image.Image:
    """The familiar mixing figure: (K + 1) × (R + 1) tiles, top-left blank.

    rows, cols: keyframes ('1,2,3', '0,a.npz' or lists of seeds / latents)."""
    rows, cols = parse_keyframes(rows), parse_keyframes(cols)
    row_img, col_img, cells = mixing_images(G, rows, cols, layers, psi, cutoff, c, noise_mode, batch_size)
    blank = Image.new("RGB", (G.img_resolution, G.img_resolution), (255, 255, 255))
    row_tiles, col_tiles, cell_tiles = to_pil(row_img), to_pil(col_img), to_pil(cells)
    tiles = [blank, *col_tiles]
    for r, row_tile in enumerate(row_tiles):
        tiles += [row_tile, *cell_tiles[r * len(cols): (r + 1) * len(cols)]]
    return make_grid(tiles, cols=len(cols) + 1)


def save_mixing_grid(G, rows, cols, layers, path: str | Path, **kwargs) -> Path:
    """``mixing_grid`` written to ``path`` (.png)."""
    return save_image(mixing_grid(G, rows, cols, layers, **kwargs), path)
