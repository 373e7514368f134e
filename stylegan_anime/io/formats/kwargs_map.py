"""The TF networks' build arguments (``static_kwargs``) → our config dataclasses.

Arguments fall in four groups: those that set a config field, those whose non-default
value changes the architecture in a way ours cannot express (a ``UserError`` naming
the argument), run-time switches that do not touch the weights (dropped), and the
rest, e.g. forks' own arguments, which are kept as strings in ``cfg.extra``.
"""
from __future__ import annotations

import numbers
import operator
from typing import Any

from ...errors import UserError, shown
from ...networks import DiscriminatorConfig, GeneratorConfig
from ...networks.config import build_config

G_RUNTIME = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
             "style_mixing_prob", "is_training", "is_validation", "return_dlatents", "is_template_graph",
             "randomize_noise", "dtype", "fused_modconv", "force_clean_graph", "structure", "components",
             "num_fp16_res", "mapping_func", "synthesis_func", "dlatent_broadcast"}
D_RUNTIME = {"dtype", "structure", "is_template_graph", "freeze_layers", "score_size", "num_fp16_res",
             "is_training", "components"}

# name: (required value(s), why it matters)
G_FIXED: dict[str, tuple[tuple, str]] = {
    "fmap_decay": ((1, 1.0), "channel counts"),
    "mapping_nonlinearity": (("lrelu",), "mapping activation"),
    "nonlinearity": (("lrelu",), "activation"),
    "normalize_latents": ((True,), "z normalisation"),
    "use_noise": ((True,), "noise inputs"),
}
D_FIXED: dict[str, tuple[tuple, str]] = {
    "fmap_decay": ((1, 1.0), "channel counts"),
    "nonlinearity": (("lrelu",), "activation"),
    "score_max": ((1,), "output count"),
}


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool, numbers.Number))


def _check_fixed(kwargs: dict, fixed: dict, what: str) -> None:
    for name, (allowed, why) in fixed.items():
        if name in kwargs and (not _scalar(kwargs[name]) or kwargs[name] not in allowed):
            raise UserError(f"{what}: setting {name}={shown(kwargs[name], 60)} changes the {why}, "
                            f"which this toolkit's StyleGAN2 does not support")


def _int(kwargs: dict, name: str, default: int | None, what: str) -> int | None:
    """A whole-number argument (Python or numpy int; not a bool, float or string)."""
    v = kwargs.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool):
        raise UserError(f"{what}: setting {name} must be a whole number, got {shown(v, 60)}")
    try:
        return operator.index(v)
    except TypeError:
        raise UserError(f"{what}: setting {name} must be a whole number, got {shown(v, 60)}") from None


def _float(kwargs: dict, name: str, default: float | None, what: str) -> float | None:
    v = kwargs.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise UserError(f"{what}: setting {name} must be a number, got {shown(v, 60)}")
    return float(v)


def _extras(kwargs: dict, used: set[str], runtime: set[str], fixed: dict) -> dict[str, str]:
    return {str(k)[:100]: shown(v) for k, v in kwargs.items() if k not in used | runtime | set(fixed)}


def _filter(kernel: Any, what: str) -> tuple[float, ...]:
    if kernel is None:
        raise UserError(f"{what}: resample_kernel=None (no low-pass filter) is not supported")
    if not isinstance(kernel, (list, tuple)) or len(kernel) > 16 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in kernel):
        raise UserError(f"{what}: resample_kernel must be a short list of numbers, got {shown(kernel, 60)}")
    return tuple(float(v) for v in kernel)


def _fmap_min_ok(kwargs: dict, cfg, what: str) -> None:
    fmap_min = _int(kwargs, "fmap_min", 1, what)
    smallest = min(cfg.channels(cfg.img_resolution), cfg.channels(4))
    if fmap_min is not None and fmap_min > smallest:
        raise UserError(f"{what}: setting fmap_min={fmap_min} changes the channel counts, which this toolkit's "
                        f"StyleGAN2 does not support")


