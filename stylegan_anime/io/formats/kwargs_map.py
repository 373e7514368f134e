"""The TF networks' build arguments (``static_kwargs``) → our config dataclasses.

Arguments fall in four groups: those that set a config field, those whose non-default
value changes the architecture in a way ours cannot express (a ``UserError`` naming
the argument), run-time switches that do not touch the weights (dropped), and the
rest, e.g. forks' own arguments, which are kept as strings in ``cfg.extra``.
"""
from __future__ import annotations

import reprlib
from typing import Any

from ...errors import UserError
from ...networks import DiscriminatorConfig, GeneratorConfig

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


def _check_fixed(kwargs: dict, fixed: dict, what: str) -> None:
    for name, (allowed, why) in fixed.items():
        if name in kwargs and kwargs[name] not in allowed:
            raise UserError(f"{what}: setting {name}={short_repr(kwargs[name], 60)} changes the {why}, "
                            f"which this toolkit's StyleGAN2 does not support")


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr`` cut to a few levels, items and ``limit`` characters: a file's value nested or
    repeated without end (a "billion laughs") must not make a repr that never finishes."""
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset, r.maxfrozenset = 3, 8, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _extras(kwargs: dict, used: set[str], runtime: set[str], fixed: dict) -> dict[str, str]:
    return {str(k)[:100]: short_repr(v) for k, v in kwargs.items() if k not in used | runtime | set(fixed)}


def _filter(kernel: Any, what: str) -> tuple[float, ...]:
    if kernel is None:
        raise UserError(f"{what}: resample_kernel=None (no low-pass filter) is not supported")
    return tuple(float(v) for v in kernel)


def _fmap_min_ok(kwargs: dict, cfg, what: str) -> None:
    fmap_min = kwargs.get("fmap_min", 1)
    smallest = min(cfg.channels(cfg.img_resolution), cfg.channels(4))
    if fmap_min is not None and fmap_min > smallest:
        raise UserError(f"{what}: setting fmap_min={fmap_min} changes the channel counts, which this toolkit's "
                        f"StyleGAN2 does not support")


def generator_config(kwargs: dict, what: str, extras: dict[str, str], label_mode: str = "embed") -> GeneratorConfig:
    """A TF G/Gs ``static_kwargs`` → GeneratorConfig; unknown arguments are added to ``extras`` too."""
    _check_fixed(kwargs, G_FIXED, what)
    get = kwargs.get
    w_dim = int(get("dlatent_size", 512))
    z_dim = int(get("latent_size", 512))
    for name in ("mapping_fmaps", "label_fmaps"):
        if get(name) is not None and int(get(name)) != w_dim:
            raise UserError(f"{what}: setting {name}={get(name)} (not dlatent_size={w_dim}) changes the mapping "
                            f"network's width, which this toolkit's StyleGAN2 does not support")
    if int(get("label_size", 0) or 0) > 0 and label_mode == "embed" and get("label_fmaps") is None and z_dim != w_dim:
        raise UserError(f"{what}: a label embedding of latent_size={z_dim} features (not {w_dim}) is not supported")
    beta = get("dlatent_avg_beta", get("w_avg_beta", 0.995))
    used = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
            "mapping_lrmul", "dlatent_avg_beta", "w_avg_beta", "fmap_base", "fmap_max", "architecture",
            "resample_kernel", "conv_clamp", "mapping_fmaps", "label_fmaps", "fmap_min"}
    extra = _extras(kwargs, used, G_RUNTIME, G_FIXED)
    extras.update(extra)
    cfg = GeneratorConfig(
        img_resolution=int(get("resolution", 1024)), z_dim=z_dim, c_dim=int(get("label_size", 0) or 0),
        w_dim=w_dim, img_channels=int(get("num_channels", 3)), mapping_layers=int(get("mapping_layers", 8)),
        mapping_lr_multiplier=float(get("mapping_lrmul", 0.01)), w_avg_beta=float(1 if beta is None else beta),
        channel_base=int(get("fmap_base", 16 << 10)) * 2, channel_max=int(get("fmap_max", 512)),
        architecture=str(get("architecture", "skip")), resample_filter=_filter(get("resample_kernel", [1, 3, 3, 1]),
                                                                                 what),
        conv_clamp=None if get("conv_clamp") is None else float(get("conv_clamp")), label_mode=label_mode,
        extra=extra)
    _fmap_min_ok(kwargs, cfg, what)
    return cfg


def discriminator_config(kwargs: dict, what: str, extras: dict[str, str], mbstd_num_channels: int,
                         label_mode: str = "project") -> DiscriminatorConfig:
    """A TF D ``static_kwargs`` → DiscriminatorConfig. ``mbstd_num_channels`` comes from the
    4×4 conv's input width: the TF versions disagree on when the layer is on."""
    _check_fixed(kwargs, D_FIXED, what)
    get = kwargs.get
    fmap_base, fmap_max = int(get("fmap_base", 16 << 10)), int(get("fmap_max", 512))
    group = get("mbstd_group_size", 4)
    used = {"label_size", "resolution", "num_channels", "fmap_base", "fmap_max", "architecture",
            "resample_kernel", "conv_clamp", "mbstd_group_size", "mbstd_num_features", "mapping_layers",
            "mapping_fmaps", "mapping_lrmul", "fmap_min"}
    extra = _extras(kwargs, used, D_RUNTIME, D_FIXED)
    extras.update(extra)
    cfg = DiscriminatorConfig(
        img_resolution=int(get("resolution", 1024)), c_dim=int(get("label_size", 0) or 0),
        img_channels=int(get("num_channels", 3)), channel_base=fmap_base * 2, channel_max=fmap_max,
        architecture=str(get("architecture", "resnet")), resample_filter=_filter(get("resample_kernel", [1, 3, 3, 1]),
                                                                                  what),
        conv_clamp=None if get("conv_clamp") is None else float(get("conv_clamp")),
        mbstd_group_size=int(group or 0), mbstd_num_channels=mbstd_num_channels,
        cmap_dim=int(get("mapping_fmaps") or min(fmap_base, fmap_max)), mapping_layers=int(get("mapping_layers", 0)),
        mapping_lr_multiplier=float(get("mapping_lrmul", 0.1)), label_mode=label_mode, extra=extra)
    _fmap_min_ok(kwargs, cfg, what)
    return cfg
