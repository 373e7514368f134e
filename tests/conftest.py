"""Shared fixtures: small networks that build in milliseconds."""
from __future__ import annotations

import pytest
import torch

from stylegan_anime.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig


def small_g_config(**overrides) -> GeneratorConfig:
    base = dict(img_resolution=32, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2)
    base.update(overrides)
    return GeneratorConfig(**base)


def small_d_config(**overrides) -> DiscriminatorConfig:
    base = dict(img_resolution=32, channel_base=512, channel_max=32, mapping_layers=2)
    base.update(overrides)
    return DiscriminatorConfig(**base)


def randomize_buffers(G: Generator, seed: int = 0) -> Generator:
    """Fresh networks have zero noise strengths and w_avg; give them values so tests can see them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.copy_(torch.rand([], generator=gen) * 0.5 + 0.1)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        G.mapping.w_avg.copy_(torch.randn(G.mapping.w_avg.shape, generator=gen))
    return G


@pytest.fixture
def small_G() -> Generator:
    torch.manual_seed(0)
    return randomize_buffers(Generator(small_g_config())).eval()


@pytest.fixture
def small_D() -> Discriminator:
    torch.manual_seed(1)
    return Discriminator(small_d_config()).eval()
