"""Training the attribute classifier on a labelled data set, and measuring it on held-out images."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..errors import UserError
from ..training.dataset import ImageDataset
from .classifier import AttributeClassifier, ClassifierConfig


@dataclass(frozen=True)
class ClassifierTraining:
    """Optimisation settings. ``holdout`` is the fraction of images kept out of training for ``evaluate``."""

    steps: int = 2000
    batch: int = 32
    lr: float = 2e-3
    holdout: float = 0.1
    seed: int = 0


def load_images(ds: ImageDataset, indices: np.ndarray, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the chosen items: images uint8 [N, 3, R, R], labels float32 [N, c_dim]."""
    items = [ds[int(i)] for i in tqdm(indices, desc="loading", unit="img", disable=not progress)]
    return torch.stack([im for im, _ in items]), torch.stack([lb for _, lb in items])


def split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of range(n): (train, held-out) indices."""
    order = np.random.default_rng(seed).permutation(n)
    k = int(round(n * holdout))
    return np.sort(order[k:]), np.sort(order[:k])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] → float [-1, 1]."""
    return images.float() / 127.5 - 1


def train_classifier(data: str | os.PathLike | ImageDataset, cfg: ClassifierConfig | None = None,
                     opts: ClassifierTraining = ClassifierTraining(), progress: bool = True) -> AttributeClassifier:
    """Train on the labelled set ``data`` (minus its held-out split), on the CPU. The set must fit in memory."""
    ds = data if isinstance(data, ImageDataset) else ImageDataset(data)
    if ds.c_dim == 0:
        raise UserError(f"{ds.path} has no labels: the attribute classifier needs a labelled set "
                        "(e.g. stylegan-anime dataset --synthetic N OUT)")
    cfg = cfg or ClassifierConfig(label_names=ds.label_names, resolution=min(64, ds.resolution))
    train_idx, _ = split(len(ds.image_names), opts.holdout, opts.seed)
    images, labels = load_images(ds, train_idx, progress)
    torch.manual_seed(opts.seed)
    model = AttributeClassifier(cfg).train()
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, opts.steps)
    gen = torch.Generator().manual_seed(opts.seed)
    bar = tqdm(range(opts.steps), desc="classifier", unit="step", disable=not progress)
    for _ in bar:
        idx = torch.randint(len(images), (min(opts.batch, len(images)),), generator=gen)
        x = to_float(images[idx])
        flip = torch.rand(len(idx), generator=gen) < 0.5  # the labelled attributes do not depend on the side
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        loss = model.loss(model(x), labels[idx])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


@torch.no_grad()
def accuracy(model: AttributeClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch: int = 64) -> dict[str, float]:
    """Per attribute: the fraction of images whose predicted value (argmax / > 0.5) is the label's."""
    probs = torch.cat([model.predict(to_float(images[i:i + batch])) for i in range(0, len(images), batch)])
    out = {}
    for g in model.groups:
        p, t = probs[:, g.start:g.start + g.width], labels[:, g.start:g.start + g.width]
        hit = (p[:, 0] > 0.5) == (t[:, 0] > 0.5) if g.binary else p.argmax(1) == t.argmax(1)
        out[g.name] = hit.float().mean().item()
    return out


def majority_accuracy(model: AttributeClassifier, train_labels: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The baseline: always answering each attribute's most common training value."""
    out = {}
    for g in model.groups:
        tr, t = train_labels[:, g.start:g.start + g.width], labels[:, g.start:g.start + g.width]
        if g.binary:
            guess = bool(tr[:, 0].mean() > 0.5)
            out[g.name] = ((t[:, 0] > 0.5) == guess).float().mean().item()
        else:
            out[g.name] = (t.argmax(1) == tr.sum(0).argmax()).float().mean().item()
    return out
