"""FID between a generator's samples and a data set, in any feature space (``metrics.features``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from tqdm import tqdm

from ..errors import UserError
from ..latents import seeds_to_z
from ..networks import Generator
from ..training.dataset import ImageDataset
from .features import FeatureExtractor, load_features
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
    n = len(ds.image_names) if max_items is None else min(max_items, len(ds))
    for start in tqdm(range(0, n, batch), desc="data features", unit="batch", disable=not progress):
        images = torch.stack([ds[i][0] for i in range(start, min(start + batch, n))])
        yield images.float() / 127.5 - 1


def data_labels(data: str | os.PathLike | ImageDataset) -> torch.Tensor | None:
    """The set's label vectors [M, c_dim] (None without labels): what a conditional G is sampled with."""
    ds = data if isinstance(data, ImageDataset) else ImageDataset(data)
    if ds.c_dim == 0:
        return None
    return torch.stack([ds.get_label(i) for i in range(len(ds.image_names))])


def generator_batches(G: Generator, num: int, batch: int = 16, psi: float = 1.0, seed: int = 0,
                      labels: torch.Tensor | None = None, progress: bool = True) -> Iterable[torch.Tensor]:
    """``num`` samples from seeds seed .. seed+num-1 (NVlabs seeds), in batches; [N, 3, R, R] in [-1, 1].

    A conditional G draws each sample's label from ``labels`` [M, c_dim] (the data set's, so that
    the samples follow its label distribution), by a fixed random choice."""
    if G.c_dim and (labels is None or labels.shape[1:] != (G.c_dim,)):
        raise UserError(f"the network is conditional (c_dim {G.c_dim}): FID needs the data set's labels of that size")
    device = next(G.parameters()).device
    pick = torch.from_numpy(np.random.default_rng(seed).integers(0, len(labels), num)) if G.c_dim else None
    for start in tqdm(range(0, num, batch), desc="samples", unit="batch", disable=not progress):
        stop = min(start + batch, num)
        z = seeds_to_z(list(range(seed + start, seed + stop)), G.z_dim).to(device)
        c = labels[pick[start:stop]].to(device) if G.c_dim else None
        with torch.no_grad():
            yield G(z, c, psi=psi).clamp(-1, 1).cpu()


def dataset_stats(data: str | os.PathLike | ImageDataset, extractor: FeatureExtractor, max_items: int | None = None,
                  progress: bool = True) -> FeatureStats:
    """Feature statistics of a data set; compute once and reuse for every snapshot."""
    return stats_of(extractor, dataset_batches(data, max_items=max_items, progress=progress))


def generator_fid(G: Generator, extractor: FeatureExtractor, real: FeatureStats, num: int = 1000,
                  psi: float = 1.0, batch: int = 16, labels: torch.Tensor | None = None,
                  progress: bool = True) -> float:
    """FID between ``num`` samples of G (seeds 0..num-1; labels from ``labels`` if G is conditional)
    and the data statistics ``real``."""
    samples = generator_batches(G, num, batch=batch, psi=psi, labels=labels, progress=progress)
    return fid_from_stats(real, stats_of(extractor, samples))


def snapshot_fid(data: str | os.PathLike, features: str | os.PathLike, num: int = 1000,
                 max_data: int | None = None, device: torch.device | str = "cpu"):
    """A training ``metric_fn``: (G_ema, nimg) → {"fid_<features file stem>": value}.

    The data statistics are computed at the first snapshot and reused; samples use seeds 0..num-1
    (and, for a conditional G, labels drawn from the data set), so snapshots are comparable."""
    extractor = load_features(features, device)
    ds = ImageDataset(data)
    labels = data_labels(ds)
    key = f"fid_{Path(features).stem}"
    real: list[FeatureStats] = []

    def metric(G_ema: Generator, nimg: int) -> dict[str, float]:
        if not real:
            real.append(dataset_stats(ds, extractor, max_items=max_data, progress=False))
        return {key: generator_fid(G_ema, extractor, real[0], num=num, labels=labels, progress=False)}
    return metric
