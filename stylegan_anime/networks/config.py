"""Typed configs of the networks, saved beside the weights as JSON.

A network's state is its ``state_dict`` plus one of these dataclasses; nothing
else is pickled. ``extra`` keeps settings from other implementations (forks'
keyword arguments) that do not change the architecture, so that a converted
file remembers where it came from.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import UserError

T = TypeVar("T", bound="ConfigBase")


class ConfigBase:
    """JSON round trip shared by the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kind"] = type(self).__name__
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any], what: str = "") -> T:
        """A config from its JSON form, every field checked (``build_config``)."""
        if not isinstance(d, dict):
            raise UserError(f"{what + ': ' if what else ''}a {cls.__name__} must be a JSON object")
        d = dict(d)
        kind = d.pop("kind", cls.__name__)
        if kind != cls.__name__:
            raise UserError(f"{what + ': ' if what else ''}config is a {str(kind)[:40]}, expected a {cls.__name__}")
        return build_config(cls, d, what)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"config is not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(d, dict):
            raise UserError("config JSON must be an object")
        return cls.from_dict(d)


def build_config(cls: type[T], values: dict[str, Any], what: str = "") -> T:
    """``cls(**values)`` after checking every value's type and range (see ``validation``):
    the one gate all readers pass a file's declared configuration through before any network
    is built. ``what`` (the file's name) starts the error message."""
    from .validation import check_config, check_values
    cfg = cls(**check_values(cls, values, what))
    check_config(cfg, what)
    return cfg


def _check_resolution(res: int) -> None:
    if res < 4 or res & (res - 1):
        raise UserError(f"resolution must be a power of two >= 4, got {res}")


@dataclass
class GeneratorConfig(ConfigBase):
    """StyleGAN2 generator (config E/F by default: 512-d z and w, 8 mapping layers).

    Channels at resolution r are ``min(channel_base // r, channel_max)``.
    ``architecture`` is the synthesis output architecture: ``skip`` or ``resnet``.
    ``label_mode``: ``embed`` (labels embedded and normalised apart from z, as in
    stylegan2-ada) or ``concat`` (the original TF StyleGAN2: normalised together with z).
    ``cond_aug``: conditioning augmentation (the label embedding gives μ and log σ²; files
    saved before it existed load with it off).
    ``conv_clamp``: clamp conv outputs to ±this (None: off). ``num_fp16_res``: the
    highest N resolutions run in float16 on CUDA (float32 on the CPU).
    """

    img_resolution: int = 256
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    conv_clamp: float | None = None
    num_fp16_res: int = 0
    label_mode: str = "embed"
    cond_aug: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_resolution(self.img_resolution)
        if self.label_mode not in ("embed", "concat"):
            raise UserError(f"generator label_mode must be embed or concat, got {self.label_mode!r}")
        if self.architecture not in ("skip", "resnet", "orig"):
            raise UserError(f"generator architecture must be skip, resnet or orig, got {self.architecture!r}")
        if self.z_dim < 1 or self.w_dim < 1 or self.c_dim < 0 or self.mapping_layers < 1:
            raise UserError("z_dim, w_dim and mapping_layers must be >= 1 and c_dim >= 0")

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)


@dataclass
class DiscriminatorConfig(ConfigBase):
    """StyleGAN2 discriminator (resnet by default) with minibatch standard deviation and,
    when ``c_dim > 0``, projection conditioning through a label mapping network
    (``label_mode="project"``), or the original TF StyleGAN2 head (``"output"``): one output
    per label, summed against the labels."""

    img_resolution: int = 256
    c_dim: int = 0
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "resnet"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    conv_clamp: float | None = None
    num_fp16_res: int = 0
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    cmap_dim: int | None = None
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    label_mode: str = "project"
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_resolution(self.img_resolution)
        if self.architecture not in ("skip", "resnet", "orig"):
            raise UserError(f"discriminator architecture must be skip, resnet or orig, got {self.architecture!r}")
        if self.label_mode not in ("project", "output"):
            raise UserError(f"discriminator label_mode must be project or output, got {self.label_mode!r}")

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)
