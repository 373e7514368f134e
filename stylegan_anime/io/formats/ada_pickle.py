"""stylegan2-ada-pytorch pickles: a dict with ``G``, ``D``, ``G_ema`` (and training extras)
whose networks are ``torch_utils.persistence`` objects.

Each object pickles as ``_reconstruct_persistent_obj(meta)`` with the module's source
text, class name and instance state; we read only the state: ``_parameters``,
``_buffers`` and ``_modules`` (recursively) give a state dict whose names are ours,
``_init_kwargs`` gives the config. The embedded source is never executed.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from ...errors import UserError, shown
from ...networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from ...networks.config import build_config
from ...networks.validation import build_within, check_dense, check_shapes, shapes_of
from .native import Networks
from .safe_pickle import PersistentStub

RUNTIME = {"channels_last", "fp16_channels_last", "freeze_layers", "num_fp16_res", "fused_modconv_default"}
FIXED: dict[str, tuple] = {"activation": ("lrelu",), "use_noise": (True,), "kernel_size": (3,),
                           "fmap_decay": (1, 1.0)}


def sniff(head: bytes) -> bool:
    return head[:1] == b"\x80" and b"torch_utils.persistence" in head


def is_ada_dict(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("G_ema"), PersistentStub)


MAX_DEPTH = 16  # module trees and kwargs of StyleGAN2 are 4-5 levels deep


def state_dict_of(obj: PersistentStub, what: str, prefix: str = "", depth: int = 0) -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of a persistent module tree, with torch's dotted names,
    as stored (no copy: dtypes and shapes are checked before anything is converted)."""
    if depth > MAX_DEPTH:
        raise UserError(f"{what}: the module tree is nested deeper than {MAX_DEPTH} levels ({prefix[:80]}...)")
    st = obj.state
    if not isinstance(st, dict):
        raise UserError(f"{what}: the network object {prefix or 'at the top'} has no state")
    skip = set(st.get("_non_persistent_buffers_set") or ())
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in _mapping(st.get(group), what, prefix + group).items():
            if value is None or name in skip:
                continue
            if not isinstance(value, torch.Tensor):
                raise UserError(f"{what}: {prefix}{name} is a {type(value).__name__}, not a tensor")
            if not value.is_floating_point():
                raise UserError(f"{what}: {prefix}{name} is a {value.dtype} tensor, not floating point")
            check_dense(value, f"{prefix}{name}", what)
            out[prefix + str(name)] = value.detach()
    for name, child in _mapping(st.get("_modules"), what, prefix + "_modules").items():
        if child is None:
            continue
        if not isinstance(child, PersistentStub):
            raise UserError(f"{what}: submodule {prefix}{name} is not a stylegan2-ada-pytorch network object")
        out.update(state_dict_of(child, what, f"{prefix}{name}.", depth + 1))
    return out


