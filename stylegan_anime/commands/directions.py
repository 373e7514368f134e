"""`stylegan-anime directions`: axes in w space, regressed from classifier-labelled samples (TL-GAN) or
factorised from the style weights (SeFa)."""
from __future__ import annotations

import argparse

from ..editing.directions import MIN_R2, WEAK_R2, drop_weak, find_directions, save_directions, weak_directions
from ..editing.sefa import sefa_directions, style_weights
from ..errors import UserError
from ..io import loading
from ..metrics import load_classifier
from ..io.outputs import check_outputs
from .args import add_force_option, add_network_options, float_arg, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("directions", help="fit attribute directions in w space",
                       description="regression: sample seeds, label the images with an attribute classifier and "
                                   "fit one direction per label (each reported with its held-out R²); sefa: the "
                                   "leading eigenvectors of the chosen layers' style weights (no classifier, no "
                                   "images). Written as .npz for `edit`.")
    add_network_options(p)
    p.add_argument("--method", choices=["regression", "sefa"], default="regression")
    p.add_argument("--classifier", default=None, help="regression: attribute classifier .safetensors "
                                                      "(`classifier` command)")
    p.add_argument("--samples", type=int_arg("--samples", 2), default=2000,
                   help="regression: seeds to sample (10 or more: the fit quality is measured on held-out fifths)")
    p.add_argument("--seed", type=int_arg("--seed", 0), default=0, help="regression: first seed")
    p.add_argument("--min-r2", type=float_arg("--min-r2"), default=MIN_R2,
                   help=f"regression: refuse directions whose label w predicts with held-out R² below this "
                        f"(default {MIN_R2}; warned below {WEAK_R2})")
    p.add_argument("--layers", default="all", help="sefa: ws whose style weights to factorise and that edits "
                                                   "move: all, coarse, middle, fine, 0-3, ...")
    p.add_argument("--count", type=int_arg("--count", 1), default=5, help="sefa: directions to keep")
    p.add_argument("-o", "--out", required=True, help="output .npz")
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.out.endswith(".npz"):
        raise UserError(f"directions are saved as .npz, got {args.out}")
    check_outputs([args.out], force=args.force)
    if args.method == "regression" and args.classifier is None:
        raise UserError("--method regression needs --classifier (or use --method sefa, which needs none)")
    if args.method == "sefa" and args.classifier is not None:
        raise UserError("--method sefa uses no classifier: drop --classifier")
    device = loading.resolve_device(args.device)
    G = loading.load(args.network, device=device, allow_nonfinite=args.allow_nonfinite)
    if args.method == "sefa":
        dirs = sefa_directions(G, args.layers, count=args.count)
        # The eigenvalues of AᵀA sum to |A|²: each one's share is how much of all style change it carries.
        total = float((style_weights(G, dirs.layers) ** 2).sum())
        for n, e in zip(dirs.names, dirs.eigenvalues.tolist()):
            print(f"{n}: eigenvalue {e:.3g} ({100 * e / total:.1f}% of the sum over all {G.w_dim})")
    else:
        dirs = find_directions(G, load_classifier(args.classifier, device=device), samples=args.samples,
                               seed=args.seed, progress=True)
        for n, r in zip(dirs.names, dirs.r2.tolist()):
            print(f"{n}: held-out R² {r:.2f}")
        dirs, refused = drop_weak(dirs, args.min_r2)
        if refused:
            print(f"refused (held-out R² < {args.min_r2}): {', '.join(refused)}")
        weak = weak_directions(dirs)
        if weak:
            print(f"warning: weak fits (held-out R² < {WEAK_R2}), edits along them may change little: "
                  f"{', '.join(weak)}")
    print(f"wrote {save_directions(dirs, args.out)} ({len(dirs.names)} {args.method} directions)")
    return 0
