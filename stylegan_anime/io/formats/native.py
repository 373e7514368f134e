"""Our own weights format: safetensors tensors + the config dataclasses as JSON.

One file ``model.safetensors`` holds the tensors of up to three networks under
the prefixes ``G_ema.`` (the generator used for inference), ``G.`` (the raw,
non-averaged generator) and ``D.``; its metadata holds each network's config as
JSON. The same configs are written beside it as ``model.json`` for people to
read; the metadata is what loading trusts, the sidecar is the fallback for
files written by other tools.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ...errors import UserError
from ...networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

FORMAT = "stylegan-anime/1"
MAGIC_PREFIX = b"{"  # safetensors: 8-byte little-endian header size, then the JSON header

ROLES = {"G_ema": GeneratorConfig, "G": GeneratorConfig, "D": DiscriminatorConfig}


@dataclass
class Networks:
    """What a weights file holds: the inference generator and, where present, the raw
    generator and the discriminator. ``meta`` is free-form provenance (strings)."""

    G_ema: Generator
    G: Generator | None = None
    D: Discriminator | None = None
    meta: dict[str, str] = field(default_factory=dict)


def is_native(head: bytes) -> bool:
    """True if the file's first bytes look like a safetensors header."""
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return 2 <= size < 100_000_000 and head[8:9] == MAGIC_PREFIX


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save(nets: Networks | Generator, path: str | Path, write_sidecar: bool = True) -> Path:
    """Write networks to ``path`` (.safetensors) atomically, and the JSON sidecar beside it."""
    if isinstance(nets, Generator):
        nets = Networks(G_ema=nets)
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    configs: dict[str, dict] = {}
    for role in ROLES:
        net = getattr(nets, role)
        if net is None:
            continue
        configs[role] = net.cfg.to_dict()
        for k, v in net.state_dict().items():
            tensors[f"{role}.{k}"] = v.detach().to("cpu").contiguous()
    meta = {"format": FORMAT, "configs": json.dumps(configs, sort_keys=True), **{f"meta.{k}": v for k, v in
                                                                                nets.meta.items()}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    if write_sidecar:
        with atomic_path(sidecar_path(path)) as tmp:
            tmp.write_text(json.dumps({"format": FORMAT, "configs": configs, "meta": nets.meta}, indent=2,
                                      sort_keys=True) + "\n")
    return path


def _read_configs(path: Path, metadata: dict[str, str] | None) -> tuple[dict, dict[str, str]]:
    if metadata and "configs" in metadata:
        meta = {k[5:]: v for k, v in metadata.items() if k.startswith("meta.")}
        return json.loads(metadata["configs"]), meta
    side = sidecar_path(path)
    if not side.exists():
        raise UserError(f"{path.name} is a safetensors file without a stylegan-anime config "
                        f"(no metadata and no {side.name} beside it)")
    d = json.loads(side.read_text())
    return d["configs"], d.get("meta", {})


def load(path: str | Path, device: torch.device | str = "cpu") -> Networks:
    """Read a file written by ``save``; networks come back in eval mode on ``device``."""
    path = Path(path)
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path.name} is not a readable safetensors file ({str(e).splitlines()[0]})") from None
    configs, meta = _read_configs(path, metadata)
    nets: dict[str, torch.nn.Module] = {}
    for role, cfg_dict in configs.items():
        if role not in ROLES:
            raise UserError(f"{path.name} holds an unknown network {role!r}")
        cfg = ROLES[role].from_dict(cfg_dict)
        net = (Generator if ROLES[role] is GeneratorConfig else Discriminator)(cfg)
        state = {k[len(role) + 1:]: v for k, v in tensors.items() if k.startswith(role + ".")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
            raise UserError(f"{path.name}: the {role} tensors do not fit its config ({what})")
        nets[role] = net.to(device).eval().requires_grad_(False)
    if "G_ema" not in nets:
        raise UserError(f"{path.name} holds no generator")
    return Networks(G_ema=nets["G_ema"], G=nets.get("G"), D=nets.get("D"), meta=meta)