def _mapping(value: Any, what: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{what}: {where} is a {type(value).__name__}, not a mapping")
    return value


def _split(kwargs: dict, what: str, fields: dict[str, str], extras: dict[str, str], depth: int = 0) -> dict[str, Any]:
    """Flatten nested kwargs; known names → our field names, architecture-changing values refused."""
    if depth > MAX_DEPTH:
        raise UserError(f"{what}: the network's keyword arguments are nested deeper than {MAX_DEPTH} levels")
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        key = str(key)[:200]
        if isinstance(value, dict):
            out.update(_split({f"{key}.{k}": v for k, v in value.items()}, what, fields, extras, depth + 1))
            continue
        short = key.rsplit(".", 1)[-1]
        if key in fields:
            out[fields[key]] = value
        elif short in FIXED:
            if not isinstance(value, (str, int, float, bool)) or value not in FIXED[short]:
                raise UserError(f"{what}: setting {key}={shown(value)} changes the architecture in a way "
                                f"this toolkit's StyleGAN2 does not support")
        elif short not in RUNTIME:
            extras[key] = shown(value)
    return out


G_FIELDS = {"z_dim": "z_dim", "c_dim": "c_dim", "w_dim": "w_dim", "img_resolution": "img_resolution",
            "img_channels": "img_channels", "mapping_kwargs.num_layers": "mapping_layers",
            "mapping_kwargs.lr_multiplier": "mapping_lr_multiplier", "mapping_kwargs.w_avg_beta": "w_avg_beta",
            "mapping_kwargs.embed_features": "_embed", "mapping_kwargs.layer_features": "_layer",
            "synthesis_kwargs.channel_base": "channel_base", "synthesis_kwargs.channel_max": "channel_max",
            "synthesis_kwargs.conv_clamp": "conv_clamp", "synthesis_kwargs.architecture": "architecture",
            "synthesis_kwargs.resample_filter": "resample_filter"}
D_FIELDS = {"c_dim": "c_dim", "img_resolution": "img_resolution", "img_channels": "img_channels",
            "architecture": "architecture", "channel_base": "channel_base", "channel_max": "channel_max",
            "conv_clamp": "conv_clamp", "cmap_dim": "cmap_dim", "block_kwargs.resample_filter": "resample_filter",
            "mapping_kwargs.num_layers": "mapping_layers", "mapping_kwargs.lr_multiplier": "mapping_lr_multiplier",
            "mapping_kwargs.embed_features": "_embed", "mapping_kwargs.layer_features": "_layer",
            "epilogue_kwargs.mbstd_group_size": "mbstd_group_size",
            "epilogue_kwargs.mbstd_num_channels": "mbstd_num_channels"}


def _config(obj: PersistentStub, kind: type, fields: dict[str, str], what: str, extras: dict[str, str]):
    kwargs = obj.state.get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise UserError(f"{what}: the {obj.class_name} object has no _init_kwargs")
    values = _split(dict(kwargs), what, fields, extras)
    width = values.get("cmap_dim") if kind is DiscriminatorConfig else values.get("w_dim", 512)
    for private in ("_embed", "_layer"):
        v = values.pop(private, None)
        if v is not None and width is not None and v != width:
            raise UserError(f"{what}: a mapping network {shown(v)} features wide (not {shown(width)}) "
                            f"is not supported")
    if kind is GeneratorConfig and values.get("w_avg_beta", 0.995) is None:
        values["w_avg_beta"] = 1.0
    if kind is DiscriminatorConfig and values.get("mbstd_group_size", 4) is None:
        values["mbstd_group_size"] = 0
    values = {k: v for k, v in values.items() if v is not None or k in ("conv_clamp", "cmap_dim")}
    return build_config(kind, {**values, "extra": dict(extras)}, what)


def _build(obj: PersistentStub, role: str, what: str, extras: dict[str, str]):
    is_g = role.startswith("G")
    expected_name = "Generator" if is_g else "Discriminator"
    if obj.class_name != expected_name:
        raise UserError(f"{what}: {role} is a {str(obj.class_name)[:80]}, expected a stylegan2-ada-pytorch "
                        f"{expected_name}")
    own: dict[str, str] = {}
    cfg = _config(obj, GeneratorConfig if is_g else DiscriminatorConfig, G_FIELDS if is_g else D_FIELDS, what, own)
    extras.update(own)
    net_cls = Generator if is_g else Discriminator
    state = {k: v for k, v in state_dict_of(obj, what).items() if not k.endswith("resample_filter")}
    net = build_within(net_cls, cfg, sum(v.numel() for v in state.values()), what)
    expected = shapes_of(net)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        name = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0][:80]}"
        raise UserError(f"{what}: {role}'s tensors do not fit a StyleGAN2 {expected_name.lower()} ({name}; "
                        f"another architecture, e.g. StyleGAN3?)")
    check_shapes(expected, {k: tuple(v.shape) for k, v in state.items()}, role, what)
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return net


def networks_from_ada(data: dict, path: Path, device) -> Networks:
    what = path.name
    extras: dict[str, str] = {}
    nets: dict[str, torch.nn.Module] = {}
    for role in ("G_ema", "G", "D"):
        obj = data.get(role)
        if obj is None:
            continue
        if not isinstance(obj, PersistentStub):
            raise UserError(f"{what}: {role} is a {type(obj).__name__}, not a stylegan2-ada-pytorch network")
        nets[role] = _build(obj, role, what, extras).to(device).eval().requires_grad_(False)
    if extras:
        warnings.warn(f"{what}: kept unknown settings in the config's extra: {', '.join(sorted(extras))}",
                      stacklevel=3)
    meta = {"source_format": "stylegan2-ada-pytorch-pickle", "source_file": what}
    return Networks(G_ema=nets["G_ema"], G=nets.get("G"), D=nets.get("D"), meta=meta)
