"""oneDNN's transposed conv on a weight laid out once: the same function as ``F.conv_transpose2d``, and
the plan keeps it for its small upsampling layers (and keeps the plain copy where it cannot)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from stylegan_anime.networks import Generator, GeneratorConfig
from stylegan_anime.networks.fast_modconv import transposed_weight
from stylegan_anime.ops import onednn_deconv

from conftest import randomize_buffers

pytestmark = pytest.mark.skipif(not onednn_deconv.available(torch.zeros(1)), reason="a PyTorch build without oneDNN")


@pytest.mark.parametrize("packed_for, x_shape", [
    ((1, 32, 8, 8), (1, 32, 8, 8)),
    ((1, 32, 8, 8), (3, 32, 5, 7)),  # another batch and shape than it was laid out for
    ((2, 32, 4, 4), (2, 32, 4, 4)),
])
@pytest.mark.parametrize("stride", [1, 2])
def test_a_packed_transposed_conv_equals_conv_transpose2d(packed_for, x_shape, stride):
    gen = torch.Generator().manual_seed(0)
    w_t = torch.randn(32, 24, 3, 3, generator=gen)
    x = torch.randn(*x_shape, generator=gen)
    packed = onednn_deconv.pack(w_t, stride, packed_for)
    y = packed(x)
    expected = F.conv_transpose2d(x, w_t, stride=stride)
    assert y.shape == expected.shape
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    assert copy.deepcopy(packed) is packed  # an opaque tensor has no storage to copy


def _up_layers(plan):
    return [lp for lp in plan.layers if lp.up > 1]


def test_the_plan_lays_out_its_direct_upsampling_weights_once_for_onednn(monkeypatch):
    """Config F at 256², one image: the 4² → 32² upsampling layers run oneDNN's transposed conv; the plan
    keeps their weights in its layout, the same images as with the plain transposed copies (which it keeps
    where the layout is not available)."""
    torch.manual_seed(0)
    G = randomize_buffers(Generator(GeneratorConfig(img_resolution=256))).eval().requires_grad_(False)
    z = torch.randn(1, G.z_dim)
    plan = G.plan("cpu", 1)
    direct = [lp for lp in _up_layers(plan) if lp.algorithm == "up_direct"]
    assert [lp.resolution for lp in direct] == [8, 16, 32]
    assert all(isinstance(lp.prepared, onednn_deconv.PackedDeconv) for lp in direct)
    images = plan.generate(z, noise_mode="const")

    monkeypatch.setattr(onednn_deconv, "available", lambda w: False)
    G.release_plans()
    plain = G.plan("cpu", 1)
    kept = [lp.prepared for lp in _up_layers(plain) if lp.algorithm == "up_direct"]
    assert all(isinstance(t, torch.Tensor) and t.shape == (512, 512, 3, 3) for t in kept)
    expected = plain.generate(z, noise_mode="const")
    torch.testing.assert_close(images, expected, rtol=1e-5, atol=2e-5 * expected.abs().max().item())
