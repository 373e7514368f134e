"""Keyframes: where a latent path stops. A keyframe is a seed, or a saved latent (``.npz``).

Every latent command (interpolate, mix, truncation-grid) reads its characters through here,
so ``--seeds 0,5,walk.npz`` means the same thing everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch

from ..errors import UserError
from .files import Latent, load_latent
from . import parse_seeds, seeds_to_z

Keyframe = Union[int, Latent]


def parse_keyframes(text: str | Sequence[int | str | Path | Latent]) -> list[Keyframe]:
    """'0,5,a.npz,7-9' → [0, 5, Latent(a.npz), 7, 8, 9]. Items may also be given as a list
    (ints, paths to .npz files, or Latent objects)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    keys: list[Keyframe] = []
    for item in items:
        if isinstance(item, Latent):
            keys.append(item)
        elif isinstance(item, Path) or (isinstance(item, str) and item.strip().lower().endswith(".npz")):
            keys.append(load_latent(Path(str(item).strip())))
        else:
            keys.extend(parse_seeds(item if isinstance(item, str) else int(item)))
    if not keys:
        raise UserError("no keyframes given: use seeds like 0,5,9 or saved latents like a.npz")
    return keys


def parse_keyframe_groups(texts: str | Sequence[str]) -> list[list[Keyframe]]:
    """One keyframe list per text: ['0,5,9', '1,6,10'] → [[0, 5, 9], [1, 6, 10]] (grid cells' paths)."""
    return [parse_keyframes(t) for t in ([texts] if isinstance(texts, str) else texts)]


def keyframe_z(G, key: Keyframe) -> torch.Tensor:
    """The z of a keyframe: [z_dim] float32 on G's device. A saved w has none: UserError."""
    if isinstance(key, int):
        return seeds_to_z([key], G.z_dim, G.device)[0]
    if key.z is None:
        raise UserError("a keyframe holds only w (a projected latent): interpolate it in w space (--space w)")
    if key.z.shape[0] != G.z_dim:
        raise UserError(f"saved z has {key.z.shape[0]} values, this network takes z_dim = {G.z_dim}")
    return key.z.to(G.device, torch.float32)


@torch.no_grad()
def keyframe_ws(G, key: Keyframe, psi: float = 1.0, cutoff: int | None = None,
                c: torch.Tensor | None = None) -> torch.Tensor:
    """The ws of a keyframe: [num_ws, w_dim]. Seeds and saved z are mapped and truncated with psi;
    a saved w is used as it is (projection already found it in truncated space).

    c: [1, c_dim] labels for seeds on conditional networks, None for each seed's own
    (``editing.tags.seed_labels``); a saved latent uses its own c."""
    if isinstance(key, int):
        return G.mapping(keyframe_z(G, key)[None], keyframe_c(G, key, c), psi=psi, cutoff=cutoff)[0]
    if key.z is not None and key.c is None and c is not None:
        key = Latent(w=key.w, z=key.z, c=c[0].cpu(), noise=key.noise)
    return key.ws(G, psi=psi, cutoff=cutoff)[0]


def keyframe_c(G, key: Keyframe, c: torch.Tensor | None = None) -> torch.Tensor | None:
    """The labels [1, c_dim] a keyframe is drawn with on a conditional network: ``c`` when given,
    else a saved latent's own, else the seed's own; None on unconditional networks."""
    if not G.c_dim:
        return None
    if c is not None:
        return c.to(G.device)
    if not isinstance(key, int):
        if key.c is None:
            raise UserError("a saved latent without labels on a conditional network: give its labels "
                            "(--labels / --tags)")
        return key.c.reshape(1, -1).to(G.device, torch.float32)
    from ..editing.tags import seed_labels   # editing sits above latents: imported when needed
    return seed_labels(G, [key]).to(G.device)


def keyframe_name(key: Keyframe) -> str:
    """A short caption: the seed, or 'latent'."""
    return f"seed {key}" if isinstance(key, int) else "latent"
