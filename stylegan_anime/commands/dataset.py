"""`stylegan-anime dataset`: build a training data set (folder or .zip) from images, or draw a synthetic one."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..data.writer import is_zip
from ..io.outputs import check_outputs
from .args import add_force_option, int_arg, resolution_arg


def add_parser(sub) -> None:
    p = sub.add_parser("dataset", help="build a training data set",
                       description="SRC OUT: a folder or zip of images → a square RGB data set. "
                       "--synthetic N OUT: N labelled synthetic anime portraits. OUT is a folder or a .zip.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="SRC OUT, or only OUT with --synthetic")
    p.add_argument("--resolution", type=resolution_arg("--resolution"), required=True,
                   help="side of the square images: a power of two, as training needs")
    p.add_argument("--synthetic", type=int_arg("--synthetic", 1), default=None, metavar="N",
                   help="draw N synthetic portraits instead of reading SRC")
    p.add_argument("--seed", type=int_arg("--seed", 0), default=0, help="first seed for --synthetic")
    p.add_argument("--workers", type=int_arg("--workers", 1), default=1,
                   help="processes drawing --synthetic portraits (same output for any number)")
    p.add_argument("--crop", choices=["center", "pad"], default="center",
                   help="non-square images: crop the centre square, or pad to a square (white)")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="dataset.json (labels) or .csv (file,tags); default: SRC's own dataset.json if any")
    p.add_argument("--min-size", type=int_arg("--min-size", 1), default=None,
                   help="skip images whose shorter side is below this (default: resolution / 2)")
    p.add_argument("--max-pixels", type=int_arg("--max-pixels", 16), default=None,
                   help="skip images with more pixels than this, checked from the header before decoding "
                        "(default: 8 × resolution², at least 4096² = 16.8 MP)")
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.synthetic is not None and len(args.paths) != 1:
        raise UserError("with --synthetic give only OUT, e.g. dataset --synthetic 1000 out.zip --resolution 64")
    if args.synthetic is None and len(args.paths) != 2:
        raise UserError("give SRC and OUT, e.g. dataset photos/ out.zip --resolution 256")
    out = args.paths[-1]
    check_outputs([out], force=args.force, folder=not is_zip(out))
    if args.synthetic is not None:
        from ..data.synthetic import write_synthetic_dataset
        write_synthetic_dataset(out, args.synthetic, args.resolution, seed=args.seed, workers=args.workers)
        print(f"wrote {args.synthetic} portraits at {args.resolution}² to {out}")
        return 0
    from ..data.build import BuildOptions, build_dataset
    options = BuildOptions(args.resolution, crop=args.crop, min_size=args.min_size, max_pixels=args.max_pixels)
    report = build_dataset(args.paths[0], out, options, labels=args.labels)
    print(f"wrote {out}: {report.summary()}")
    return 0
