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
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from ..atomic import atomic_path
from ...errors import UserError
from ...networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from ...networks.validation import build_within, check_shapes, shapes_of

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


MAX_JSON_BYTES = 1 << 20  # a config is a few KB; the sidecar is read only up to this


def _parse_configs(text: str, where: str, what: str) -> dict:
    try:
        configs = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what}: the configs in {where} are not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise UserError(f"{what}: the configs in {where} are nested too deeply to be a config") from None
    return _check_configs(configs, where, what)


def _check_configs(configs, where: str, what: str) -> dict:
    if not isinstance(configs, dict) or not configs:
        raise UserError(f"{what}: the configs in {where} must be a JSON object of networks, got "
                        f"{type(configs).__name__ if configs else 'nothing'}")
    for role, cfg in configs.items():
        if role not in ROLES:
            raise UserError(f"{what} holds an unknown network {str(role)[:40]!r}")
        if not isinstance(cfg, dict):
            raise UserError(f"{what}: the {role} config in {where} must be a JSON object, got {type(cfg).__name__}")
    return configs


def _read_configs(path: Path, metadata: dict[str, str] | None) -> tuple[dict, dict[str, str]]:
    if metadata and "configs" in metadata:
        meta = {k[5:]: v for k, v in metadata.items() if k.startswith("meta.")}
        return _parse_configs(metadata["configs"], "its metadata", path.name), meta
    side = sidecar_path(path)
    if not side.is_file():
        raise UserError(f"{path.name} is a safetensors file without a stylegan-anime config "
                        f"(no metadata and no {side.name} beside it)")
    with open(side, "rb") as f:
        raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise UserError(f"{side.name} is larger than {MAX_JSON_BYTES} bytes: not a config sidecar")
    d = _parse_configs_doc(raw, side.name, path.name)
    meta = d.get("meta", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        meta = {}
    return _check_configs(d["configs"], side.name, path.name), {str(k): v for k, v in meta.items()}


def _parse_configs_doc(raw: bytes, where: str, what: str) -> dict:
    """The sidecar document: an object with ``configs``."""
    try:
        d = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        raise UserError(f"{what}: {where} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise UserError(f"{what}: {where} is nested too deeply to be a config") from None
    if not isinstance(d, dict) or "configs" not in d:
        raise UserError(f"{what}: {where} has no \"configs\" object (not a stylegan-anime sidecar)")
    return d


FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


def _header(path: Path) -> tuple[dict[str, str] | None, dict[str, tuple[int, ...]], dict[str, str]]:
    """(metadata, {name: shape}, {name: dtype}) from the header alone: no tensor is read."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
            shapes, dtypes = {}, {}
            for k in f.keys():
                sl = f.get_slice(k)
                shapes[k], dtypes[k] = tuple(sl.get_shape()), sl.get_dtype()
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path.name} is not a readable safetensors file ({str(e).splitlines()[0][:160]})") from None
    return metadata, shapes, dtypes


def _plan(path: Path, configs: dict, shapes: dict, dtypes: dict) -> dict[str, torch.nn.Module]:
    """Each role's network (random weights), built after its config was checked and found to
    describe about as many weights as the header declares, and its tensors' names, shapes and
    dtypes were found to fit it."""
    if "G_ema" not in configs:
        raise UserError(f"{path.name} holds no generator")
    # Training snapshots also hold opt./extra./rng. tensors: not read here, so not checked.
    unknown = [k for k in shapes if k.split(".", 1)[0] in ROLES and k.split(".", 1)[0] not in configs]
    if unknown:
        raise UserError(f"{path.name}: tensor {unknown[0][:80]} belongs to no network in its configs")
    plan = {}
    for role, cfg_dict in configs.items():
        cfg = ROLES[role].from_dict(cfg_dict, f"{path.name} ({role})")
        net_cls = Generator if ROLES[role] is GeneratorConfig else Discriminator
        role_shapes = {k[len(role) + 1:]: v for k, v in shapes.items() if k.startswith(role + ".")}
        for k in role_shapes:
            if dtypes[f"{role}.{k}"] not in FLOAT_DTYPES:
                raise UserError(f"{path.name}: {role} tensor {k} is {dtypes[f'{role}.{k}']}, not floating point")
        held = sum(math.prod(v) for v in role_shapes.values())
        net = build_within(net_cls, cfg, held, path.name)
        check_shapes(shapes_of(net), role_shapes, role, path.name)
        plan[role] = net
    return plan


def load(path: str | Path, device: torch.device | str = "cpu") -> Networks:
    """Read a file written by ``save``; networks come back in eval mode on ``device``.

    The configs and the header's tensor shapes are checked first; tensors are read and networks
    built only once they fit, so memory stays about the size of the model the file holds."""
    path = Path(path)
    metadata, shapes, dtypes = _header(path)
    configs, meta = _read_configs(path, metadata)
    plan = _plan(path, configs, shapes, dtypes)
    nets: dict[str, torch.nn.Module] = {}
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f, torch.no_grad():
            for role, net in plan.items():
                # Tensor by tensor into the built network: peak memory is the model plus one tensor.
                for name, dst in net.state_dict().items():
                    dst.copy_(f.get_tensor(f"{role}.{name}"))
                nets[role] = net.to(device).eval().requires_grad_(False)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path.name} could not be read ({str(e).splitlines()[0][:160]})") from None
    return Networks(G_ema=nets["G_ema"], G=nets.get("G"), D=nets.get("D"), meta=meta)
