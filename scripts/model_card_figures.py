"""The model card's pictures of a conditional network: one grid per attribute (rows: its values,
columns: the same seeds, so each column is one character with only that attribute changed), and
the label-less seed grid of the README's main job.

    python scripts/model_card_figures.py --network default --seeds 0-7 --out docs/images/default
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import stylegan_anime as sa
from stylegan_anime.editing.tags import network_label_names, seed_labels, with_group_value
from stylegan_anime.metrics.classifier import label_groups

SCALE = 2   # 64² cells are small on a page: drawn at 128²


def attribute_grid(G, group, names: list[str], seeds: list[int], psi: float) -> Image.Image:
    """Rows: the group's values (binary: off, on); columns: ``seeds``; a caption column on the left."""
    base = seed_labels(G, seeds)
    values = [0, 1] if group.binary else list(range(group.width))
    rows = [sa.generate_images(G, seeds, psi=psi, c=with_group_value(base, group, v)) for v in values]
    grid = sa.make_grid(torch.cat(rows), cols=len(seeds))
    grid = grid.resize((grid.width * SCALE, grid.height * SCALE), Image.NEAREST)
    captions = ([f"no {group.name}", group.name] if group.binary
                else [names[group.start + v].split("=", 1)[1] for v in values])
    cell = G.img_resolution * SCALE
    out = Image.new("RGB", (grid.width + 80, grid.height), (255, 255, 255))
    out.paste(grid, (80, 0))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(captions):
        draw.text((4, i * cell + cell // 2 - 6), text, fill=(0, 0, 0))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default="default")
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--psi", type=float, default=1.0)
    p.add_argument("--out", default="docs/images/default", help="folder for attr_<name>.png")
    args = p.parse_args(argv)
    G = sa.load(args.network, device="cpu")
    names = network_label_names(G)
    seeds = sa.parse_seeds(args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for group in label_groups(names):
        path = out / f"attr_{group.name}.png"
        attribute_grid(G, group, names, seeds, args.psi).save(path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
