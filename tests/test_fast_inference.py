"""The inference path (no gradients) computes the reference layers' function; keeping freed
memory in malloc changes no result."""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch

from stylegan_anime.ops import kernels
from stylegan_anime.networks import Generator
from stylegan_anime.networks.fast_modconv import demod_coefficients, transposed_weight, upsample_conv2d, upsample_image
from stylegan_anime.networks.resample_conv import conv2d_resample

from conftest import randomize_buffers, small_g_config


def _both_paths(G: Generator, z: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference, inference path): parameters requiring grad under grad mode take the reference layers."""
    G.requires_grad_(True)
    ref = G(z, **kw)
    with torch.no_grad():
        fast = G(z, **kw)
    assert ref.requires_grad and not fast.requires_grad
    return ref.detach(), fast


@pytest.mark.parametrize("overrides", [
    {}, {"architecture": "resnet"}, {"conv_clamp": 0.5},
    {"img_resolution": 64, "channel_base": 2048, "channel_max": 64},
])
@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_inference_path_equals_reference_layers(overrides, noise_mode):
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config(**overrides))).eval()
    ref, fast = _both_paths(G, torch.randn(3, G.z_dim), noise_mode=noise_mode, psi=0.7)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_inference_path_takes_explicit_per_sample_noise(small_G):
    noise = [torch.randn(3, 1, layer.resolution, layer.resolution) for layer in small_G.synthesis.noise_layers()]
    ref, fast = _both_paths(small_G, torch.randn(3, small_G.z_dim), noise=noise)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_demodulation_by_matmul_equals_the_modulated_weight_norm():
    weight, styles = torch.randn(16, 8, 3, 3, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    w = weight.unsqueeze(0) * styles.reshape(5, 1, 8, 1, 1)
    expected = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    torch.testing.assert_close(demod_coefficients(weight, styles), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("separable", [False, True])  # a 1-D filter takes the fallback path
@pytest.mark.parametrize("groups,k", [(1, 3), (2, 3), (1, 1)])
def test_upsample_conv_equals_conv2d_resample(groups, k, separable):
    torch.manual_seed(0)
    x, w = torch.randn(groups, 6 * 1, 7, 7).reshape(1, groups * 6, 7, 7), torch.randn(groups * 4, 6, k, k)
    f = kernels.setup_filter([1, 3, 3, 1], separable=separable)
    b = torch.randn(4)
    ref = conv2d_resample(x, w, f, up=2, padding=k // 2, groups=groups, flip_weight=False)
    ref = ref + b.repeat(groups).reshape(1, -1, 1, 1)
    w_t = transposed_weight(w, groups)
    assert transposed_weight(w_t, groups).equal(w)
    torch.testing.assert_close(upsample_conv2d(x, w_t, f, 2, k // 2, groups=groups, bias=b), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 1], [1, 2, 1], [1, 4, 6, 4, 1]])
def test_upsample_image_equals_upsample2d(taps):
    torch.manual_seed(0)
    f, img = kernels.setup_filter(taps), torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(upsample_image(img, f), kernels.upsample2d(img, f), rtol=1e-5, atol=1e-6)


def test_inference_path_follows_weight_updates(small_G):
    z = torch.randn(2, small_G.z_dim)
    small_G.requires_grad_(False)
    before = small_G(z)
    with torch.no_grad():
        for layer in small_G.synthesis.noise_layers():
            layer.weight[:, : layer.weight.shape[1] // 2].mul_(3)  # changes the demodulation
    ref, fast = _both_paths(small_G, z)
    assert not torch.allclose(fast, before, atol=1e-3)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    clone = copy.deepcopy(small_G).requires_grad_(False)
    with torch.no_grad():
        torch.testing.assert_close(clone(z), fast, rtol=0, atol=0)


def test_inference_path_gives_a_sample_alone_what_it_gives_it_in_a_batch(small_G):
    """Upsampling layers modulate weights for one image and activations for a batch."""
    small_G.requires_grad_(False)
    z = torch.randn(4, small_G.z_dim)
    batch = small_G(z)
    for i in range(4):
        alone = small_G(z[i: i + 1])
        torch.testing.assert_close(alone[0], batch[i], rtol=1e-5, atol=1e-5 * batch.abs().max().item())


@pytest.mark.parametrize("ops", ["native", "ref"])
def test_every_synthesis_layer_ends_in_the_layer_epilogue(native_cpu_ops, monkeypatch, ops):
    """Native ops: each synthesis layer's forward ends in one native epilogue call; "ref": in torch's
    ops. The images are the reference layers' either way."""
    from stylegan_anime.ops import layer_epilogue, native_build, native_ops
    calls = []
    real_torch, real_module = layer_epilogue._torch_epilogue, native_ops.native_module

    class Counting:  # the native module, counting its calls
        def __init__(self, module):
            self.module = module

        def layer_epilogue(self, *args):
            calls.append("native")
            return self.module.layer_epilogue(*args)

    def module_for(op, x):
        module = real_module(op, x)
        return Counting(module) if op == "layer_epilogue" and module is not None else module

    monkeypatch.setattr(layer_epilogue, "_torch_epilogue", lambda *a: calls.append("torch") or real_torch(*a))
    monkeypatch.setattr(native_ops, "native_module", module_for)
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config())).eval()
    z = torch.randn(2, G.z_dim)
    with native_build.use_ops(ops):
        ref, fast = _both_paths(G, z, noise_mode="const")
    layers = len(G.synthesis.noise_layers())
    assert calls == [ops if ops == "native" else "torch"] * layers
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
