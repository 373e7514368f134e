"""`stylegan-anime directions`: attribute axes in w space (TL-GAN), fitted from classifier-labelled samples."""
from __future__ import annotations

import argparse

from ..io import loading
from ..editing.directions import find_directions, save_directions
from ..metrics import load_classifier
from .args import add_network_options, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("directions", help="fit attribute directions in w space",
                       description="Sample seeds, label the images with an attribute classifier and fit one "
                                   "direction per label in w space (written as .npz for `edit`).")
    add_network_options(p)
    p.add_argument("--classifier", required=True, help="attribute classifier .safetensors (`classifier` command)")
    p.add_argument("--samples", type=int_arg("--samples", 2), default=2000, help="seeds to sample and label")
    p.add_argument("--seed", type=int_arg("--seed", 0), default=0, help="first seed")
    p.add_argument("-o", "--out", required=True, help="output .npz")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = loading.resolve_device(args.device)
    G = loading.load(args.network, device=device, allow_nonfinite=args.allow_nonfinite)
    clf = load_classifier(args.classifier, device=device)
    dirs = find_directions(G, clf, samples=args.samples, seed=args.seed, progress=True)
    print(f"wrote {save_directions(dirs, args.out)} ({len(dirs.names)} directions)")
    return 0
