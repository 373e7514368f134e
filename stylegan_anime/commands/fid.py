"""`stylegan-anime fid`: FID between a generator's samples and a data set, in a chosen feature space."""
from __future__ import annotations

import argparse

from ..io import loading
from ..metrics import data_labels, dataset_stats, generator_fid, load_features
from .args import add_network_options, float_arg, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("fid", help="FID between a network's samples and a data set",
                       description="FID of --num samples (seeds 0..num-1) against the data set. --features is "
                       "a TorchScript Inception (inception-2015-12-05.pt) or a classifier written by "
                       "`stylegan-anime classifier`; values are comparable only within one feature network.")
    add_network_options(p)
    p.add_argument("--data", required=True, help="data set folder or .zip")
    p.add_argument("--features", default=None, metavar="PATH", help="feature network file (required)")
    p.add_argument("--num", type=int_arg("--num", 2), default=1000, help="generated samples (default 1000)")
    p.add_argument("--max-data", type=int_arg("--max-data", 2), default=None, help="use at most N data images")
    p.add_argument("--psi", type=float_arg("--psi"), default=1.0, help="truncation psi (1 = none, as for FID)")
    p.add_argument("--batch", type=int_arg("--batch", 1), default=16)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = loading.resolve_device(args.device)
    extractor = load_features(args.features, device)  # first: a missing network is the likeliest mistake
    G = loading.load(args.network, device=device, allow_nonfinite=args.allow_nonfinite)
    real = dataset_stats(args.data, extractor, max_items=args.max_data)
    labels = data_labels(args.data) if G.c_dim else None
    value = generator_fid(G, extractor, real, num=args.num, psi=args.psi, batch=args.batch, labels=labels)
    print(f"FID ({args.num} samples vs {real.count} images, {extractor.feature_dim} features): {value:.10g}")
    return 0
