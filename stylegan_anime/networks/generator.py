"""The generator: mapping network + synthesis network, with the API people meet."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .config import GeneratorConfig
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork


class Generator(nn.Module):
    """z: [N, z_dim] (and c: [N, c_dim]) → images [N, img_channels, R, R] in about [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig | None = None, **kwargs):
        super().__init__()
        cfg = cfg if cfg is not None else GeneratorConfig(**kwargs)
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_multiplier, cfg.w_avg_beta, cfg.label_mode,
                                      cond_aug=cfg.cond_aug)
        self._plans: dict = {}  # kept inference plans (see ``plan``), by device and settings

    @property
    def device(self) -> torch.device:
        return self.mapping.fc0.weight.device

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                noise_mode: str = "const", noise: Sequence[torch.Tensor | None] | None = None,
                update_w_avg: bool = False, grouped: bool = False, ca_sample: bool = False) -> torch.Tensor:
        """psi in [0, 1] is the truncation (1 = none); cutoff: truncate only the first N ws;
        noise_mode: const | random | none; ca_sample: with conditioning augmentation, sample
        the label embedding instead of taking its mean (inference default: the mean)."""
        ws = self.mapping(z, c, psi=psi, cutoff=cutoff, update_w_avg=update_w_avg, ca_sample=ca_sample)
        return self.synthesis(ws, noise_mode=noise_mode, noise=noise, grouped=grouped)

    def plan(self, device: torch.device | str | None = None, batch_size: int = 1):
        """An ``inference.InferencePlan``: every synthesis layer's algorithm decided, and the filters
        derived from the weights prepared, for ``batch_size`` images on ``device`` (this generator's;
        default: where it is). Its ``generate`` / ``synthesize`` run forwards without gradients.

        The plan is kept: later calls return it (or one for another batch size sharing its filters and
        buffers) while the weights are unchanged, so a forward after the first pays no filter transforms
        and no page faults. A weight change makes it stale (running it raises) and the next call builds
        a new one; ``release_plans()`` frees their memory."""
        from ..inference.plan import kept_plan  # the plan sits above the networks it walks
        return kept_plan(self, self._plans, device, batch_size)

    def release_plans(self) -> None:
        """Forget the kept inference plans, freeing their filters and activation buffers."""
        self._plans.clear()

    def __getstate__(self) -> dict:
        # Kept plans hold tensors derived from the weights and scratch memory: neither belongs in a copy
        # (deepcopy for EMA) or a pickle, and a copy's plans would refer to the original's weights.
        state = super().__getstate__()
        state["_plans"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_plans", {})  # pickles from before plans were kept

    def mix(self, w_a: torch.Tensor, w_b: torch.Tensor, layers: str | Sequence[int]) -> torch.Tensor:
        """Style mixing: ws of a with the chosen ws taken from b. w_a, w_b: [N, num_ws, w_dim]
        (or [num_ws, w_dim]). layers: ws indices, or a spec like 'coarse', 'middle,fine', '0-6'
        (see ``style_layers``). Taking the coarse ws from b gives b's pose and face shape with a's colours."""
        from ..latents.style_layers import parse_layers  # the spec parser lives with the latent tools
        idx = parse_layers(layers, self.synthesis) if isinstance(layers, str) else [int(i) for i in layers]
        out = w_a.clone()
        if idx:
            out[..., idx, :] = w_b[..., idx, :]
        return out
