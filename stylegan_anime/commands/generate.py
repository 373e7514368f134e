"""`stylegan-anime generate`: seeds → one PNG per seed, or one grid."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import latents
from ..io import loading
from ..features import render
from ..errors import UserError
from ..features.generation import generate_images
from ..io.outputs import check_outputs
from .args import add_force_option, add_generation_options, add_network_options, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="images from seeds", description="Images from seeds: one PNG per seed "
                       "(OUT is a folder) or one grid (--grid, OUT is a .png).")
    add_network_options(p)
    p.add_argument("--seeds", required=True, help="e.g. 0-8 or 1,2,5-10")
    add_generation_options(p, tf_seed=True)
    p.add_argument("--prompt", default=None,
                   help='free text for conditional networks, e.g. "a girl with long blonde hair in twintails, '
                        'blue eyes, glasses, smiling, no hat" (matched against the attribute vocabulary)')
    p.add_argument("--grid", default=None, help="COLSxROWS, e.g. 3x3: write one grid image (cells beyond the "
                   "seeds stay blank, with a note on stderr; fewer cells than seeds is an error)")
    p.add_argument("--batch", type=int_arg("--batch", 1), default=8, help="images per forward pass")
    p.add_argument("-o", "--out", required=True, help="output folder, or .png file with --grid")
    add_force_option(p)
    p.set_defaults(run=run)


def conditioning(args: argparse.Namespace, c_dim: int, n: int, G=None, seeds=None):
    """The label tensor the options ask for (None for unconditional networks).

    --tags needs ``G`` (its label names) and gives one row per seed. A conditional network with
    named labels given none of the label options gets None: ``generate_images`` and the keyframes
    then draw each seed's labels from the seed (``tags.seed_labels``)."""
    given = [o for o, v in (("--class", args.class_idx), ("--labels", args.labels),
                            ("--tags", getattr(args, "tags", None)), ("--prompt", getattr(args, "prompt", None)))
             if v is not None]
    if len(given) > 1:
        raise UserError(f"give only one of {' and '.join(given)}")
    if getattr(args, "prompt", None) is not None:
        return prompt_conditioning(args.prompt, G, seeds)
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
    if args.class_idx is None and c_dim and G is not None:
        from ..editing.tags import has_label_names  # the editing layer loads for conditional networks only
        if has_label_names(G):
            return None   # no character asked for: where seeds become images or ws, each brings its own labels
    return latents.class_labels(args.class_idx, c_dim, n)


def output_paths(out: Path, seeds: list[int], grid: tuple[int, int] | None) -> list[Path]:
    """The files a run writes: the grid image, or one PNG per seed in the folder ``out``."""
    if grid:
        render.image_format(out)
        render.grid_shape(len(seeds), *grid)
        return [out]
    if out.suffix:
        raise UserError(f"{out} looks like a file: without --grid, -o names a folder for seedNNNN.png files")
    return [out / f"seed{s:04d}.png" for s in seeds]


def blank_cells_note(grid: tuple[int, int], n: int) -> str:
    cells = grid[0] * grid[1]
    return f"note: the {grid[0]}x{grid[1]} grid has {cells} cells for {n} seeds: {cells - n} stay blank"


def prompt_conditioning(prompt: str, G, seeds):
    """--prompt: label rows [N, c_dim], after saying in one line each what was read and what was not."""
    if G.c_dim == 0:
        raise UserError("--prompt needs a conditional network; this one is unconditional "
                        "(steer it with `directions` and `edit` instead)")
    from ..editing.prompts import prompt_labels
    from ..editing.tags import network_label_names
    result = prompt_labels(prompt, network_label_names(G), seeds)
    print(f"prompt: {', '.join(result.tags) or '(no attribute named)'}")
    if result.unknown:
        print(f"not understood (ignored): {', '.join(result.unknown)}")
    return result.labels


def run(args: argparse.Namespace) -> int:
    seeds = latents.parse_seeds(args.seeds)
    grid = render.parse_grid(args.grid) if args.grid else None
    paths = check_outputs(output_paths(Path(args.out), seeds, grid), force=args.force)
    if grid and grid[0] * grid[1] > len(seeds):
        print(blank_cells_note(grid, len(seeds)), file=sys.stderr)
    G = loading.load(args.network, device=loading.resolve_device(args.device),
                      allow_nonfinite=args.allow_nonfinite)
    images = generate_images(G, seeds, psi=args.psi, cutoff=args.cutoff, noise_mode=args.noise_mode,
                             c=conditioning(args, G.c_dim, 1, G, seeds), batch_size=args.batch, progress=True)
    if grid:
        print(f"wrote {render.save_grid(images, paths[0], cols=grid[0], rows=grid[1])}")
    else:
        render.save_images(images, paths)
        print(f"wrote {len(seeds)} images to {args.out}")
    return 0
