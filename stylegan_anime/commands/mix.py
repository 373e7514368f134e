"""`stylegan-anime mix`: the style-mixing grid (column sources on top, row sources on the left)."""
from __future__ import annotations

import argparse

from ..io import loading
from ..features.mixing import save_mixing_grid
from ..io.outputs import check_outputs
from ..features.render import image_format
from .args import add_force_option, add_generation_options, add_network_options, int_arg
from .generate import conditioning


def add_parser(sub) -> None:
    p = sub.add_parser("mix", help="style-mixing grid (merge two characters)",
                       description="Cell (r, c) is row source r with the --layers ws taken from column "
                       "source c: coarse layers bring c's pose and face shape, fine layers its colours.")
    add_network_options(p)
    p.add_argument("--rows", required=True, help="row sources: seeds / .npz, e.g. 1,2,3")
    p.add_argument("--cols", required=True, help="column sources: seeds / .npz, e.g. 10,11")
    p.add_argument("--layers", default="coarse",
                   help="ws taken from the column source: coarse, middle, fine, all, or 0-6, 0,1,4-7")
    add_generation_options(p)
    p.add_argument("--batch", type=int_arg("--batch", 1), default=8, help="images per forward pass")
    p.add_argument("-o", "--out", required=True, help="output .png")
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    image_format(args.out)
    check_outputs([args.out], force=args.force)
    G = loading.load(args.network, device=loading.resolve_device(args.device),
                      allow_nonfinite=args.allow_nonfinite)
    path = save_mixing_grid(G, args.rows, args.cols, args.layers, args.out, psi=args.psi, cutoff=args.cutoff,
                            c=conditioning(args, G.c_dim, 1, G), noise_mode=args.noise_mode, batch_size=args.batch)
    print(f"wrote {path}")
    return 0
