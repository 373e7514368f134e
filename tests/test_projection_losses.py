"""The projection distances: known values, and agreement with the networks they read."""
from __future__ import annotations

import math

import pytest
import torch

from stylegan_anime.ops import kernels
from stylegan_anime.editing import losses
from stylegan_anime.errors import UserError


def test_noise_regularization_known_values():
    # A constant map is fully correlated at every scale; 2×2 averaging times 2 doubles it each level.
    const = torch.ones([1, 1, 32, 32])
    assert losses.noise_regularization([const]).item() == pytest.approx(2 * (1 + 4 ** 2 + 16 ** 2))
    # A checkerboard anti-correlates at 1-pixel shifts and averages away to 0 below.
    idx = torch.arange(32)
    checker = ((idx[:, None] + idx[None, :]) % 2 * 2 - 1).float().reshape(1, 1, 32, 32)
    assert losses.noise_regularization([checker]).item() == pytest.approx(2.0)
    # A 4×4 map counts once; terms add over maps.
    small = torch.ones([1, 1, 4, 4])
    assert losses.noise_regularization([small, checker]).item() == pytest.approx(4.0)


def test_noise_regularization_prefers_white_noise():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn([1, 1, 64, 64], generator=gen)
    smooth = torch.nn.functional.interpolate(torch.randn([1, 1, 16, 16], generator=gen), scale_factor=4,
                                             mode="bilinear")
    smooth = (smooth - smooth.mean()) / smooth.std()
    # White noise scores its sampling error (~0.04 for 64², mostly from the coarse levels); smooth ~50.
    assert losses.noise_regularization([white]) < 1 and losses.noise_regularization([smooth]) > 10


def test_pyramid_levels_and_distance():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn([1, 3, 32, 32], generator=gen), torch.randn([1, 3, 32, 32], generator=gen)
    levels = losses.image_pyramid(y, min_size=8)
    assert [t.shape[-1] for t in levels] == [32, 16, 8]
    f = kernels.setup_filter([1, 3, 3, 1])
    x16, y16 = kernels.downsample2d(x, f), kernels.downsample2d(y, f)
    x8, y8 = kernels.downsample2d(x16, f), kernels.downsample2d(y16, f)
    expected = ((x16 - y16).square().mean() + (x8 - y8).square().mean()) / 2
    torch.testing.assert_close(losses.pyramid_distance(x, levels), expected)
    assert losses.pyramid_distance(y, levels).item() == 0
    assert losses.pyramid_distance(x, losses.image_pyramid(y, 32), min_size=32).item() == 0  # no coarser level


def test_pixel_distance_and_psnr_known_values():
    y = torch.zeros([1, 3, 8, 8])
    x = y + 0.2  # 0.1 on the [0, 1] scale → MSE 0.01 → 20 dB
    assert losses.psnr(x, y) == pytest.approx(20.0)
    assert losses.pixel_distance(x, y, "l2").item() == pytest.approx(0.04)
    assert losses.pixel_distance(x, y, "l1").item() == pytest.approx(0.2)
    assert losses.psnr(y, y) == math.inf
    assert losses.psnr(y + 5, y) == losses.psnr(y + 1, y)  # the synthesised image is clamped to [-1, 1]
    with pytest.raises(UserError, match="pixel loss"):
        losses.pixel_distance(x, y, "l3")


def test_discriminator_features_are_the_discriminators_own_path(small_D):
    img = torch.randn([2, 3, 32, 32], generator=torch.Generator().manual_seed(2))
    feats = losses.DiscriminatorFeatures(small_D)
    fs = feats.features(img)
    assert [f.shape[-1] for f in fs] == [r // 2 for r in small_D.block_resolutions]
    # The last block's output, through the epilogue, is D's logit: the features are D's real activations.
    torch.testing.assert_close(small_D.b4(fs[-1], None, None), small_D(img))
    assert feats.distance(fs, fs).item() == 0
    assert feats.distance(feats.features(img.flip(0)), fs).item() > 0


class _Features(torch.nn.Module):
    """A tiny feature extractor: two conv stages."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 2, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        fa = torch.relu(self.a(x / 255))
        return [fa, self.b(fa)]


class _LpipsStyle(torch.nn.Module):
    """The calling convention of the ADA metrics' vgg16.pt: keyword flags choose the output."""

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        if resize_images or not return_lpips:
            return torch.zeros([img.shape[0], 1])  # what a wrong call would see
        return img.flatten(1) / 255


def _save_script(module: torch.nn.Module, path) -> str:
    torch.manual_seed(3)
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


def test_perceptual_torchscript_file(tmp_path):
    torch.manual_seed(4)
    module = _Features()
    path = _save_script(module, tmp_path / "feat.pt")
    module = torch.jit.load(path)
    p = losses.load_perceptual(path, size=256)
    assert not p.lpips
    gen = torch.Generator().manual_seed(5)
    x, y = torch.rand([1, 3, 32, 32], generator=gen) * 2 - 1, torch.rand([1, 3, 32, 32], generator=gen) * 2 - 1
    fx, fy = module((x + 1) * 127.5), module((y + 1) * 127.5)
    expected = (fx[0] - fy[0]).square().mean() + (fx[1] - fy[1]).square().mean()
    torch.testing.assert_close(p.distance(p.features(x), p.features(y)), expected)
    # Larger images are area-downsampled to ``size`` first.
    small = losses.load_perceptual(path, size=16)
    assert small.features(x)[0].shape[-1] == 16


def test_perceptual_lpips_convention(tmp_path):
    p = losses.load_perceptual(_save_script(_LpipsStyle(), tmp_path / "vgg.pt"))
    assert p.lpips
    x, y = torch.zeros([2, 3, 8, 8]), torch.full([2, 3, 8, 8], 0.5)
    # Features are (img + 1) * 127.5 / 255: the images differ by 0.25 in each of 192 values.
    assert p.distance(p.features(x), p.features(y)).item() == pytest.approx(192 * 0.25 ** 2)


def test_perceptual_bad_files(tmp_path):
    with pytest.raises(UserError, match="no such perceptual-loss file"):
        losses.load_perceptual(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript archive")
    with pytest.raises(UserError, match="bad.pt is not a TorchScript feature extractor"):
        losses.load_perceptual(bad)
