"""Mapping network: z (and labels c) → w, with the tracked average w for truncation."""
from __future__ import annotations

import torch
from torch import nn

from .layers import FullyConnectedLayer, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """z: [N, z_dim], c: [N, c_dim] → ws: [N, num_ws, w_dim] (or [N, w_dim] when num_ws is None).

    Labels are embedded by a dense layer and normalised like z, then concatenated
    with z (the conditional StyleGAN2 variant). With ``z_dim == 0`` it maps labels
    alone (the discriminator's projection head uses it so).

    ``cond_aug`` (conditioning augmentation, StackGAN): the embedding layer gives a mean μ and
    a log-variance log σ² per feature; ``ca_sample=True`` (training) feeds μ + σ·ε, ε ~ N(0, I),
    so that nearby label vectors map to overlapping embeddings; otherwise μ is used, so that
    inference stays deterministic. ``kl_to_standard_normal`` gives the matching KL term.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995, label_mode: str = "embed",
                 cond_aug: bool = False):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta, self.label_mode = num_layers, w_avg_beta, label_mode
        self.cond_aug = cond_aug and c_dim > 0
        embed_features = (z_dim if label_mode == "concat" else w_dim) if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            # With CA the layer's second half is log σ²: one layer, so old files differ only in its height.
            self.embed = FullyConnectedLayer(c_dim, embed_features * (2 if self.cond_aug else 1),
                                             bias=(label_mode != "concat"))
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, psi: float = 1.0,
                cutoff: int | None = None, update_w_avg: bool = False, ca_sample: bool = False) -> torch.Tensor:
        """psi in [0, 1] (any float works): ws[:, :cutoff] = w_avg + psi * (w - w_avg).
        ``ca_sample``: with conditioning augmentation, sample the label embedding (else its mean)."""
        if self.c_dim > 0 and (c is None or c.shape[-1] != self.c_dim):
            raise ValueError(f"this network needs labels c: [N, {self.c_dim}]")
        if self.label_mode == "concat" and self.c_dim > 0:
            x = normalize_2nd_moment(torch.cat([z.to(torch.float32), self.label_embedding(c, ca_sample)], dim=1))
            return self._layers_and_broadcast(x, psi, cutoff, update_w_avg)
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.label_embedding(c, ca_sample)))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return self._layers_and_broadcast(x, psi, cutoff, update_w_avg)

    def embedding_stats(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """c: [N, c_dim] → (μ, log σ²), each [N, embed features]; without CA log σ² is None."""
        e = self.embed(c.to(torch.float32))
        if not self.cond_aug:
            return e, None
        mu, logvar = e.chunk(2, dim=1)
        return mu, logvar

    def label_embedding(self, c: torch.Tensor, ca_sample: bool = False) -> torch.Tensor:
        """c: [N, c_dim] → the embedding [N, features]: μ, or with ``ca_sample`` μ + σ·ε."""
        mu, logvar = self.embedding_stats(c)
        if logvar is None or not ca_sample:
            return mu
        return mu + torch.randn_like(mu) * logvar.mul(0.5).exp()

    def _layers_and_broadcast(self, x: torch.Tensor, psi: float, cutoff: int | None,
                              update_w_avg: bool) -> torch.Tensor:
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg and self.w_avg_beta is not None and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return self.truncate(ws, psi, cutoff)

    def truncate(self, ws: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """ws: [N, num_ws, w_dim] → same, the first ``cutoff`` ws (all if None) pulled towards w_avg."""
        if psi == 1:
            return ws
        ws = ws.clone()
        end = self.num_ws if cutoff is None else cutoff
        ws[:, :end] = self.w_avg.lerp(ws[:, :end], psi)
        return ws


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over features, averaged over the batch:
    ½ Σ (μ² + σ² − 1 − log σ²). mu, logvar: [N, F] → scalar ≥ 0 (0 iff μ = 0, σ = 1)."""
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(dim=1).mean()
