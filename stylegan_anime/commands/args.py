"""Argument types and options shared by several commands."""
from __future__ import annotations

import argparse
import math


def float_arg(name: str):
    """A finite number (nan and inf are refused: no option means anything by them)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text!r}")
        return value
    return parse


def int_arg(name: str, minimum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}, got {value}")
        return value
    return parse


def resolution_arg(name: str):
    """A power of two >= 4: what the networks (and so data sets for training) are made at."""
    whole = int_arg(name)

    def parse(text: str) -> int:
        value = whole(text)
        if value < 4 or value & (value - 1):
            raise argparse.ArgumentTypeError(f"{name} must be a power of two (4, 8, ..., 1024), got {value}")
        return value
    return parse


def add_force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace outputs that already exist (default: refuse)")


def add_network_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="default", help="registry name, weights file or URL (default: default)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    add_nonfinite_option(p)


def add_nonfinite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="load weights holding NaN/Inf anyway (refused by default: they make black images); "
                        "for inspecting a diverged or corrupt model")


def add_generation_options(p: argparse.ArgumentParser, tf_seed: bool = False) -> None:
    """``tf_seed``: offer --noise-mode tf-seed (commands that draw one image per seed)."""
    p.add_argument("--psi", type=float_arg("--psi"), default=1.0, help="truncation psi: 1 = none, 0 = the average "
                   "w; any finite number (negative ones too, e.g. --psi -0.5)")
    p.add_argument("--cutoff", type=int_arg("--cutoff", 0), default=None, help="truncate only the first N ws")
    if tf_seed:
        p.add_argument("--noise-mode", choices=["const", "random", "none", "tf-seed"], default="const",
                       help="const: the network's stored noise; tf-seed: every noise input drawn from the seed "
                            "after z, as the official TF run_generator.py did (same images as the TF release)")
    else:
        p.add_argument("--noise-mode", choices=["const", "random", "none"], default="const")
    p.add_argument("--class", dest="class_idx", type=int_arg("--class", 0), default=None,
                   help="class index for conditional networks")
    p.add_argument("--labels", default=None, help="comma-separated label vector for conditional networks")
    p.add_argument("--tags", default=None, help='tag prompt for conditional networks, e.g. "blonde hair, blue '
                   'eyes"; unmentioned hair/eye colours etc. are drawn from each seed')
