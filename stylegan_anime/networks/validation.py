"""Typed ranges of the network configs, checked before anything is built from a file.

A weights file declares its architecture (our JSON, TF ``static_kwargs``, ada ``_init_kwargs``,
shapes of a rosinality state dict). Every value is checked here for its type (an int field
takes an int, not ``"64"``, ``64.0`` or ``True``) and for a range that covers every published
StyleGAN2 and then some, so that a hostile or corrupt file cannot make a reader build a
network of hundreds of GB, loop a million times or divide by zero. The tensors themselves are
compared with the configured shapes afterwards (``networks.shapes``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from ..errors import UserError, shown

# (min, max) of each int field; None: no such bound. Ranges are generous: the largest
# published StyleGAN2 (1024², 512 channels, 8 mapping layers) sits well inside.
INT_RANGES: dict[str, tuple[int, int]] = {
    "img_resolution": (4, 8192), "z_dim": (1, 8192), "w_dim": (1, 8192), "c_dim": (0, 100_000),
    "img_channels": (1, 16), "mapping_layers": (0, 64), "channel_base": (1, 1 << 24),
    "channel_max": (1, 8192), "num_fp16_res": (0, 16), "mbstd_group_size": (0, 4096),
    "mbstd_num_channels": (0, 64), "cmap_dim": (1, 8192),
}
BOOL_FIELDS = ("cond_aug",)  # GeneratorConfig: conditioning augmentation on the label embedding
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "mapping_lr_multiplier": (1e-6, 1e3), "w_avg_beta": (0.0, 1.0), "conv_clamp": (1e-6, 1e9),
}
MAX_FILTER_TAPS = 16
MAX_EXTRA = 256  # settings kept from other implementations; more is not a config but a payload


def _prefix(what: str) -> str:
    return f"{what}: " if what else ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_int(name: str, v: Any, what: str) -> None:
    if not _is_int(v):
        raise UserError(f"{_prefix(what)}config {name} must be a whole number, got {shown(v, 40)}")
    lo, hi = INT_RANGES[name]
    if not lo <= v <= hi:
        raise UserError(f"{_prefix(what)}config {name}={v} is outside {lo}..{hi}")


def _check_float(name: str, v: Any, what: str) -> None:
    if not _is_number(v) or not math.isfinite(v):
        raise UserError(f"{_prefix(what)}config {name} must be a finite number, got {shown(v, 40)}")
    lo, hi = FLOAT_RANGES[name]
    if not lo <= v <= hi:
        raise UserError(f"{_prefix(what)}config {name}={v} is outside {lo:g}..{hi:g}")


def _check_filter(v: Any, what: str) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= MAX_FILTER_TAPS:
        raise UserError(f"{_prefix(what)}config resample_filter must be a list of 1..{MAX_FILTER_TAPS} numbers")
    if not all(_is_number(x) and math.isfinite(x) for x in v) or sum(v) == 0 or min(v) < 0:
        raise UserError(f"{_prefix(what)}config resample_filter must hold finite non-negative numbers with a "
                        f"non-zero sum, got {', '.join(shown(x, 40) for x in v)}")
    return tuple(v)  # as given: a converted file must round-trip byte for byte


def _check_extra(v: Any, what: str) -> None:
    if not isinstance(v, dict) or len(v) > MAX_EXTRA or not all(
            isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise UserError(f"{_prefix(what)}config extra must be a mapping of at most {MAX_EXTRA} strings to strings")


def check_values(cls: type, values: dict[str, Any], what: str = "") -> dict[str, Any]:
    """The values for ``cls(**values)``, each checked for type and range; lists of filter taps
    become tuples. Raises a one-line UserError naming the first bad field."""
    if not isinstance(values, dict):
        raise UserError(f"{_prefix(what)}a {cls.__name__} must be a JSON object, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k)[:40] for k in values if k not in names)
    if unknown:
        raise UserError(f"{_prefix(what)}{cls.__name__} has no field(s) {', '.join(unknown[:5])}")
    out = dict(values)
    for name, v in values.items():
        if name in ("conv_clamp", "cmap_dim") and v is None:
            continue
        if name in INT_RANGES:
            _check_int(name, v, what)
        elif name in FLOAT_RANGES:
            _check_float(name, v, what)
        elif name == "resample_filter":
            out[name] = _check_filter(v, what)
        elif name == "extra":
            _check_extra(v, what)
        elif name in BOOL_FIELDS:
            if not isinstance(v, bool):
                raise UserError(f"{_prefix(what)}config {name} must be true or false, got {shown(v, 40)}")
        elif not isinstance(v, str):  # architecture, label_mode: the dataclass checks the value
            raise UserError(f"{_prefix(what)}config {name} must be a string, got {type(v).__name__}")
    return out


def check_config(cfg: Any, what: str = "") -> None:
    """Relations between fields: every resolution gets at least one channel. (num_fp16_res may
    exceed the resolutions: stylegan2-ada's default 4 is used at 16² too, meaning all of them.)"""
    if cfg.channel_base // cfg.img_resolution < 1:
        raise UserError(f"{_prefix(what)}config channel_base={cfg.channel_base} leaves no channels at "
                        f"{cfg.img_resolution}x{cfg.img_resolution} (it must be at least the resolution)")
    if type(cfg).__name__ == "GeneratorConfig" and cfg.mapping_layers < 1:
        raise UserError(f"{_prefix(what)}config mapping_layers must be at least 1 for a generator")


MAX_PARAMETERS = 1 << 30  # 4 GiB of float32: far above any StyleGAN2, far below a hostile config
SLACK = 1 << 16  # elements: what the estimate may leave out on a tiny network


def _generator_weights(cfg: Any) -> int:
    """The dominant weights of a generator (a lower bound, within ~10% of the truth for
    every architecture; ``tests/test_hostile_files.py`` checks both)."""
    c, w, res = cfg.channels, cfg.w_dim, cfg.img_resolution
    n = cfg.z_dim * w + max(cfg.mapping_layers - 1, 0) * w * w + cfg.c_dim * w
    n += c(4) * 16 + c(4) * c(4) * 9 + w * c(4) + 16
    r = 8
    while r <= res:
        n += c(r // 2) * c(r) * 9 + w * c(r // 2) + c(r) * c(r) * 9 + w * c(r) + 2 * r * r
        r *= 2
    return n + w * c(res) + c(res) * cfg.img_channels


def _discriminator_weights(cfg: Any) -> int:
    c, res = cfg.channels, cfg.img_resolution
    cmap = cfg.cmap_dim or c(4)
    n = cfg.img_channels * c(res) + (c(4) + cfg.mbstd_num_channels) * c(4) * 9 + c(4) * 16 * c(4)
    n += c(4) * (1 if not cfg.c_dim else cfg.c_dim if cfg.label_mode == "output" else cmap)
    if cfg.c_dim and cfg.label_mode == "project":
        n += cfg.c_dim * cmap + max(cfg.mapping_layers - 1, 0) * cmap * cmap
    r = res
    while r > 4:
        n += c(r) * c(r) * 9 + c(r) * c(r // 2) * 9
        r //= 2
    return n


def estimate_parameters(cfg: Any) -> int:
    """About how many weights a network of ``cfg`` holds, from the config alone (no allocation)."""
    if type(cfg).__name__ == "GeneratorConfig":
        return _generator_weights(cfg)
    return _discriminator_weights(cfg)


def build_within(net_cls: type, cfg: Any, held: int, what: str = "") -> torch.nn.Module:
    """``net_cls(cfg)``, built only if the config describes about as many weights as the file
    holds (``held`` elements): a few KB of file cannot make a reader allocate GBs. (The meta
    device would give exact shapes, but its first use imports torch._dynamo: seconds per run.)"""
    n = estimate_parameters(cfg)
    if n > MAX_PARAMETERS:
        raise UserError(f"{_prefix(what)}the config describes {n:,} parameters, more than the "
                        f"{MAX_PARAMETERS:,} this toolkit loads")
    if n > held + held // 4 + SLACK:
        raise UserError(f"{_prefix(what)}the config describes about {n:,} weights, but the file holds "
                        f"{held:,}: they do not fit")
    return net_cls(cfg)


def shapes_of(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def check_shapes(expected: dict[str, tuple[int, ...]], actual: dict[str, tuple[int, ...]], role: str,
                 what: str = "") -> None:
    """Every tensor the config needs is present with its shape, and nothing else is."""
    missing = [k for k in expected if k not in actual]
    unexpected = [k for k in actual if k not in expected]
    if missing or unexpected:
        name = f"missing {missing[0]}" if missing else f"unexpected {str(unexpected[0])[:80]}"
        raise UserError(f"{_prefix(what)}the {role} tensors do not fit its config ({name})")
    for k, shape in expected.items():
        if tuple(actual[k]) != shape:
            raise UserError(f"{_prefix(what)}{role} tensor {k} has shape {list(actual[k])}, its config needs "
                            f"{list(shape)}")


def check_finite(state: dict[str, torch.Tensor], role: str, what: str = "") -> None:
    """Refuse NaN/Inf weights, naming the first such tensor: they load silently and then every
    image comes out black."""
    for k, v in state.items():
        # A sum is NaN/Inf whenever an element is, and costs a tenth of an element-wise test; only
        # a non-finite sum (or an overflow of huge finite weights) is confirmed element by element.
        if v.is_floating_point() and not bool(torch.isfinite(v.sum())) and not bool(torch.isfinite(v).all()):
            raise UserError(f"{_prefix(what)}{role} tensor {k} holds NaN or infinite values (a corrupt or "
                            f"diverged model; --allow-nonfinite loads it anyway, for inspection)")


def check_dense(t: torch.Tensor, name: str, what: str = "") -> None:
    """A tensor from a file must own the memory its shape claims: no zero-stride (expanded)
    dimension, and a storage large enough for every element. Otherwise a few KB of file can
    declare GB of weights that only materialise when copied."""
    if any(st == 0 and n > 1 for st, n in zip(t.stride(), t.shape)):
        raise UserError(f"{_prefix(what)}tensor {name} is expanded (a zero stride): not stored weights")
    if t.numel() and t.device.type != "meta":
        extent = t.storage_offset() + sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride())) + 1
        if extent * t.element_size() > t.untyped_storage().nbytes():
            raise UserError(f"{_prefix(what)}tensor {name} claims more elements than its storage holds")
