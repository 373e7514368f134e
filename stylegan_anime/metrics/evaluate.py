"""FID between a generator's samples and a data set, in any feature space (``metrics.features``)."""
from __future__ import annotations

import os
from typing import Iterable

import torch
from tqdm import tqdm

from ..errors import UserError
from ..latents import seeds_to_z
from ..networks import Generator
from ..training.dataset import ImageDataset
from .features import FeatureExtractor
from .fid import FeatureStats, fid_from_stats


def stats_of(extractor: FeatureExtractor, batches: Iterable[torch.Tensor]) -> FeatureStats:
    """Feature statistics of image batches ([N, 3, H, W] in [-1, 1])."""
    stats = FeatureStats(extractor.feature_dim)
    with torch.no_grad():
        for images in batches:
            stats.update(extractor.features(images))
    return stats


def dataset_batches(data: str | os.PathLike | ImageDataset, max_items: int | None = None, batch: int = 64,
                    progress: bool = True) -> Iterable[torch.Tensor]:
    """The set's images (the first ``max_items``) in batches, as float [-1, 1]."""
    ds = data if isinstance(data, ImageDataset) else ImageDataset(data, use_labels=False)
    n = len(ds) if max_items is None else min(max_items, len(ds))
    for start in tqdm(range(0, n, batch), desc="data features", unit="batch", disable=not progress):
        images = torch.stack([ds[i][0] for i in range(start, min(start + batch, n))])
        yield images.float() / 127.5 - 1


def generator_batches(G: Generator, num: int, batch: int = 16, psi: float = 1.0, seed: int = 0,
                      progress: bool = True) -> Iterable[torch.Tensor]:
    """``num`` samples from seeds seed .. seed+num-1 (NVlabs seeds), in batches; [N, 3, R, R] in [-1, 1]."""
    if G.c_dim:
        raise UserError("FID of a conditional generator is not supported yet")
    device = next(G.parameters()).device
    for start in tqdm(range(seed, seed + num, batch), desc="samples", unit="batch", disable=not progress):
        seeds = list(range(start, min(start + batch, seed + num)))
        with torch.no_grad():
            yield G(seeds_to_z(seeds, G.z_dim).to(device), psi=psi).clamp(-1, 1).cpu()


def dataset_stats(data: str | os.PathLike | ImageDataset, extractor: FeatureExtractor, max_items: int | None = None,
                  progress: bool = True) -> FeatureStats:
    """Feature statistics of a data set; compute once and reuse for every snapshot."""
    return stats_of(extractor, dataset_batches(data, max_items=max_items, progress=progress))


def generator_fid(G: Generator, extractor: FeatureExtractor, real: FeatureStats, num: int = 1000,
                  psi: float = 1.0, batch: int = 16, progress: bool = True) -> float:
    """FID between ``num`` samples of G (seeds 0..num-1) and the data statistics ``real``."""
    return fid_from_stats(real, stats_of(extractor, generator_batches(G, num, batch=batch, psi=psi,
                                                                        progress=progress)))
