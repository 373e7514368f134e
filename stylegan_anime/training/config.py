"""The typed training configuration, saved as ``training.json`` in the run folder.

The network architectures are nested ``GeneratorConfig`` / ``DiscriminatorConfig``
dataclasses; everything else (losses, optimiser, schedule) lives here so that a run
folder alone says how it was trained and ``--resume-run`` can continue it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from ..networks import DiscriminatorConfig, GeneratorConfig

AUGMENT_MODES = ("ada", "fixed", "off")


@dataclass
class TrainingConfig:
    """One training run. ``batch`` is the global batch (split across processes);
    kimg = thousands of real images shown to D. ``r1_gamma`` None → 0.0002·res²/batch.

    Text-to-image methods (conditional runs only, all off by default): ``gan_cls`` λ in [0, 1]
    (matching-aware D, 0.5 = Reed et al.'s weighting), ``gan_int`` the weight of G's term on
    interpolated labels β·c₁ + (1−β)·c₂ (β = ``gan_int_beta``, the paper's 0.5; 1 = the
    paper's weight), ``cond_aug`` conditioning augmentation with a KL term of weight ``ca_kl``.
    ``label_guide``: an attribute classifier (.safetensors) trained on the same data set whose
    cross-entropy on G's images, times ``label_guide_weight``, joins G's loss (None = off)."""

    data: str = ""
    g: GeneratorConfig = field(default_factory=GeneratorConfig)
    d: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    use_labels: bool = True
    xflip: bool = False
    batch: int = 32
    kimg: float = 1000.0
    snap_kimg: float = 4.0
    tick_kimg: float = 0.5
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing: float = 0.9
    ema_kimg: float | None = None
    ema_rampup: float | None = 0.05
    augment: str = "ada"
    augment_p: float = 0.0
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    freezed: int = 0
    gan_cls: float = 0.0
    gan_int: float = 0.0
    gan_int_beta: float = 0.5
    cond_aug: bool = False
    ca_kl: float = 1.0
    label_guide: str | None = None
    label_guide_weight: float = 1.0
    resume: str | None = None
    seed: int = 0
    grid_seeds: int = 16
    keep_snapshots: int = 2
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise UserError(f"--batch must be at least 1, got {self.batch}")
        if self.augment not in AUGMENT_MODES:
            raise UserError(f"--augment must be one of {', '.join(AUGMENT_MODES)}, got {self.augment!r}")
        if self.kimg <= 0 or self.snap_kimg <= 0 or self.tick_kimg <= 0:
            raise UserError("--kimg, --snap and the tick interval must be positive")
        if self.r1_interval < 1 or self.pl_interval < 1:
            raise UserError("regularisation intervals must be >= 1")
        if self.freezed < 0:
            raise UserError(f"--freezed must be >= 0, got {self.freezed}")
        if not 0 <= self.gan_cls <= 1:
            raise UserError(f"--gan-cls must be in [0, 1] (0.5 = the paper), got {self.gan_cls}")
        if self.gan_int < 0 or self.ca_kl < 0 or self.label_guide_weight < 0:
            raise UserError("--gan-int, --ca-kl and --label-guide-weight must be >= 0")
        if not 0 <= self.gan_int_beta <= 1:
            raise UserError(f"--gan-int-beta must be in [0, 1], got {self.gan_int_beta}")
        self.betas = tuple(self.betas)

    @property
    def resolution(self) -> int:
        return self.g.img_resolution

    def resolved_r1_gamma(self) -> float:
        """The published heuristic: gamma = 0.0002 · res² / batch."""
        return self.r1_gamma if self.r1_gamma is not None else 0.0002 * self.resolution ** 2 / self.batch

    def resolved_ema_kimg(self) -> float:
        """Half-life of the generator average in kimg (published: batch · 10 / 32)."""
        return self.ema_kimg if self.ema_kimg is not None else self.batch * 10 / 32

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["g"], d["d"] = self.g.to_dict(), self.d.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingConfig":
        d = dict(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"training config has no field(s) {', '.join(unknown)}")
        if "g" in d:
            d["g"] = GeneratorConfig.from_dict(d["g"])
        if "d" in d:
            d["d"] = DiscriminatorConfig.from_dict(d["d"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "TrainingConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"training config is not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_dict(d)
