"""The StyleGAN2 losses: non-saturating logistic for G and D, lazy R1 on real images,
lazy path-length regularisation with its running mean, and style mixing.

Each ``*_phase`` method runs a forward pass and calls ``backward`` itself (R1 and path
length need ``create_graph`` gradients); ``gain`` is the lazy-regularisation interval, so
that a penalty applied every N steps weighs as much as one applied every step.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..networks import Discriminator, Generator


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
                 mean_across_ranks: Callable[[torch.Tensor], torch.Tensor] = _identity):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.r1_gamma, self.style_mixing = r1_gamma, style_mixing
        self.pl_weight, self.pl_decay, self.pl_batch_shrink = pl_weight, pl_decay, pl_batch_shrink
        self.mean_across_ranks = mean_across_ranks
        self.pl_mean = torch.zeros([], device=G.device)

    def run_G(self, z: torch.Tensor, c: torch.Tensor | None, update_w_avg: bool = True):
        """z: [N, z_dim] → (img [N, 3, R, R], ws [N, num_ws, w_dim]); with probability
        ``style_mixing`` the ws after a random cutoff come from a second z."""
        ws = self.G.mapping(z, c, update_w_avg=update_w_avg)
        if self.style_mixing > 0:
            num_ws = ws.shape[1]
            cutoff = int(torch.randint(1, num_ws, []).item()) if num_ws > 1 else num_ws
            if torch.rand([]).item() >= self.style_mixing:
                cutoff = num_ws
            ws2 = self.G.mapping(torch.randn_like(z), c)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws, noise_mode="random"), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def g_main_phase(self, z: torch.Tensor, c: torch.Tensor | None, gain: float = 1.0) -> dict[str, float]:
        """Non-saturating loss softplus(-D(G(z)))."""
        img, _ = self.run_G(z, c)
        logits = self.run_D(img, c)
        loss = F.softplus(-logits).mean()
        loss.mul(gain).backward()
        return {"loss/G": loss.item(), "scores/fake": logits.mean().item()}

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
        """softplus(D(G(z))) + softplus(-D(x)). Returns the stats and the real logits
        (their signs drive ADA)."""
        with torch.no_grad():
            fake, _ = self.run_G(z, c, update_w_avg=False)
        fake_logits = self.run_D(fake, c)
        loss_fake = F.softplus(fake_logits).mean()
        loss_fake.backward()
        real_logits = self.run_D(real.detach(), real_c)
        loss_real = F.softplus(-real_logits).mean()
        loss_real.backward()
        return {"loss/D": loss_fake.item() + loss_real.item(), "scores/real": real_logits.mean().item()}, \
            real_logits.detach()

    def d_r1_phase(self, real: torch.Tensor, real_c: torch.Tensor | None, gain: float) -> dict[str, float]:
        """R1 = gamma/2 · |∇_x D(x)|² on real images."""
        real = real.detach().requires_grad_(True)
        logits = self.run_D(real, real_c)
        (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = grads.square().sum([1, 2, 3])
        (logits.squeeze(1) * 0 + penalty * (self.r1_gamma / 2)).mean().mul(gain).backward()
        return {"loss/r1_penalty": penalty.mean().item()}
