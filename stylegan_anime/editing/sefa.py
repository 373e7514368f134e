"""SeFa (closed-form factorisation): unsupervised directions in w from the style-affine weights alone.

Each modulated convolution turns w into its styles through an affine map s = A w + b. Moving w by
n changes the styles of the chosen layers by A n, where A stacks those layers' weight matrices
[Σ channels, w_dim]; the unit n that changes them most maximises |A n|², i.e. is the top
eigenvector of AᵀA, the next one the second, and so on (Shen & Zhou, "Closed-Form Factorization of
Latent Semantics in GANs", 2021). No classifier and no sampled images find them. Layers are given
as ws indices (``latents.style_layers.parse_layers``: "all", "coarse", "0-3", ...); ws index i is
read by the i-th modulated convolution, and the last index, read only by the final to-RGB layer,
adds no convolution.

Only the directions' scale is measured: ``std`` (what strength 1 means, as for regression
directions) is the spread of w along each direction over ``std_samples`` mapped z (mapping network
only). An eigenvector's sign is arbitrary; it is fixed so that its largest component is positive.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import UserError
from ..latents import seeds_to_z
from ..latents.style_layers import parse_layers
from .directions import Directions


def style_weights(G, layers: Sequence[int]) -> torch.Tensor:
    """The stacked style-affine weights of the convolutions reading ws ``layers`` → A [Σ channels, w_dim],
    with each layer's weight gain applied (A w + b is the styles)."""
    convs = G.synthesis.noise_layers()
    chosen = [convs[i] for i in layers if i < len(convs)]
    if not chosen:
        raise UserError(f"ws {', '.join(map(str, layers))} drive no convolution "
                        f"(this network's convolutions read ws 0-{len(convs) - 1})")
    return torch.cat([c.affine.weight.detach().double() * c.affine.weight_gain for c in chosen]).cpu()


@torch.no_grad()
def w_spread(G, vectors: torch.Tensor, samples: int = 2000, seed: int = 0) -> torch.Tensor:
    """Std of w along each of ``vectors`` [K, w_dim] over seeds seed..seed+samples-1 → [K]."""
    z = seeds_to_z(list(range(seed, seed + samples)), G.z_dim).to(G.device)
    c = None
    if G.c_dim:
        from .tags import seed_labels
        c = seed_labels(G, list(range(seed, seed + samples))).to(G.device)
    w = G.mapping(z, c)[:, 0].double().cpu()
    return ((w - w.mean(0)) @ vectors.double().T).std(dim=0).float()


def sefa_directions(G, layers: str | Sequence[int] = "all", count: int = 5, std_samples: int = 2000
                    ) -> Directions:
    """The ``count`` leading SeFa directions of ``layers`` → Directions named sefa0, sefa1, ... (strongest
    first), method "sefa", edits restricted to ``layers``, eigenvalues of AᵀA recorded."""
    idx = parse_layers(layers, G.synthesis) if isinstance(layers, str) else sorted(set(int(i) for i in layers))
    if not idx:
        raise UserError("SeFa needs at least one layer")
    if any(i < 0 or i >= G.synthesis.num_ws for i in idx):
        raise UserError(f"layers must lie in 0-{G.synthesis.num_ws - 1}, got {idx}")
    a = style_weights(G, idx)
    if count < 1 or count > a.shape[1]:
        raise UserError(f"count must be between 1 and w_dim = {a.shape[1]}, got {count}")
    eigenvalues, eigenvectors = torch.linalg.eigh(a.T @ a)          # ascending
    order = torch.argsort(eigenvalues, descending=True)[:count]
    vectors = eigenvectors[:, order].T                              # [count, w_dim], unit rows
    rows = torch.arange(count)
    vectors = vectors * vectors[rows, vectors.abs().argmax(dim=1)].sign()[:, None]
    std = w_spread(G, vectors, std_samples)
    return Directions([f"sefa{i}" for i in range(count)], vectors.float(), std, method="sefa", layers=tuple(idx),
                      eigenvalues=eigenvalues[order].float())
