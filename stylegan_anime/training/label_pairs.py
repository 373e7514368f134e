"""Label vectors derived from a batch's labels for the text-to-image training methods.

``mismatched_labels`` gives GAN-CLS's "wrong" conditions (Reed et al. 2016): for each image,
another image's labels, or its own with one attribute changed, never equal to its own and
always valid (one value per categorical group). ``interpolated_labels`` gives GAN-INT's
β·c₁ + (1−β)·c₂ of two batch images.
"""
from __future__ import annotations

import torch

from ..metrics.classifier import LabelGroup, label_groups


def groups_for(label_names: list[str] | None, c_dim: int, labels: torch.Tensor | None = None) -> list[LabelGroup]:
    """The groups of a label layout. Without ``attr=value`` names (plain class labels such as
    ``c0, c1``) a batch whose rows are all one-hot is taken as one categorical group, so that a
    changed label stays one-hot; anything else as independent binary entries."""
    if label_names and len(label_names) == c_dim and any("=" in n for n in label_names):
        return label_groups(list(label_names))
    if labels is not None and len(labels) and bool(((labels == 0) | (labels == 1)).all()) \
            and bool((labels.sum(1) == 1).all()):
        return [LabelGroup("class", 0, c_dim, False)]
    return [LabelGroup(f"c{i}", i, 1, True) for i in range(c_dim)]


def change_one_attribute(c: torch.Tensor, groups: list[LabelGroup], gen: torch.Generator | None = None) -> torch.Tensor:
    """c: [N, c_dim] → a copy in which each row has one randomly chosen attribute changed: a
    binary entry flipped (0 ↔ 1), or a categorical group moved to another of its values."""
    out = c.clone()
    usable = [g for g in groups if g.binary or g.width > 1]
    picks = torch.randint(len(usable), [len(c)], generator=gen).tolist()
    for row, k in enumerate(picks):
        g = usable[k]
        if g.binary:
            out[row, g.start] = 1.0 - (c[row, g.start] > 0.5).float()
            continue
        current = int(c[row, g.start:g.start + g.width].argmax())
        # A uniform draw among the other width - 1 values.
        new = int(torch.randint(g.width - 1, [], generator=gen))
        new += new >= current
        out[row, g.start:g.start + g.width] = 0.0
        out[row, g.start + new] = 1.0
    return out


def mismatched_labels(c: torch.Tensor, groups: list[LabelGroup], gen: torch.Generator | None = None,
                      p_other: float = 0.5) -> torch.Tensor:
    """c: [N, c_dim] → wrong labels [N, c_dim]: with probability ``p_other`` another batch
    image's labels (a shift of the batch, so never the image itself), else one attribute
    changed; rows where the other image happens to share the labels get a change instead."""
    n = len(c)
    changed = change_one_attribute(c, groups, gen)
    if n < 2:
        return changed
    shift = int(torch.randint(1, n, [], generator=gen))
    other = c.roll(shift, dims=0)
    use_other = (torch.rand([n], generator=gen) < p_other).to(c.device)
    use_other &= (other != c).any(dim=1)
    return torch.where(use_other[:, None], other, changed)


def interpolated_labels(c: torch.Tensor, beta: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """c: [N, c_dim] → β·c + (1−β)·c[perm] for a random permutation of the batch
    (each row on the segment between two batch images' labels)."""
    perm = torch.randperm(len(c), generator=gen).to(c.device)
    return beta * c + (1 - beta) * c[perm]
