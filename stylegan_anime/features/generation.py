"""Seeds → images: the batched, progress-reporting loop behind ``generate``."""
from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..latents import parse_seeds, seeds_to_tf_inputs, seeds_to_z
from ..networks import Generator
from ..inference import InferencePlan
from ..networks.modulated_conv import NOISE_MODES
from ..errors import UserError

# "tf-seed": each seed also draws every noise input, as the official TF run_generator.py did.
GENERATION_NOISE_MODES = NOISE_MODES + ("tf-seed",)


@torch.no_grad()
def generate_images(G: Generator, seeds: Sequence[int] | str, psi: float = 1.0, cutoff: int | None = None,
                    noise_mode: str = "const", c: torch.Tensor | None = None, batch_size: int = 8,
                    progress: bool = False) -> torch.Tensor:
    """One image per seed: [N, C, R, R] float in [-1, 1] on the CPU.

    noise_mode: const | random | none | tf-seed (the official TF release's images: z and then
    every noise buffer drawn from RandomState(seed)).

    c: [N, c_dim] or [1, c_dim] labels for conditional networks; None draws each seed's labels
    from the seed (``editing.tags.seed_labels``). Each image depends only on its own seed, not on
    the batch it was drawn in.
    """
    if noise_mode not in GENERATION_NOISE_MODES:
        raise UserError(f"noise mode must be one of {', '.join(GENERATION_NOISE_MODES)}, got {noise_mode!r}")
    if cutoff is not None and not 0 <= cutoff <= G.num_ws:
        raise UserError(f"cutoff {cutoff} is out of range: this network has {G.num_ws} ws")
    seeds = parse_seeds(seeds)
    noise = None
    if noise_mode == "tf-seed":
        z, noise = seeds_to_tf_inputs(seeds, G.z_dim, [l.resolution for l in G.synthesis.noise_layers()])
    else:
        z = seeds_to_z(seeds, G.z_dim)
    if c is None and G.c_dim:
        from ..editing.tags import seed_labels
        c = seed_labels(G, seeds)
    if c is not None and c.shape[0] == 1:
        c = c.expand(len(seeds), -1)
    out = []
    plan = G.plan(G.device, min(batch_size, len(seeds))) if seeds else None
    for i in tqdm(range(0, len(seeds), batch_size), desc="generate", unit="batch", disable=not progress):
        zb = z[i: i + batch_size].to(G.device)
        cb = c[i: i + batch_size].to(G.device) if c is not None else None
        nb = [n[i: i + batch_size].to(G.device) for n in noise] if noise is not None else None
        mode = "const" if noise is not None else noise_mode
        out.append(plan.for_batch(zb.shape[0]).generate(zb, cb, psi=psi, cutoff=cutoff, noise_mode=mode,
                                                        noise=nb).cpu())
    return torch.cat(out) if out else torch.zeros([0, G.img_channels, G.img_resolution, G.img_resolution])


@torch.no_grad()
def synthesize(G: Generator, ws: torch.Tensor, noise_mode: str = "const", batch_size: int = 8) -> torch.Tensor:
    """ws: [N, num_ws, w_dim] → images [N, C, R, R] in [-1, 1] on the CPU, ``batch_size`` at a time."""
    if noise_mode not in NOISE_MODES:
        raise UserError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    return synthesize_with_plan(G.plan(G.device, max(1, min(batch_size, ws.shape[0]))), ws, noise_mode)


def synthesize_with_plan(plan: InferencePlan, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
    """ws: [N, num_ws, w_dim] → images [N, C, R, R] on the CPU, ``plan.batch_size`` at a time (the
    last batch by a plan for its size, sharing the plan's filters)."""
    G, step = plan.generator, plan.batch_size
    out = [plan.for_batch(min(step, ws.shape[0] - i)).synthesize(ws[i: i + step].to(G.device), noise_mode).cpu()
           for i in range(0, ws.shape[0], step)]
    return torch.cat(out) if out else torch.zeros([0, G.img_channels, G.img_resolution, G.img_resolution])
