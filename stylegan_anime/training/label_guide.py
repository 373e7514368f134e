"""A label guide: a frozen attribute classifier whose cross-entropy on G's images, against the
labels G was asked for, is added to G's loss (AC-GAN's auxiliary term, Odena et al. 2017, with
the classifier trained beforehand on the training set instead of sharing D's trunk).

Why: the projection discriminator alone teaches the large attributes (hair colour, hat) within
~70 kimg at 64² but leaves the small ones (eye colour, glasses, mouth) at chance, because D's
real/fake score barely depends on them. The guide gives G a gradient for every attribute from
the first step. It must be a different network from the judge of ``benchmarks/quality.py``
(trained on held-out images), or the benchmark would grade G against its own teacher.

G's images are shifted by a few random pixels before the classifier sees them, so that G cannot
satisfy the guide with a fixed pixel pattern the classifier happens to read as "glasses".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..metrics.classifier import AttributeClassifier, load_classifier


class LabelGuide:
    """``classifier``: frozen, labels in the generator's layout; ``weight`` ≥ 0 multiplies its
    loss; ``max_shift``: the largest random translation in pixels (0 = none)."""

    def __init__(self, classifier: AttributeClassifier, weight: float = 1.0, max_shift: int = 2):
        self.classifier = classifier.eval().requires_grad_(False)
        self.weight, self.max_shift = weight, max_shift

    @classmethod
    def load(cls, path: str, G, device: torch.device, weight: float) -> "LabelGuide":
        """The classifier at ``path``, checked against the label layout of the conditional ``G``."""
        from ..editing.tags import network_label_names
        model = load_classifier(path, device)
        label_names = network_label_names(G)
        if list(model.cfg.label_names) != list(label_names):
            raise UserError(f"--label-guide {path}: its labels ({len(model.cfg.label_names)}) are not the "
                            f"network's ({len(label_names)}, {', '.join(label_names[:3])}, ...): train it on the "
                            f"same data set")
        return cls(model, weight)

    def shifted(self, img: torch.Tensor) -> torch.Tensor:
        """img: [N, C, H, W] → the same images translated by one random (dy, dx) in
        [-max_shift, max_shift]², edges replicated."""
        s = self.max_shift
        if s <= 0:
            return img
        dy, dx = (int(v) for v in torch.randint(-s, s + 1, [2]))
        padded = F.pad(img, [s, s, s, s], mode="replicate")
        h, w = img.shape[-2:]
        return padded[..., s + dy:s + dy + h, s + dx:s + dx + w]

    def loss(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """img: [N, 3, R, R] in [-1, 1] (with gradients to G), c: [N, c_dim] 0/1 → weighted loss []."""
        logits = self.classifier(self.shifted(img))
        return self.weight * self.classifier.loss(logits, c)
