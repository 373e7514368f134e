"""ADA: the augmentation pipeline and the adaptive probability."""
from __future__ import annotations

import math

import pytest
import torch

from stylegan_anime.errors import UserError
from stylegan_anime.training.augment import (AdaConfig, AdaptiveP, AugmentConfig, AugmentPipe, blit, colour, geometric,
                                             hue_rotate3d, luma_flip3d, rotate2d, saturation3d, scale2d, translate2d)

ALL = AugmentConfig.BLIT + AugmentConfig.GEOM + AugmentConfig.COLOR


def images(n=6, size=12, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g, dtype=dtype) * 2 - 1)


def test_p_zero_is_exactly_the_identity():
    x = images()
    pipe = AugmentPipe(AugmentConfig(), p=0.0)
    assert pipe(x) is x
    # p > 0 but every multiplier zero: each stage draws nothing and passes x through untouched.
    off = AugmentPipe(AugmentConfig(**{a: 0.0 for a in ALL}), p=1.0)
    assert torch.equal(off(x), x)


@pytest.mark.parametrize("name", ALL)
def test_each_augmentation_alone_keeps_shape_changes_the_image(name):
    torch.manual_seed(0)
    x = images(8)
    pipe = AugmentPipe(AugmentConfig.preset(name), p=1.0)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    changed = [not torch.allclose(y[i], x[i], atol=1e-4) for i in range(len(x))]
    assert sum(changed) >= 3, name            # xflip / lumaflip change about half the images
    if name in AugmentConfig.BLIT + AugmentConfig.GEOM:
        # Pixels move or are interpolated convexly: the value range cannot grow.
        assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6


def test_blit_matches_torch_flip_rot90_and_roundtrips():
    x = images(2, 7)
    zero, one = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    no_shift = torch.zeros(2, 2, dtype=torch.long)
    assert torch.equal(blit(x, one, zero, no_shift), x.flip(3))
    assert torch.equal(blit(blit(x, one, zero, no_shift), one, zero, no_shift), x)
    assert torch.equal(blit(x, zero, one, no_shift), torch.rot90(x, -1, (2, 3)))
    y = x
    for _ in range(4):
        y = blit(y, zero, one, no_shift)
    assert torch.equal(y, x)


def test_integer_shift_mirrors_in_from_outside():
    x = images(1, 8)
    y = blit(x, torch.zeros(1), torch.zeros(1), torch.tensor([[3, -2]]))
    # Content moves 3 right and 2 up; the first columns are the mirrored left edge.
    assert torch.equal(y[..., :6, 3:], x[..., 2:, :5])
    assert torch.equal(y[..., :6, :3], x[..., 2:, :3].flip(3))


def test_geometric_agrees_with_the_exact_blit_on_whole_pixel_moves():
    x = images(2, 9)
    turn = geometric(x, rotate2d(torch.full([2], math.pi / 2)), supersample=1)
    torch.testing.assert_close(turn, torch.rot90(x, -1, (2, 3)), atol=1e-5, rtol=0)
    shift = geometric(x, translate2d(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 3.0])), supersample=1)
    expect = blit(x, torch.zeros(2), torch.zeros(2), torch.tensor([[2, 1], [-1, 3]]))
    torch.testing.assert_close(shift, expect, atol=1e-5, rtol=0)
    # A 2× zoom about the centre: the middle pixels of an even image spread over 2×2 blocks.
    zoom = geometric(x, scale2d(torch.full([2], 2.0), torch.full([2], 2.0)), supersample=1)
    assert zoom.shape == x.shape and not torch.allclose(zoom, x)


def test_colour_matrices_have_the_stated_effect():
    x = images(3)
    luma = x.mean(1)
    n = len(x)
    flipped = colour(x, luma_flip3d(torch.ones(n)))
    torch.testing.assert_close(flipped.mean(1), -luma)                       # luma negated
    torch.testing.assert_close(flipped - flipped.mean(1, keepdim=True), x - x.mean(1, keepdim=True))  # chroma kept
    hue = colour(x, hue_rotate3d(torch.full([n], 1.0)))
    torch.testing.assert_close(hue.mean(1), luma, atol=1e-5, rtol=0)          # luma kept
    chroma = (x - x.mean(1, keepdim=True)).norm(dim=1)
    torch.testing.assert_close((hue - hue.mean(1, keepdim=True)).norm(dim=1), chroma, atol=1e-5, rtol=0)
    assert not torch.allclose(hue, x, atol=1e-3)
    sat = colour(x, saturation3d(torch.full([n], 0.5)))
    torch.testing.assert_close(sat.mean(1), luma, atol=1e-6, rtol=0)
    torch.testing.assert_close(sat - sat.mean(1, keepdim=True), 0.5 * (x - x.mean(1, keepdim=True)), atol=1e-6,
                               rtol=0)
    assert torch.allclose(colour(x, saturation3d(torch.zeros(n))), luma[:, None].expand_as(x), atol=1e-6)


