"""Images as people see them: float tensors → uint8 → PIL, grids, PNG files."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..io.atomic import atomic_path
from ..errors import UserError


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """img: [N, C, H, W] in [-1, 1] → [N, H, W, C] uint8, rounded as the official scripts do."""
    return (img.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def to_pil(img: torch.Tensor) -> list[Image.Image]:
    """img: [N, C, H, W] in [-1, 1] (C = 1 or 3) → N PIL images."""
    arr = to_uint8(img).numpy()
    return [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in arr]


def grid_shape(n: int, cols: int | None = None, rows: int | None = None) -> tuple[int, int]:
    """(cols, rows) for n cells: fills in what is not given, near-square by default."""
    if cols is None and rows is None:
        cols = math.ceil(math.sqrt(n))
    if cols is None:
        cols = math.ceil(n / rows)
    if rows is None:
        rows = math.ceil(n / cols)
    if cols * rows < n:
        raise UserError(f"a {cols}x{rows} grid holds {cols * rows} images, not {n}")
    return cols, rows


def parse_grid(text: str) -> tuple[int, int]:
    """'3x3' → (cols, rows)."""
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"bad grid {text!r}: use COLSxROWS, e.g. 3x3") from None
    if cols < 1 or rows < 1:
        raise UserError(f"bad grid {text!r}: both sides must be at least 1")
    return cols, rows


def make_grid(images: torch.Tensor | Sequence[Image.Image], cols: int | None = None, rows: int | None = None,
              padding: int = 0, background: tuple[int, int, int] = (255, 255, 255),
              labels: Sequence[str] | None = None) -> Image.Image:
    """Tile images row by row into one picture; optional caption under each cell."""
    tiles = to_pil(images) if isinstance(images, torch.Tensor) else list(images)
    if not tiles:
        raise UserError("no images to put in a grid")
    cols, rows = grid_shape(len(tiles), cols, rows)
    w, h = tiles[0].size
    caption_h = 14 if labels else 0
    cell_w, cell_h = w + padding, h + padding + caption_h
    canvas = Image.new("RGB", (cols * cell_w + padding, rows * cell_h + padding), background)
    draw = ImageDraw.Draw(canvas)
    for i, tile in enumerate(tiles):
        x, y = padding + (i % cols) * cell_w, padding + (i // cols) * cell_h
        canvas.paste(tile.convert("RGB"), (x, y))
        if labels:
            draw.text((x + 2, y + h + 1), str(labels[i]), fill=(0, 0, 0))
    return canvas


def image_format(path: str | Path) -> str:
    """Pillow's format name for ``path``'s suffix; UserError naming the path when there is none."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        what = f"unknown file type {path.suffix!r}" if path.suffix else "no file type: add .png"
        raise UserError(f"cannot write an image to {path.name!r}: {what}")
    return fmt


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Write a PIL image atomically (format from the suffix)."""
    path = Path(path)
    fmt = image_format(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
    return path


def save_grid(images: torch.Tensor | Sequence[Image.Image], path: str | Path, cols: int | None = None,
              rows: int | None = None, padding: int = 0, labels: Sequence[str] | None = None) -> Path:
    """images: [N, C, H, W] in [-1, 1] → one PNG grid at ``path``."""
    return save_image(make_grid(images, cols, rows, padding, labels=labels), path)


def save_images(images: torch.Tensor, paths: Sequence[str | Path]) -> list[Path]:
    """images: [N, C, H, W] in [-1, 1] → one file per image."""
    return [save_image(im, p) for im, p in zip(to_pil(images), paths)]


def image_to_tensor(image: Image.Image, resolution: int | None = None) -> torch.Tensor:
    """PIL image → [1, 3, R, R] float in [-1, 1] (resized with LANCZOS when ``resolution`` given)."""
    image = image.convert("RGB")
    if resolution is not None and image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1
