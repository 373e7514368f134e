"""`stylegan-anime generate`: seeds → one PNG per seed, or one grid."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import latents
from ..io import loading
from ..features import render
from ..errors import UserError
from ..features.generation import generate_images
from .args import add_generation_options, add_network_options, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="images from seeds", description="Images from seeds: one PNG per seed "
                       "(OUT is a folder) or one grid (--grid, OUT is a .png).")
    add_network_options(p)
    p.add_argument("--seeds", required=True, help="e.g. 0-8 or 1,2,5-10")
    add_generation_options(p, tf_seed=True)
    p.add_argument("--grid", default=None, help="COLSxROWS, e.g. 3x3: write one grid image")
    p.add_argument("--batch", type=int_arg("--batch", 1), default=8, help="images per forward pass")
    p.add_argument("-o", "--out", required=True, help="output folder, or .png file with --grid")
    p.set_defaults(run=run)


def conditioning(args: argparse.Namespace, c_dim: int, n: int, G=None, seeds=None):
    """The label tensor the options ask for (None for unconditional networks).

    --tags needs ``G`` (its label names) and gives one row per seed."""
    given = [o for o, v in (("--class", args.class_idx), ("--labels", args.labels),
                            ("--tags", getattr(args, "tags", None))) if v is not None]
    if len(given) > 1:
        raise UserError(f"give only one of {' and '.join(given)}")
    if getattr(args, "tags", None) is not None:
        if G is None:
            raise UserError("--tags does not apply to this command")  # pragma: no cover
        from ..editing.tags import network_label_names, tag_labels
        return tag_labels(args.tags, network_label_names(G), seeds)
    if args.labels is not None:
        try:
            values = [float(v) for v in args.labels.split(",")]
        except ValueError:
            raise UserError(f"--labels must be comma-separated numbers, got {args.labels!r}") from None
        return latents.label_vector(values, c_dim, n)
    return latents.class_labels(args.class_idx, c_dim, n)


def run(args: argparse.Namespace) -> int:
    seeds = latents.parse_seeds(args.seeds)
    grid = render.parse_grid(args.grid) if args.grid else None
    if grid:
        render.grid_shape(len(seeds), *grid)
    G = loading.load(args.network, device=loading.resolve_device(args.device),
                      allow_nonfinite=args.allow_nonfinite)
    images = generate_images(G, seeds, psi=args.psi, cutoff=args.cutoff, noise_mode=args.noise_mode,
                             c=conditioning(args, G.c_dim, 1, G, seeds), batch_size=args.batch, progress=True)
    if grid:
        path = render.save_grid(images, args.out, cols=grid[0], rows=grid[1])
        print(f"wrote {path}")
    else:
        out = Path(args.out)
        if out.suffix:
            raise UserError(f"{out} looks like a file: without --grid, -o names a folder for seedNNNN.png files")
        render.save_images(images, [out / f"seed{s:04d}.png" for s in seeds])
        print(f"wrote {len(seeds)} images to {out}")
    return 0
