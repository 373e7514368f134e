"""Whole networks with the native ops against the same networks on the reference ops: a generator
forward and one training step (``stylegan-anime doctor --check``).

The op-level self-check (``op_check``) compares each kernel on small inputs; this catches what
only shows in use: the layers' arguments, the dispatch between paths, float32 rounding that grows
through a network. Each network is small and random (a 64² generator, a 32² generator and
discriminator for training), built from fixed seeds, so the native and reference runs see the same
weights, inputs, noise and style-mixing draws.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..ops import native_build
from ..networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from ..networks import winograd
from ..ops.op_check import relative_error

# Images: max error relative to the reference's largest magnitude; float32 rounding of each layer
# (about 1e-5 with Winograd convs) grows through the network.
TOLERANCE = 1e-3
# Training: the gradients' relative L2 error. Path-length regularisation differentiates the leaky
# ReLU's derivative, a step, so an activation that float32 rounding moves across the corner changes
# some second-order terms outright: perturbing the reference's weights by 1e-6 moved this step's
# gradients by 2e-3 (one 3x64 toRGB weight by 2 % of its largest entry). Kernel-level errors are
# the op self-check's business; this catches what is wrong by much more (dispatch, arguments).
TRAINING_TOLERANCE = 1e-2


@dataclass(frozen=True)
class NetworkComparison:
    """One network check: max relative error of the native run, and both runs' times."""

    name: str
    error: float
    native_s: float
    ref_s: float
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance  # NaN fails too


@contextlib.contextmanager
def _paths(native: bool) -> Iterator[None]:
    """Native: every op that can run natively does (Winograd convs on every CPU layer they serve);
    reference: plain PyTorch ops and direct convolutions."""
    with native_build.use_ops("auto" if native else "ref"), winograd.use_winograd("always" if native else "off"):
        yield


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def _randomized(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Fresh networks have zero biases and noise strengths; small random ones make those paths count."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.copy_(torch.randn(p.shape, generator=gen).to(p) * 0.1)
    return net


def _generator(device: torch.device, resolution: int, seed: int) -> Generator:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(img_resolution=resolution, z_dim=64, w_dim=64, channel_base=2048, channel_max=64,
                          mapping_layers=2, conv_clamp=256)
    return _randomized(Generator(cfg), seed).to(device)


def _discriminator(device: torch.device, resolution: int, seed: int) -> Discriminator:
    torch.manual_seed(seed)
    cfg = DiscriminatorConfig(img_resolution=resolution, channel_base=1024, channel_max=32, mapping_layers=2,
                              conv_clamp=256)
    return _randomized(Discriminator(cfg), seed).to(device)


GENERATOR_PATHS = {
    "forward": "the plain inference forward (CPU: one-pass layer epilogues and toRGB)",
    "plan": "the generation API's inference plan (CPU: fused Winograd convs, the plan's own buffers)",
    "grouped modconv": "per-sample weights, grouped convs (upfirdn2d and bias_act as training runs them)",
}


def check_generator(device: torch.device, path: str = "forward") -> NetworkComparison:
    """A 64² generator's images for 2 seeds, native vs reference, on one of ``GENERATOR_PATHS``."""
    G = _generator(device, 64, seed=0).eval()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)).to(device)

    def run(native: bool):
        with _paths(native), torch.no_grad():
            if path == "plan":  # built under the paths' switches: its algorithms follow them
                return G.plan(device, 2).generate(z, psi=0.8, noise_mode="const")
            return G(z, psi=0.8, noise_mode="const", grouped=path == "grouped modconv")

    run(True)  # the first call builds / loads and self-checks the ops; time the second
    native, native_s = _timed(lambda: run(True))
    ref, ref_s = _timed(lambda: run(False))
    return NetworkComparison(f"generator 64², {path}", relative_error(native, ref), native_s, ref_s)


def _training_gradients(device: torch.device, native: bool) -> dict[str, torch.Tensor]:
    """Every parameter's gradient after one training step's four phases (G main, path length,
    D main, R1), from fresh networks and the same random draws."""
    from ..training.loss import StyleGAN2Loss

    G, D = _generator(device, 16, seed=2), _discriminator(device, 16, seed=3)
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0, pl_batch_shrink=1)
    torch.manual_seed(4)  # style mixing, noise and path-length draws: the same in both runs
    real = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5)).to(device)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(6)).to(device)
    with _paths(native):
        loss.g_main_phase(z, None)
        loss.g_pl_phase(z, None, gain=4.0)
        loss.d_main_phase(real, None, z, None)
        loss.d_r1_phase(real, None, gain=16.0)
    return {f"{net}.{name}": p.grad for net, module in (("G", G), ("D", D))
            for name, p in module.named_parameters() if p.grad is not None}


def gradient_error(native: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> float:
    """|native - ref| / |ref| over all the gradients together (inf if different parameters got one)."""
    if native.keys() != ref.keys():
        return float("inf")
    a = torch.cat([native[k].detach().double().flatten() for k in ref])
    e = torch.cat([ref[k].detach().double().flatten() for k in ref])
    return ((a - e).norm() / e.norm().clamp_min(1e-30)).item()


def check_training_step(device: torch.device) -> NetworkComparison:
    """One training step's parameter gradients (second-order terms included), native vs reference."""
    native, native_s = _timed(lambda: _training_gradients(device, True))
    ref, ref_s = _timed(lambda: _training_gradients(device, False))
    return NetworkComparison("training step, 16²", gradient_error(native, ref), native_s, ref_s, TRAINING_TOLERANCE)


def check_networks(device: torch.device) -> list[NetworkComparison]:
    """The generator on each of its paths and a training step on ``device``."""
    return [*(check_generator(device, path) for path in GENERATOR_PATHS), check_training_step(device)]
