"""A small attribute classifier: predicts a data set's labels; its penultimate layer is a feature space.

Trained on the labelled synthetic portraits (``stylegan-anime dataset --synthetic``), it gives FID a
feature network that needs no download, and gives attribute editing label predictions.
Saved like the networks: safetensors tensors with the config as JSON in the metadata and beside it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..io.atomic import atomic_path
from ..errors import UserError

FORMAT = "stylegan-anime-classifier/1"


@dataclass(frozen=True)
class LabelGroup:
    """Entries [start, start + width) of a label vector: one categorical attribute (one-hot) or one binary."""

    name: str
    start: int
    width: int
    binary: bool


def label_groups(label_names: list[str]) -> list[LabelGroup]:
    """Group entry names: consecutive ``"attr=value"`` entries form one categorical group; a bare name is binary."""
    groups: list[LabelGroup] = []
    for i, entry in enumerate(label_names):
        name = entry.split("=", 1)[0]
        categorical = "=" in entry
        last = groups[-1] if groups else None
        if categorical and last is not None and not last.binary and last.name == name:
            groups[-1] = LabelGroup(name, last.start, last.width + 1, False)
        else:
            groups.append(LabelGroup(name, i, 1, not categorical))
    return groups


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture. Images are resized to ``resolution`` (a power of two ≥ 8) before the first layer."""

    label_names: list[str] = field(default_factory=list)
    resolution: int = 64
    channel_base: int = 32      # channels at full resolution, doubling per halving
    channel_max: int = 128
    feature_dim: int = 128      # width of the penultimate layer (the FID feature space)

    def __post_init__(self):
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise UserError(f"classifier resolution must be a power of two ≥ 8, got {r}")
        if not self.label_names:
            raise UserError("the classifier needs label names (a labelled data set)")

    def to_dict(self) -> dict:
        return asdict(self)


class AttributeClassifier(nn.Module):
    """images [N, 3, H, W] in [-1, 1] → ``features`` [N, feature_dim] → label logits [N, c_dim]."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.groups = label_groups(cfg.label_names)
        layers: list[nn.Module] = []
        c_in, res = 3, cfg.resolution
        while res > 4:
            c_out = min(cfg.channel_base * (cfg.resolution // res), cfg.channel_max)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
            c_in, res = c_out, res // 2
        self.trunk = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * 16, cfg.feature_dim), nn.LeakyReLU(0.2))
        self.head = nn.Linear(cfg.feature_dim, len(cfg.label_names))

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise UserError(f"images must be [N, 3, H, W], got {list(x.shape)}")
        r = self.cfg.resolution
        if x.shape[-2:] != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=x.shape[-1] > r)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, H, W] in [-1, 1] → [N, feature_dim]."""
        return self.trunk(self._resize(x.to(self.head.weight.device, torch.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Label logits [N, c_dim]."""
        return self.head(self.features(x))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits → per-entry probabilities: softmax within each categorical group, sigmoid for binary ones."""
        parts = [torch.sigmoid(logits[:, g.start:g.start + 1]) if g.binary else
                 torch.softmax(logits[:, g.start:g.start + g.width], dim=1) for g in self.groups]
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, H, W] in [-1, 1] → label probabilities [N, c_dim] in [0, 1] (same layout as the labels)."""
        return self.probabilities(self.forward(x))

    @torch.no_grad()
    def predict_attributes(self, x: torch.Tensor) -> list[dict[str, str | bool]]:
        """x: [N, 3, H, W] in [-1, 1] → one dict per image: {"hair_color": "blonde", "glasses": False, ...}."""
        out = []
        for row in self.predict(x).cpu():
            values: dict[str, str | bool] = {}
            for g in self.groups:
                if g.binary:
                    values[g.name] = bool(row[g.start] > 0.5)
                else:
                    best = g.start + int(row[g.start:g.start + g.width].argmax())
                    values[g.name] = self.cfg.label_names[best].split("=", 1)[1]
            out.append(values)
        return out

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over groups of cross-entropy (categorical) / binary cross-entropy; labels [N, c_dim] 0/1."""
        terms = []
        for g in self.groups:
            lg, lb = logits[:, g.start:g.start + g.width], labels[:, g.start:g.start + g.width]
            terms.append(F.binary_cross_entropy_with_logits(lg, lb) if g.binary else
                         F.cross_entropy(lg, lb.argmax(dim=1)))
        return torch.stack(terms).mean()


def save_classifier(model: AttributeClassifier, path: str | Path) -> Path:
    """Tensors + config (JSON in the metadata and in a sidecar .json), atomically."""
    path = Path(path)
    config = json.dumps(model.cfg.to_dict(), sort_keys=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "config": config})
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"format": FORMAT, "config": model.cfg.to_dict()}, indent=2) + "\n")
    return path


def read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a safetensors file: {e}") from None


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> AttributeClassifier:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise UserError(f"{path.name} is not a stylegan-anime attribute classifier")
    model = AttributeClassifier(ClassifierConfig(**json.loads(meta["config"])))
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval()
