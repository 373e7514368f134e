"""``load`` and ``save``: the one entry point from a weights source to networks."""
from __future__ import annotations

from pathlib import Path

import torch

from . import formats, hub
from ..errors import UserError
from .formats.native import Networks
from .formats.native import save as _save_native
from .formats.native import sidecar_path
from ..networks import Generator


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) → CUDA if present, else CPU; otherwise the named device, checked."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}: use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but this machine has no CUDA GPU")
    return dev


def resolve_source(source: str | Path) -> Path:
    """A path, a registry name or an http(s) URL → a local file path (URLs download once into the cache)."""
    text = str(source)
    if hub.is_url(text):
        return hub.fetch(text)
    path = Path(source)
    if path.exists():
        return path
    if "/" in text or text.endswith((".pkl", ".pt", ".safetensors")):
        raise UserError(f"no such file: {text}")
    return hub.fetch(text)


def load_networks(source: str | Path, device: str | torch.device | None = "cpu",
                  allow_nonfinite: bool = False) -> Networks:
    """Every network a weights source holds (generator, and raw G / D where present), in eval mode.
    Every reader checks the file's config and tensor shapes before it builds a network; NaN/Inf
    weights are refused unless ``allow_nonfinite`` (forensics on a diverged model). A cached download
    goes through ``hub.checked_load``: it is pinned once it has loaded."""
    dev = resolve_device(device)
    return hub.checked_load(resolve_source(source), lambda path: formats.read(path, dev, allow_nonfinite=allow_nonfinite))


def load(source: str | Path, device: str | torch.device | None = "cpu", allow_nonfinite: bool = False) -> Generator:
    """Registry name, path or URL → the inference Generator in eval mode on ``device``."""
    return load_networks(source, device, allow_nonfinite).G_ema


def output_files(path: str | Path) -> list[Path]:
    """The files ``save(nets, path)`` writes: the weights and the JSON config beside them."""
    return [Path(path), sidecar_path(Path(path))]


def save(nets: Networks | Generator, path: str | Path) -> Path:
    """Write our safetensors format (+ JSON config beside it), atomically."""
    return _save_native(nets, path)
