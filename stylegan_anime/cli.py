"""``stylegan-anime <command>``: a thin layer over the Python API.

Each command lives in ``stylegan_anime/commands/<name>.py`` with ``add_parser(subparsers)``
(which sets ``run`` as the parser default) and ``run(args) -> int``; it is found by name.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
from typing import Sequence

from . import commands
from .ops import native_build
from .errors import UserError
from .networks import winograd


def command_modules() -> list[str]:
    """Every module in ``stylegan_anime.commands`` that defines ``add_parser``, in a stable order.

    Discovered rather than listed, so that adding a command is adding its module."""
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    return [n for n in names if hasattr(importlib.import_module(f"{commands.__name__}.{n}"), "add_parser")]


# argparse takes "-1.5" for a value but "-1e30" or "-inf" for an option (and then reports a
# missing argument): every spelling float() reads counts as a number here.
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, and negative numbers are values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stylegan-anime", description="StyleGAN2 toolkit for anime character generation")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in command_modules():
        importlib.import_module(f"stylegan_anime.commands.{name}").add_parser(sub)
    return parser


def environment_error() -> str | None:
    """The first bad value among the toolkit's environment switches ($STYLEGAN_ANIME_OPS,
    $STYLEGAN_ANIME_WINOGRAD), as one line; None when they are all fine."""
    for mode in (native_build.ops_mode, winograd.winograd_mode):
        try:
            mode()
        except ValueError as e:
            return str(e)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    bad_setting = environment_error()  # checked up front: deep in a forward it would be a traceback
    if bad_setting:
        print(f"stylegan-anime {args.command}: error: {bad_setting}", file=sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except UserError as e:
        print(f"stylegan-anime {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stylegan-anime {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
