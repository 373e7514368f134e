"""Feature networks for FID, behind one interface: ``features(images) -> [N, D]``.

- ``InceptionFeatures``: a TorchScript Inception-v3 file such as the public
  ``inception-2015-12-05.pt`` that the StyleGAN2-ADA metrics use (2048 pool features; it takes
  uint8 images and resizes them itself). It cannot be downloaded here: give its path.
- ``AttributeClassifier`` (``metrics.classifier``): our small CNN trained on the labelled
  synthetic set; its penultimate layer is the feature space.
``load_features(path)`` picks by content.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Protocol

import torch

from ..errors import UserError
from .classifier import FORMAT as CLASSIFIER_FORMAT
from .classifier import load_classifier, read_metadata

NO_FEATURES = ("FID needs a feature network: pass --features PATH (a TorchScript inception-2015-12-05.pt, or a "
               "classifier from `stylegan-anime classifier`); none is bundled and none can be downloaded here")


class FeatureExtractor(Protocol):
    feature_dim: int

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images [N, 3, H, W] float in [-1, 1] → features [N, feature_dim]."""


class InceptionFeatures:
    """A TorchScript Inception taking uint8 [N, 3, H, W] and ``return_features=True`` → [N, 2048]."""

    feature_dim = 2048

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise UserError(f"no Inception network at {path} (it cannot be downloaded here: give the path of "
                            "a TorchScript inception-2015-12-05.pt)")
        try:
            with warnings.catch_warnings():  # TorchScript is how the public Inception file is distributed
                warnings.simplefilter("ignore", DeprecationWarning)
                self.net = torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as e:
            raise UserError(f"{path.name} is not a TorchScript network: {str(e).splitlines()[0]}") from None
        self.device = torch.device(device)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).to(self.device)
        return self.net(x, return_features=True).float()


def load_features(path: str | Path | None, device: torch.device | str = "cpu") -> FeatureExtractor:
    """A feature network from a file: our classifier (.safetensors) or a TorchScript Inception."""
    if path is None:
        raise UserError(NO_FEATURES)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no feature network at {path}")
    if zipfile.is_zipfile(path):  # TorchScript archives are zip files
        return InceptionFeatures(path, device)
    try:
        is_classifier = read_metadata(path).get("format") == CLASSIFIER_FORMAT
    except UserError:
        is_classifier = False
    if is_classifier:
        return load_classifier(path, device)
    raise UserError(f"{path.name} is neither a TorchScript network nor a stylegan-anime classifier")
