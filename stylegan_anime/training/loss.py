"""The StyleGAN2 losses: non-saturating logistic for G and D, lazy R1 on real images,
lazy path-length regularisation with its running mean, and style mixing.

Each ``*_phase`` method runs a forward pass and calls ``backward`` itself (R1 and path
length need ``create_graph`` gradients); ``gain`` is the lazy-regularisation interval, so
that a penalty applied every N steps weighs as much as one applied every step.

The text-to-image methods (all off by default, ``TextMethods``): GAN-CLS (Reed et al. 2016,
the matching-aware D also scores real images with wrong labels as fake), GAN-INT (G also
trains on labels interpolated between two batch images) and conditioning augmentation
(StackGAN: G samples its label embedding, with a KL term to N(0, I)). A label guide
(``label_guide.py``, off by default) adds a frozen classifier's cross-entropy to G's loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics.classifier import LabelGroup
from ..networks import Discriminator, Generator
from ..networks.mapping import kl_to_standard_normal
from .label_guide import LabelGuide
from .label_pairs import groups_for, interpolated_labels, mismatched_labels


@dataclass
class TextMethods:
    """``gan_cls`` λ in [0, 1]: D's loss is softplus(−s_r) + (1−λ)·softplus(s_f) + λ·softplus(s_w)
    (s_r real+right, s_f fake+right, s_w real+wrong logits); λ = 0.5 is the paper's
    log s_r + ½(log(1−s_w) + log(1−s_f)), 0 is off. ``gan_int``: weight of G's extra term on
    interpolated labels (0 = off), ``gan_int_beta`` the β of β·c₁ + (1−β)·c₂. ``ca_kl``: weight of
    the conditioning-augmentation KL term (used when G is built with ``cond_aug``).
    ``groups``: the label layout, so that wrong labels stay valid."""

    gan_cls: float = 0.0
    gan_int: float = 0.0
    gan_int_beta: float = 0.5
    ca_kl: float = 1.0
    groups: list[LabelGroup] = field(default_factory=list)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class StyleGAN2Loss:
    """G, D: the networks being trained; ``augment_pipe``: images → augmented images (or None).

    ``mean_across_ranks`` averages a tensor over data-parallel processes so that the
    path-length mean stays identical on every rank.
    """

    def __init__(self, G: Generator, D: Discriminator, augment_pipe: nn.Module | None = None, r1_gamma: float = 10.0,
                 style_mixing: float = 0.9, pl_weight: float = 2.0, pl_decay: float = 0.01,
                 pl_batch_shrink: int = 2,
                 mean_across_ranks: Callable[[torch.Tensor], torch.Tensor] = _identity,
                 text: TextMethods | None = None, label_guide: LabelGuide | None = None):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.label_guide = label_guide
        self.text = text if text is not None else TextMethods()
        self.r1_gamma, self.style_mixing = r1_gamma, style_mixing
        self.pl_weight, self.pl_decay, self.pl_batch_shrink = pl_weight, pl_decay, pl_batch_shrink
        self.mean_across_ranks = mean_across_ranks
        self.pl_mean = torch.zeros([], device=G.device)

    def run_G(self, z: torch.Tensor, c: torch.Tensor | None, update_w_avg: bool = True):
        """z: [N, z_dim] → (img [N, 3, R, R], ws [N, num_ws, w_dim]); with probability
        ``style_mixing`` the ws after a random cutoff come from a second z."""
        ws = self.G.mapping(z, c, update_w_avg=update_w_avg, ca_sample=True)
        if self.style_mixing > 0:
            num_ws = ws.shape[1]
            cutoff = int(torch.randint(1, num_ws, []).item()) if num_ws > 1 else num_ws
            if torch.rand([]).item() >= self.style_mixing:
                cutoff = num_ws
            ws2 = self.G.mapping(torch.randn_like(z), c, ca_sample=True)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws, noise_mode="random"), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def g_main_phase(self, z: torch.Tensor, c: torch.Tensor | None, gain: float = 1.0) -> dict[str, float]:
        """Non-saturating loss softplus(-D(G(z))), plus GAN-INT's term on interpolated labels,
        the CA KL term and the label guide's cross-entropy when those are on."""
        img, _ = self.run_G(z, c)
        logits = self.run_D(img, c)
        loss = F.softplus(-logits).mean()
        stats = {"loss/G": loss.item(), "scores/fake": logits.mean().item()}
        total = loss
        if c is not None and self.label_guide is not None:
            loss_label = self.label_guide.loss(img, c)
            total = total + loss_label
            stats["loss/G_label"] = loss_label.item()
        if c is not None and self.text.gan_int > 0:
            c_int = interpolated_labels(c, self.text.gan_int_beta)
            img_int, _ = self.run_G(torch.randn_like(z), c_int)
            loss_int = F.softplus(-self.run_D(img_int, c_int)).mean()
            total = total + self.text.gan_int * loss_int
            stats["loss/G_int"] = loss_int.item()
        if c is not None and self.G.mapping.cond_aug and self.text.ca_kl > 0:
            kl = kl_to_standard_normal(*self.G.mapping.embedding_stats(c))
            total = total + self.text.ca_kl * kl
            stats["loss/ca_kl"] = kl.item()
        total.mul(gain).backward()
        return stats

    def g_pl_phase(self, z: torch.Tensor, c: torch.Tensor | None, gain: float) -> dict[str, float]:
        """Path length: | J_w^T y | for image-space noise y should stay near its running mean."""
        n = max(z.shape[0] // self.pl_batch_shrink, 1)
        img, ws = self.run_G(z[:n], c[:n] if c is not None else None)
        noise = torch.randn_like(img) / (img.shape[2] * img.shape[3]) ** 0.5
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        batch_mean = self.mean_across_ranks(lengths.mean().detach())
        self.pl_mean.copy_(self.pl_mean.lerp(batch_mean, self.pl_decay))
        penalty = (lengths - self.pl_mean).square()
        # The zero term keeps the synthesis output in the graph so every parameter gets a gradient.
        (img[:, 0, 0, 0] * 0 + penalty * self.pl_weight).mean().mul(gain).backward()
        return {"loss/pl_penalty": penalty.mean().item(), "pl_mean": self.pl_mean.item()}

    def d_main_phase(self, real: torch.Tensor, real_c: torch.Tensor | None, z: torch.Tensor,
                     c: torch.Tensor | None) -> tuple[dict[str, float], torch.Tensor]:
        """softplus(-s_r) + (1-λ)·softplus(s_f) + λ·softplus(s_w) (λ = ``text.gan_cls``, 0 without
        GAN-CLS: the plain loss). Each term is backpropagated as soon as it is computed, so that
        only one D graph is held at a time. Returns the stats and the real+right logits (their
        signs drive ADA)."""
        cls = self.text.gan_cls if real_c is not None else 0.0
        with torch.no_grad():
            fake, _ = self.run_G(z, c, update_w_avg=False)
        fake_logits = self.run_D(fake, c)
        loss_fake = (1 - cls) * F.softplus(fake_logits).mean()
        loss_fake.backward()
        real_logits = self.run_D(real.detach(), real_c)
        loss_real = F.softplus(-real_logits).mean()
        loss_real.backward()
        stats = {"loss/D": loss_fake.item() + loss_real.item(), "scores/real": real_logits.mean().item()}
        if cls > 0:
            groups = self.text.groups or groups_for(None, real_c.shape[1], real_c)
            wrong_logits = self.run_D(real.detach(), mismatched_labels(real_c, groups))
            loss_wrong = cls * F.softplus(wrong_logits).mean()
            loss_wrong.backward()
            stats["loss/D"] += loss_wrong.item()
            stats["scores/wrong"] = wrong_logits.mean().item()
        return stats, real_logits.detach()

    def d_r1_phase(self, real: torch.Tensor, real_c: torch.Tensor | None, gain: float) -> dict[str, float]:
        """R1 = gamma/2 · |∇_x D(x)|² on real images."""
        real = real.detach().requires_grad_(True)
        logits = self.run_D(real, real_c)
        (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = grads.square().sum([1, 2, 3])
        (logits.squeeze(1) * 0 + penalty * (self.r1_gamma / 2)).mean().mul(gain).backward()
        return {"loss/r1_penalty": penalty.mean().item()}
