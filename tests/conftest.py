"""Shared fixtures: small networks that build in milliseconds."""
from __future__ import annotations

import contextlib

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


ALLOW_NO_NATIVE_ENV = "STYLEGAN_ANIME_ALLOW_NO_NATIVE"


@pytest.fixture(scope="session")
def native_cpu_ops() -> dict:
    """Every CPU extension, built once per test run (in parallel) into $TORCH_EXTENSIONS_DIR.

    A machine with a compiler must build them, so a failure fails the tests that need them,
    unless $STYLEGAN_ANIME_ALLOW_NO_NATIVE=1 says this environment may lack a toolchain.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from stylegan_anime.ops import native_build

    def build(op):
        try:
            return op, native_build.load(op, "cpu"), None
        except native_build.BuildError as e:
            return op, None, str(e)

    with native_build.use_ops("native"), ThreadPoolExecutor(len(native_build.OPS)) as pool:
        results = list(pool.map(build, native_build.OPS))
    failures = [f"{op}: {err}" for op, module, err in results if module is None]
    if failures:
        message = "native CPU ops did not build: " + "; ".join(failures)
        if os.environ.get(ALLOW_NO_NATIVE_ENV) == "1":
            pytest.skip(message)
        pytest.fail(message)
    return {op: module for op, module, _ in results}


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    # Tiny networks: thread hand-offs cost more than they save, and on a loaded 2-core machine two
    # spinning OpenMP threads make each pass many times slower.
    with torch_threads(1):
        yield