def generator_config(kwargs: dict, what: str, extras: dict[str, str], label_mode: str = "embed") -> GeneratorConfig:
    """A TF G/Gs ``static_kwargs`` → GeneratorConfig; unknown arguments are added to ``extras`` too.
    Every value is type- and range-checked (``build_config``) before any network exists."""
    _check_fixed(kwargs, G_FIXED, what)
    w_dim = _int(kwargs, "dlatent_size", 512, what)
    z_dim = _int(kwargs, "latent_size", 512, what)
    c_dim = _int(kwargs, "label_size", 0, what) or 0
    for name in ("mapping_fmaps", "label_fmaps"):
        width = _int(kwargs, name, None, what)
        if width is not None and width != w_dim:
            raise UserError(f"{what}: setting {name}={width} (not dlatent_size={w_dim}) changes the mapping "
                            f"network's width, which this toolkit's StyleGAN2 does not support")
    if c_dim > 0 and label_mode == "embed" and kwargs.get("label_fmaps") is None and z_dim != w_dim:
        raise UserError(f"{what}: a label embedding of latent_size={z_dim} features (not {w_dim}) is not supported")
    beta = _float(kwargs, "dlatent_avg_beta", _float(kwargs, "w_avg_beta", 0.995, what), what)
    used = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
            "mapping_lrmul", "dlatent_avg_beta", "w_avg_beta", "fmap_base", "fmap_max", "architecture",
            "resample_kernel", "conv_clamp", "mapping_fmaps", "label_fmaps", "fmap_min"}
    extra = _extras(kwargs, used, G_RUNTIME, G_FIXED)
    extras.update(extra)
    cfg = build_config(GeneratorConfig, dict(
        img_resolution=_int(kwargs, "resolution", 1024, what), z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
        img_channels=_int(kwargs, "num_channels", 3, what), mapping_layers=_int(kwargs, "mapping_layers", 8, what),
        mapping_lr_multiplier=_float(kwargs, "mapping_lrmul", 0.01, what), w_avg_beta=1.0 if beta is None else beta,
        channel_base=(_int(kwargs, "fmap_base", 16 << 10, what) or 0) * 2,
        channel_max=_int(kwargs, "fmap_max", 512, what),
        architecture=kwargs.get("architecture", "skip"),
        resample_filter=_filter(kwargs.get("resample_kernel", [1, 3, 3, 1]), what),
        conv_clamp=_float(kwargs, "conv_clamp", None, what), label_mode=label_mode, extra=extra), what)
    _fmap_min_ok(kwargs, cfg, what)
    return cfg


def discriminator_config(kwargs: dict, what: str, extras: dict[str, str], mbstd_num_channels: int,
                         label_mode: str = "project") -> DiscriminatorConfig:
    """A TF D ``static_kwargs`` → DiscriminatorConfig. ``mbstd_num_channels`` comes from the
    4×4 conv's input width: the TF versions disagree on when the layer is on."""
    _check_fixed(kwargs, D_FIXED, what)
    fmap_base = _int(kwargs, "fmap_base", 16 << 10, what) or 0  # None or 0: refused by the range check
    fmap_max = _int(kwargs, "fmap_max", 512, what) or 0
    used = {"label_size", "resolution", "num_channels", "fmap_base", "fmap_max", "architecture",
            "resample_kernel", "conv_clamp", "mbstd_group_size", "mbstd_num_features", "mapping_layers",
            "mapping_fmaps", "mapping_lrmul", "fmap_min"}
    extra = _extras(kwargs, used, D_RUNTIME, D_FIXED)
    extras.update(extra)
    cfg = build_config(DiscriminatorConfig, dict(
        img_resolution=_int(kwargs, "resolution", 1024, what), c_dim=_int(kwargs, "label_size", 0, what) or 0,
        img_channels=_int(kwargs, "num_channels", 3, what), channel_base=fmap_base * 2, channel_max=fmap_max,
        architecture=kwargs.get("architecture", "resnet"),
        resample_filter=_filter(kwargs.get("resample_kernel", [1, 3, 3, 1]), what),
        conv_clamp=_float(kwargs, "conv_clamp", None, what),
        mbstd_group_size=_int(kwargs, "mbstd_group_size", 4, what) or 0, mbstd_num_channels=mbstd_num_channels,
        cmap_dim=_int(kwargs, "mapping_fmaps", None, what) or min(fmap_base, fmap_max),
        mapping_layers=_int(kwargs, "mapping_layers", 0, what),
        mapping_lr_multiplier=_float(kwargs, "mapping_lrmul", 0.1, what), label_mode=label_mode, extra=extra), what)
    _fmap_min_ok(kwargs, cfg, what)
    return cfg
