"""The fused Winograd conv's sinks (ops/winograd_fused.h): each combination of epilogue (none or the
layer's), toRGB layer (none, or one that keeps y or drops it) is its own compiled instantiation, so each
is checked against the reference composition: conv2d, then the epilogue, then to_rgb_ref plus skip."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylegan_anime.ops import winograd_op
from stylegan_anime.ops.layer_epilogue import Finish
from stylegan_anime.ops.to_rgb import ToRgb, to_rgb_ref


@pytest.mark.parametrize("epilogue", [False, True])
@pytest.mark.parametrize("rgb_mode", ["none", "keep", "drop"])
def test_every_sink_combination_matches_the_reference(native_cpu_ops, epilogue, rgb_mode):
    gen = torch.Generator().manual_seed(7)
    n, c, k, h, w, outs = 2, 5, 6, 13, 10, 3  # sizes not multiples of the 4-pixel tiles: partial blocks
    x, g = torch.randn(n, c, h, w, generator=gen), torch.randn(k, c, 3, 3, generator=gen)
    scale = torch.rand(n, c, generator=gen) + 0.5
    u = winograd_op.weight_transform(g)
    y_ref = F.conv2d((x * scale[:, :, None, None]).double(), g.double(), padding=1)
    finish = None
    if epilogue:  # per-image output scale and a bias, then the layer_epilogue's leaky ReLU (gain 1)
        out_scale, bias = torch.rand(n, k, generator=gen) + 0.5, torch.randn(k, generator=gen)
        finish = Finish(out_scale, bias, None, 0.0, 0.2, None)
        y_ref = y_ref * out_scale[:, :, None, None].double() + bias[None, :, None, None].double()
        y_ref = torch.where(y_ref >= 0, y_ref, 0.2 * y_ref)
    if rgb_mode == "none":
        y = winograd_op.conv3x3_fused(x, u, scale, 24, finish)
        torch.testing.assert_close(y.double(), y_ref, rtol=0, atol=1e-3)
        return
    weight, rgb_bias = torch.randn(n, outs, k, generator=gen), torch.randn(outs, generator=gen)
    skip = torch.randn(n, outs, h, w, generator=gen)
    rgb = ToRgb(weight, rgb_bias, 0.5, skip, rgb_mode == "keep")
    y, img = winograd_op.conv3x3_fused_rgb(x, u, scale, finish or Finish(), rgb, band=24)
    img_ref = to_rgb_ref(y_ref, weight.double(), rgb_bias.double(), 0.5) + skip.double()
    torch.testing.assert_close(img.double(), img_ref, rtol=0, atol=1e-3)
    if rgb_mode == "keep":
        torch.testing.assert_close(y.double(), y_ref, rtol=0, atol=1e-3)
    else:
        assert y is None