def test_brightness_and_contrast_through_the_pipe():
    torch.manual_seed(1)
    x = images(4)
    y = AugmentPipe(AugmentConfig.preset("brightness"), p=1.0)(x)
    offset = (y - x).flatten(1)
    assert (offset.max(1).values - offset.min(1).values).max() < 1e-6      # one constant per image
    y = AugmentPipe(AugmentConfig.preset("contrast"), p=1.0)(x)
    ratio = (y / x).flatten(1)
    assert (ratio.max(1).values - ratio.min(1).values).max() < 1e-4        # one factor per image


def test_probability_per_image_follows_p_and_the_multiplier():
    torch.manual_seed(2)
    x = images(400, 4)
    for p, mult in ((0.3, 1.0), (0.5, 0.5)):
        cfg = AugmentConfig(**{**{a: 0.0 for a in ALL}, "brightness": mult})
        y = AugmentPipe(cfg, p=p)(x)
        frac = (y != x).flatten(1).any(1).float().mean().item()
        assert abs(frac - p * mult) < 0.07, (p, mult, frac)


def test_gradients_flow_to_the_input():
    torch.manual_seed(3)
    x = images(4).requires_grad_()
    y = AugmentPipe(AugmentConfig(), p=1.0)(x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def test_stages_pass_gradcheck_in_float64():
    x = images(2, 5, dtype=torch.float64).requires_grad_()
    m = (rotate2d(torch.tensor([0.3, -1.1], dtype=torch.float64))
         @ scale2d(torch.tensor([1.2, 0.8], dtype=torch.float64), torch.tensor([0.9, 1.1], dtype=torch.float64)))
    assert torch.autograd.gradcheck(lambda t: geometric(t, m, supersample=2), (x,))
    c = hue_rotate3d(torch.tensor([0.4, 2.0], dtype=torch.float64)) @ saturation3d(torch.tensor([1.5, 0.3],
                                                                                             dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: colour(t, c), (x,))
    assert torch.autograd.gradcheck(
        lambda t: blit(t, torch.tensor([1, 0]), torch.tensor([1, 3]), torch.tensor([[1, -2], [0, 3]])), (x,))


def test_p_is_saved_with_the_module():
    pipe = AugmentPipe(p=0.25)
    state = pipe.state_dict()
    other = AugmentPipe()
    other.load_state_dict(state)
    assert float(other.p) == 0.25


def test_adaptive_p_rises_when_d_overfits_and_falls_otherwise():
    pipe = AugmentPipe()
    ada = AdaptiveP(pipe, AdaConfig(kimg=1.0))     # p moves by n / 1000 per adjustment
    confident = torch.full([8], 3.0)                # sign(D(real)) = +1 > 0.6: overfitting
    for step in range(1, 9):
        ada.update(confident)
        # adjusted only every 4 steps, by the 32 images seen since the last adjustment
        assert ada.p == pytest.approx(0.032 * (step // 4))
    assert ada.r_t == 1.0
    for _ in range(8):
        ada.update(-confident)                      # r_t = -1 < 0.6
    assert ada.p == pytest.approx(0.0)
    for _ in range(8):
        ada.update(-confident)
    assert ada.p == 0.0                             # clipped at 0
    mixed = torch.tensor([1.0, 1.0, 1.0, -1.0])     # r_t = 0.5 < 0.6
    ada.pipe.p.fill_(0.5)
    for _ in range(4):
        ada.update(mixed)
    assert ada.p == pytest.approx(0.5 - 16 / 1000)


def test_adaptive_p_is_clipped_at_one_and_fixed_and_off_modes_hold_still():
    pipe = AugmentPipe()
    ada = AdaptiveP(pipe, AdaConfig(kimg=0.01, p=0.9))
    for _ in range(8):
        ada.update(torch.ones(64))
    assert ada.p == 1.0
    fixed = AdaptiveP(AugmentPipe(), AdaConfig(mode="fixed", p=0.3))
    off = AdaptiveP(AugmentPipe(p=0.7), AdaConfig(mode="off", p=0.3))
    for _ in range(8):
        fixed.update(torch.ones(16))
        off.update(torch.ones(16))
    assert fixed.p == pytest.approx(0.3) and off.p == 0.0


def test_bad_configs_are_user_errors():
    with pytest.raises(UserError, match="mode"):
        AdaConfig(mode="sometimes")
    with pytest.raises(UserError, match="preset"):
        AugmentConfig.preset("xyz")
    assert AugmentConfig.preset("bg").brightness == 0 and AugmentConfig.preset("bg").xflip == 1



def test_adaptive_state_resumes_mid_interval():
    one = AdaptiveP(AugmentPipe(), AdaConfig(kimg=1.0))
    for _ in range(2):
        one.update(torch.ones(8))
    two = AdaptiveP(AugmentPipe(), AdaConfig(kimg=1.0))
    two.load_state(one.state())
    for ada in (one, two):
        for _ in range(2):
            ada.update(torch.ones(8))
    assert one.p == two.p == pytest.approx(0.032)
