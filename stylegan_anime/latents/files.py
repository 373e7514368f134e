"""Saved latents (``.npz``): what ``project`` writes and every latent command reads as a keyframe.

A file holds at least one of
- ``w``: [num_ws, w_dim] float32, the per-layer ws (already truncated, as projection finds them), or
- ``z``: [z_dim] float32, an input latent (mapped, and truncated, by whoever reads it);
and optionally ``noise_<i>``: [1, 1, res, res] per noise layer, and ``c``: [c_dim] labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..io.atomic import save_npz
from ..errors import UserError


@dataclass
class Latent:
    """One saved latent. w: [num_ws, w_dim] or None; z: [z_dim] or None; noise: per-layer tensors."""

    w: torch.Tensor | None = None
    z: torch.Tensor | None = None
    c: torch.Tensor | None = None
    noise: list[torch.Tensor] = field(default_factory=list)

    def ws(self, G, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """The latent as ws for ``G``: [1, num_ws, w_dim] (a z is mapped and truncated with psi)."""
        if self.w is not None:
            if tuple(self.w.shape) != (G.num_ws, G.w_dim):
                raise UserError(f"saved w has shape {tuple(self.w.shape)}, this network needs "
                                f"[{G.num_ws}, {G.w_dim}]")
            return self.w.unsqueeze(0).to(G.device)
        if self.z.shape[0] != G.z_dim:
            raise UserError(f"saved z has {self.z.shape[0]} values, this network takes z_dim = {G.z_dim}")
        c = self.c.unsqueeze(0).to(G.device) if self.c is not None else None
        with torch.no_grad():
            return G.mapping(self.z.unsqueeze(0).to(G.device), c, psi=psi, cutoff=cutoff)


def save_latent(latent: Latent, path: str | Path) -> Path:
    """Write ``latent`` to ``path`` (.npz) atomically."""
    if latent.w is None and latent.z is None:
        raise ValueError("a latent needs w or z")
    arrays: dict[str, np.ndarray] = {}
    for name in ("w", "z", "c"):
        t = getattr(latent, name)
        if t is not None:
            arrays[name] = t.detach().cpu().float().numpy()
    for i, n in enumerate(latent.noise):
        arrays[f"noise_{i}"] = n.detach().cpu().float().numpy()
    return save_npz(path, arrays)


def load_latent(path: str | Path) -> Latent:
    """Read a latent written by ``save_latent``; UserError for anything else."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: torch.from_numpy(data[k].astype(np.float32)) for k in data.files}
    except FileNotFoundError:
        raise UserError(f"no such latent file: {path}") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path.name} is not a latent .npz file ({str(e).splitlines()[0]})") from None
    if "w" not in arrays and "z" not in arrays:
        raise UserError(f"{path.name} holds neither w nor z (found: {', '.join(sorted(arrays)) or 'nothing'})")
    w, z = arrays.get("w"), arrays.get("z")
    if w is not None and w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w is not None and w.ndim != 2:
        raise UserError(f"{path.name}: w must be [num_ws, w_dim], got shape {tuple(w.shape)}")
    noise = [arrays[f"noise_{i}"] for i in range(len(arrays)) if f"noise_{i}" in arrays]
    return Latent(w=w, z=z.reshape(-1) if z is not None else None, c=arrays.get("c"), noise=noise)
