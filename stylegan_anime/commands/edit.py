"""`stylegan-anime edit`: move seeds along attribute directions: a grid, rows = seeds, columns = strengths."""
from __future__ import annotations

import argparse

from .. import latents
from ..io import loading
from ..features import render
from ..editing.directions import WEAK_R2, edit_grid, load_directions, tag_strengths, weak_directions
from ..editing.tags import split_prompt
from ..io.outputs import check_outputs
from .args import add_force_option, add_network_options, float_arg, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("edit", help="steer seeds along attribute directions (PNG grid)",
                       description="Rows are seeds, columns move from -STRENGTH to +STRENGTH along the tags' "
                                   "directions (\"no glasses\" moves away). For conditional networks use "
                                   "`generate --tags` instead.")
    add_network_options(p)
    p.add_argument("--seeds", required=True, help="e.g. 0-3")
    p.add_argument("--directions", required=True, help=".npz from `stylegan-anime directions` (regression or sefa)")
    p.add_argument("--tags", required=True, help='e.g. "blonde hair, glasses"; for SeFa directions "sefa0, no sefa2"')
    p.add_argument("--strength", type=float_arg("--strength"), default=2.0, help="in std of w along the axis")
    p.add_argument("--steps", type=int_arg("--steps", 2), default=5, help="columns")
    p.add_argument("--keep", default="", help='tags whose directions the edit must not move, e.g. "glasses"')
    p.add_argument("--psi", type=float_arg("--psi"), default=1.0, help="truncation psi (1 = none)")
    p.add_argument("-o", "--out", required=True, help="output .png")
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    render.image_format(args.out)
    check_outputs([args.out], force=args.force)
    seeds = latents.parse_seeds(args.seeds)
    dirs = load_directions(args.directions)
    strengths = tag_strengths(args.tags, dirs, args.strength)
    keep = list(tag_strengths(split_prompt(args.keep), dirs)) if args.keep.strip() else []
    weak = {n: r for n, r in weak_directions(dirs).items() if n in strengths}
    if weak:
        print(f"warning: weak fits (held-out R² < {WEAK_R2}), the edit may change little: "
              f"{', '.join(f'{n} {r:.2f}' for n, r in weak.items())}")
    G = loading.load(args.network, device=loading.resolve_device(args.device),
                      allow_nonfinite=args.allow_nonfinite)
    images = edit_grid(G, seeds, dirs, strengths, steps=args.steps, psi=args.psi, keep=keep)
    print(f"wrote {render.save_grid(images, args.out, cols=args.steps, rows=len(seeds))}")
    return 0
