"""`stylegan-anime convert IN OUT`: any weights file we read → our safetensors format."""
from __future__ import annotations

import argparse

from ..io import loading
from ..io.outputs import check_outputs
from .args import add_force_option, add_nonfinite_option


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert weights to stylegan-anime safetensors")
    p.add_argument("src", help="weights file, registry name or URL")
    p.add_argument("dst", help="output .safetensors (a .json config is written beside it)")
    add_force_option(p)
    add_nonfinite_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(loading.output_files(args.dst), force=args.force)
    nets = loading.load_networks(args.src, allow_nonfinite=args.allow_nonfinite)
    path = loading.save(nets, args.dst)
    print(f"wrote {path}")
    return 0
