"""`stylegan-anime new OUT`: a network with fresh random weights (for trying the tools
before any trained model is at hand, and as the start of training from scratch)."""
from __future__ import annotations

import argparse

import torch

from ..io import loading
from ..io.formats.native import Networks
from ..networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from ..io.outputs import check_outputs
from .args import add_force_option, int_arg, resolution_arg


def add_parser(sub) -> None:
    p = sub.add_parser("new", help="write a randomly initialised network")
    p.add_argument("out", help="output .safetensors")
    p.add_argument("--resolution", type=resolution_arg("--resolution"), default=64)
    p.add_argument("--z-dim", type=int_arg("--z-dim", 1), default=512)
    p.add_argument("--w-dim", type=int_arg("--w-dim", 1), default=512)
    p.add_argument("--c-dim", type=int_arg("--c-dim", 0), default=0)
    p.add_argument("--channel-base", type=int_arg("--channel-base", 1), default=32768)
    p.add_argument("--channel-max", type=int_arg("--channel-max", 1), default=512)
    p.add_argument("--with-discriminator", action="store_true")
    p.add_argument("--seed", type=int_arg("--seed", 0), default=0)
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(loading.output_files(args.out), force=args.force)
    torch.manual_seed(args.seed)
    cfg = GeneratorConfig(img_resolution=args.resolution, z_dim=args.z_dim, w_dim=args.w_dim, c_dim=args.c_dim,
                          channel_base=args.channel_base, channel_max=args.channel_max)
    D = None
    if args.with_discriminator:
        D = Discriminator(DiscriminatorConfig(img_resolution=args.resolution, c_dim=args.c_dim,
                                              channel_base=args.channel_base, channel_max=args.channel_max))
    path = loading.save(Networks(G_ema=Generator(cfg), D=D, meta={"origin": "random init"}), args.out)
    print(f"wrote {path}")
    return 0
