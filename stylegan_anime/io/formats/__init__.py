"""Weights file formats, detected from the content, not the file name.

Each reader is registered in ``READERS`` as (name, sniff(head) -> bool, load(path, device) -> Networks);
``read`` tries them in order on the file's first bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import torch

from ...errors import UserError
from . import ada_pickle, native, python_pickle, rosinality, tf_pickle
from .native import Networks
from ...networks.validation import check_finite


class Reader(NamedTuple):
    name: str
    sniff: Callable[[bytes], bool]
    load: Callable[[Path, torch.device | str], Networks]


READERS: list[Reader] = [
    Reader("stylegan-anime safetensors", native.is_native, native.load),
    Reader("NVlabs TensorFlow pickle", tf_pickle.sniff, python_pickle.load),
    Reader("stylegan2-ada-pytorch pickle", ada_pickle.sniff, python_pickle.load),
    Reader("rosinality torch checkpoint", rosinality.sniff, rosinality.load),
    Reader("Python pickle", python_pickle.sniff, python_pickle.load),
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
    raise UserError(f"{path.name} ({describe_head(head)}) is not a weights file this toolkit reads "
                    f"(expected one of: {names})")


def describe_head(head: bytes) -> str:
    """What a file that no reader takes looks like, for the error message."""
    if head[:4] == b"PK\x03\x04":
        return "a zip file"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON/text file"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff":
        return "an image"
    if head.lstrip()[:1] == b"<":
        return "an HTML/XML page"
    return "unknown content"


def read(path: str | Path, device: torch.device | str = "cpu", allow_nonfinite: bool = False) -> Networks:
    """The networks a weights file holds. NaN/Inf weights are refused naming the tensor (they load
    silently and make black images) unless ``allow_nonfinite`` (for inspecting a broken model)."""
    path = Path(path)
    nets = detect(path).load(path, device)
    if not allow_nonfinite:
        for role in ("G_ema", "G", "D"):
            net = getattr(nets, role)
            if net is not None:
                check_finite(net.state_dict(), role, path.name)
    return nets


__all__ = ["Networks", "READERS", "describe_head", "Reader", "detect", "read"]
