"""Weights file formats, detected from the content, not the file name.

Each reader is registered in ``READERS`` as (name, sniff(head) -> bool, load(path, device) -> Networks);
``read`` tries them in order on the file's first bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import torch

from ..errors import UserError
from . import native
from .native import Networks


class Reader(NamedTuple):
    name: str
    sniff: Callable[[bytes], bool]
    load: Callable[[Path, torch.device | str], Networks]


READERS: list[Reader] = [
    Reader("stylegan-anime safetensors", native.is_native, native.load),
]

HEAD_BYTES = 4096


def detect(path: Path) -> Reader:
    """The reader for ``path``, from its first bytes; UserError naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a weights file") from None
    if not head:
        raise UserError(f"{path.name} is empty")
    for reader in READERS:
        if reader.sniff(head):
            return reader
    names = ", ".join(r.name for r in READERS)
    raise UserError(f"{path.name} is not a weights file this toolkit reads (expected one of: {names})")


def read(path: str | Path, device: torch.device | str = "cpu") -> Networks:
    path = Path(path)
    return detect(path).load(path, device)


__all__ = ["Networks", "READERS", "Reader", "detect", "read"]
