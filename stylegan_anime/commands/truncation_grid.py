"""`stylegan-anime truncation-grid`: seeds as rows, psi values as columns."""
from __future__ import annotations

import argparse

from ..io import loading
from ..io.outputs import check_outputs
from ..features.render import image_format
from ..features.truncation import parse_psis, save_truncation_grid
from .args import add_force_option, add_network_options, int_arg
from .generate import conditioning


def add_parser(sub) -> None:
    p = sub.add_parser("truncation-grid", help="truncation sweep: seeds × psi values",
                       description="One row per seed (or saved latent), one column per psi: how truncation "
                       "trades variety for quality.")
    add_network_options(p)
    p.add_argument("--seeds", required=True, help="seeds / .npz, e.g. 0-3")
    p.add_argument("--psis", default="0.3,0.7,1.0,1.3", help="comma-separated psi values (default 0.3,0.7,1.0,1.3)")
    p.add_argument("--cutoff", type=int_arg("--cutoff", 0), default=None, help="truncate only the first N ws")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], default="const")
    p.add_argument("--class", dest="class_idx", type=int_arg("--class", 0), default=None)
    p.add_argument("--labels", default=None, help="comma-separated label vector for conditional networks")
    p.add_argument("--no-captions", action="store_true", help="leave out the 'seed N psi P' captions")
    p.add_argument("--batch", type=int_arg("--batch", 1), default=8, help="images per forward pass")
    p.add_argument("-o", "--out", required=True, help="output .png")
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    parse_psis(args.psis)
    image_format(args.out)
    check_outputs([args.out], force=args.force)
    G = loading.load(args.network, device=loading.resolve_device(args.device),
                      allow_nonfinite=args.allow_nonfinite)
    path = save_truncation_grid(G, args.seeds, args.out, args.psis, captions=not args.no_captions,
                                cutoff=args.cutoff, c=conditioning(args, G.c_dim, 1, G), noise_mode=args.noise_mode,
                                batch_size=args.batch)
    print(f"wrote {path}")
    return 0
