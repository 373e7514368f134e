"""Winograd 3×3 convolutions (NNPACK) for the inference path: the same function as the direct
convolution up to float32 rounding, chosen only where the rule says, and off when asked."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylegan_anime.networks import Generator, winograd

from conftest import randomize_buffers, small_g_config

needs_nnpack = pytest.mark.skipif(not winograd.nnpack_available(), reason="this torch has no usable NNPACK")
# Winograd F(6x6, 3x3) in float32 rounds to about 2e-5 of the largest output (measured 1e-5 – 1.7e-5).
TOL = 1e-4


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@needs_nnpack
@pytest.mark.parametrize("shape", [(1, 8, 5, 7), (3, 16, 12, 9), (2, 64, 33, 20)])
def test_conv3x3_with_shared_weights_equals_the_direct_convolution(shape):
    torch.manual_seed(0)
    x, w, b = torch.randn(shape), torch.randn(11, shape[1], 3, 3), torch.randn(11)
    ref = F.conv2d(x.double(), w.double(), b.double(), padding=1)
    y = winograd.nnpack_conv3x3(x, w, b)
    assert y.shape == ref.shape and _rel_err(y, ref) < TOL


@needs_nnpack
def test_conv3x3_with_per_sample_weights_convolves_each_sample_with_its_own():
    torch.manual_seed(1)
    x, w = torch.randn(3, 6, 10, 10), torch.randn(3, 5, 6, 3, 3)
    y = winograd.nnpack_conv3x3(x, w)
    for i in range(3):
        ref = F.conv2d(x[i: i + 1].double(), w[i].double(), padding=1)
        assert _rel_err(y[i: i + 1], ref) < TOL
    # One image per call: a sample's result does not depend on the rest of the batch.
    assert torch.equal(winograd.nnpack_conv3x3(x[1:2], w[1:2]), y[1:2])
    with pytest.raises(ValueError, match="per-sample weights for 2 samples"):
        winograd.nnpack_conv3x3(x, w[:2])


@needs_nnpack
def test_the_rule_takes_large_float32_cpu_layers_only():
    big = torch.empty(1, 256, 64, 64)
    with winograd.use_winograd("auto"):
        assert winograd.usable(big, 3, 1, 256)
        assert not winograd.usable(big, 3, 1, 64)                          # too little work
        assert not winograd.usable(torch.empty(1, 512, 32, 32), 3, 1, 512)  # too few pixels
        assert not winograd.usable(big.double(), 3, 1, 256)
        assert not winograd.usable(big, 1, 0, 256) and not winograd.usable(big, 3, 0, 256)
    with winograd.use_winograd("off"):
        assert not winograd.usable(big, 3, 1, 256)
    with winograd.use_winograd("always"):
        assert winograd.usable(torch.empty(2, 4, 4, 4), 3, 1, 4)


def test_an_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv(winograd.ENV_MODE, "fast")
    with pytest.raises(ValueError, match="STYLEGAN_ANIME_WINOGRAD='fast'"):
        winograd.winograd_mode()
    with pytest.raises(ValueError, match="must be one of"):
        with winograd.use_winograd("fast"):
            pass


@needs_nnpack
@pytest.mark.parametrize("overrides", [{}, {"architecture": "resnet"}])
def test_inference_path_with_winograd_equals_the_reference_layers(overrides):
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config(**overrides))).eval()
    z = torch.randn(3, G.z_dim)
    ref = G(z, psi=0.7).detach()  # parameters require grad: the reference layers, direct convs
    with torch.no_grad():
        with winograd.use_winograd("always"):
            fast = G(z, psi=0.7)
        with winograd.use_winograd("off"):
            direct = G(z, psi=0.7)
    assert _rel_err(fast, ref) < TOL
    assert not torch.equal(fast, direct)  # the Winograd path really ran


def test_doctor_says_where_the_convolutions_go(capsys, native_cpu_ops, monkeypatch):
    from stylegan_anime import cli
    monkeypatch.setenv(winograd.ENV_MODE, "off")
    assert cli.main(["doctor"]) == 0
    assert "3x3 convs on the cpu: direct (oneDNN) everywhere" in capsys.readouterr().out
    monkeypatch.setenv(winograd.ENV_MODE, "auto")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    expected = "Winograd (NNPACK) on large layers" if winograd.nnpack_available() else "no usable NNPACK"
    assert expected in out
    assert "with gradients on the cpu: Winograd F(4x4,3x3) on >= 64 tiles and 128 channels" in out
    assert "filters kept): fused Winograd F(4x4,3x3) on stride-1 layers of >= 16384 pixels and <= 256 channels" in out
    assert ("upsampling convs, generation API (filters kept): fused stride-2 Winograd on >= 4096 input pixels "
            "and <= 128 channels in, unfused on >= 64 windows of 4x4 and >= 256 channels in") in out


def test_the_f43_rule_takes_large_layers_with_native_transforms(native_cpu_ops):
    with winograd.use_winograd("auto"):
        assert winograd.f43_usable(torch.empty(4, 256, 64, 64), (256, 256, 3, 3), 1)
        assert winograd.f43_usable(torch.empty(4, 512, 16, 16), (512, 512, 3, 3), 1)
        assert not winograd.f43_usable(torch.empty(4, 512, 8, 8), (512, 512, 3, 3), 1)      # too few tiles
        assert not winograd.f43_usable(torch.empty(4, 64, 64, 64), (64, 64, 3, 3), 1)       # too few channels
        assert not winograd.f43_usable(torch.empty(4, 256, 64, 64), (256, 256, 3, 3), 1, groups=4)
        assert not winograd.f43_usable(torch.empty(4, 256, 64, 64), (256, 256, 1, 1), 0)
    with winograd.use_winograd("off"):
        assert not winograd.f43_usable(torch.empty(4, 256, 64, 64), (256, 256, 3, 3), 1)


def test_a_plan_takes_f43_from_16_tiles_where_it_makes_its_filters_on_the_way(native_cpu_ops):
    """Below ``MIN_TILES`` a plan's wide layer runs F(4x4, 3x3) only where it makes its filters on the way
    (``filters_unkept``), from ``UNKEPT_MIN_TILES`` tiles; module forwards (filters not kept) never do."""
    def preferred(n, h, c=512, kept=True):
        return winograd.f43_preferred(torch.empty(n, c, h, h), (c, c, 3, 3), 1, kept)
    with winograd.use_winograd("auto"):
        assert preferred(1, 16) and preferred(2, 16) and preferred(8, 8)  # 16, 32, 32 tiles
        assert winograd.filters_unkept(torch.empty(2, 512, 8, 8), (512, 512, 3, 3)) and not preferred(2, 8)
        assert not preferred(1, 8) and not preferred(8, 4)  # 4 and 8 tiles
        assert not preferred(1, 16, kept=False) and not preferred(1, 16, c=256)
        assert preferred(1, 64) and not winograd.filters_unkept(torch.empty(1, 512, 64, 64), (512, 512, 3, 3))


def test_the_up_rule_fuses_narrow_layers_and_leaves_small_ones_to_onednn(native_cpu_ops):
    def rule(c, h, k=None, dtype=torch.float32, kept=True):
        return winograd.up_algorithm(torch.empty(1, c, h, h, dtype=dtype), (k or c, c, 3, 3), kept)
    with winograd.use_winograd("auto"):
        assert rule(128, 256, 64) == rule(64, 64) == "fused"
        assert rule(256, 128, 128) == rule(512, 32) == "winograd"
        assert rule(128, 32) is None and rule(512, 16) is None  # oneDNN is faster on small inputs
        assert winograd.up_algorithm(torch.empty(4, 512, 16, 16), (512, 512, 3, 3), True) == "winograd"  # 64 windows
        assert rule(128, 256, dtype=torch.float64) is None      # the fused op is float32 only
        assert rule(512, 64, kept=False) is None                 # only on kept filter transforms
        assert winograd.up_algorithm(torch.empty(1, 512, 64, 64), (512, 512, 1, 1), True) is None
    with winograd.use_winograd("always"):
        assert rule(4, 4) == "fused" and rule(4, 4, dtype=torch.float64) == "winograd"
    with winograd.use_winograd("off"):
        assert rule(128, 256) is None


def test_second_derivatives_through_f43_layers_equal_the_direct_ones(native_cpu_ops):
    """R1 and path length differentiate gradients: here a gradient penalty through two of D's conv
    layers, in float64 so that the comparison checks the algebra (float32 rounding: see above)."""
    from stylegan_anime.networks.layers import Conv2dLayer
    torch.manual_seed(0)
    net = torch.nn.Sequential(Conv2dLayer(3, 8, 3, activation="lrelu"), Conv2dLayer(8, 4, 3, activation="lrelu"))
    net.double()
    real = torch.randn(2, 3, 9, 10, dtype=torch.float64)

    def penalty_grads(mode: str) -> list[torch.Tensor]:
        with winograd.use_winograd(mode):
            x = real.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(net(x).square().sum(), x, create_graph=True)
            return [g, *torch.autograd.grad(g.square().sum(), list(net.parameters()))]

    f43, direct = penalty_grads("always"), penalty_grads("off")
    assert not torch.equal(f43[0], direct[0])  # the F(4x4, 3x3) path really ran
    for a, b in zip(f43, direct):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_inference_path_with_f43_on_shared_weights_equals_the_reference_layers(native_cpu_ops, monkeypatch):
    """Layers that modulate activations share one weight across the batch: F(4x4, 3x3) serves them."""
    monkeypatch.setattr(winograd, "MIN_PIXELS", 10 ** 9)  # no NNPACK
    monkeypatch.setattr(winograd, "MIN_TILES", 1)
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config(channel_base=4096, channel_max=128))).eval()
    z = torch.randn(3, G.z_dim)
    ref = G(z).detach()
    with torch.no_grad():
        fast = G(z)
        with winograd.use_winograd("off"):
            direct = G(z)
    assert _rel_err(fast, ref) < TOL
    assert not torch.equal(fast, direct)
