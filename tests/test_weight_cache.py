"""Derived weight tensors kept inside ``cached_weights()``: same images, kept only while the
weights are unchanged, nothing kept outside the context."""
from __future__ import annotations

import pytest
import torch

from stylegan_anime.networks import Generator
from stylegan_anime.networks.weight_cache import active, cached_weights, derived
from stylegan_anime.networks.winograd import use_winograd

from conftest import randomize_buffers, small_g_config


def _counting(param: torch.Tensor, kind: str, calls: list[int]) -> torch.Tensor:
    def make() -> torch.Tensor:
        calls.append(1)
        return param * 2
    return derived(param, kind, make)


def test_derived_tensors_are_kept_only_inside_the_context():
    p, calls = torch.randn(3), []
    _counting(p, "double", calls), _counting(p, "double", calls)
    assert len(calls) == 2 and not active()
    with cached_weights():
        a = _counting(p, "double", calls)
        with cached_weights():  # nested: the outer cache serves
            b = _counting(p, "double", calls)
        assert active() and a is b and len(calls) == 3
        _counting(p, "other kind", calls)
        _counting(p.clone(), "double", calls)
        assert len(calls) == 5
    assert not active()
    with cached_weights():
        _counting(p, "double", calls)
    assert len(calls) == 6


def test_in_place_updates_and_new_data_are_seen():
    p = torch.nn.Parameter(torch.ones(3))
    with cached_weights(), torch.no_grad():
        assert derived(p, "double", lambda: p * 2).tolist() == [2, 2, 2]
        p.mul_(3)  # what optimisers and load_state_dict do: bumps the version counter
        assert derived(p, "double", lambda: p * 2).tolist() == [6, 6, 6]
        p.data = torch.full([3], 5.0)  # new storage
        assert derived(p, "double", lambda: p * 2).tolist() == [10, 10, 10]


def test_nothing_is_kept_for_forwards_autograd_records():
    p, calls = torch.nn.Parameter(torch.randn(3)), []
    with cached_weights():
        _counting(p, "double", calls), _counting(p, "double", calls)
    assert len(calls) == 2


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_images_are_the_same_with_kept_tensors_and_follow_weight_updates(mode):
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(3, G.z_dim)
    with use_winograd(mode), torch.no_grad():
        fresh = G(z)
        with cached_weights():
            first, second = G(z), G(z)
            for layer in G.synthesis.noise_layers():
                layer.weight[:, : layer.weight.shape[1] // 2].mul_(3)
            updated = G(z)
        fresh_updated = G(z)
    scale = fresh.abs().max().item()
    torch.testing.assert_close(first, fresh, rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    assert not torch.allclose(updated, first, atol=1e-3)
    torch.testing.assert_close(updated, fresh_updated, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("convs, upsampling", [(("conv_transpose3x3_s2_fused",), True),
                                              (("conv3x3_fused", "conv3x3_fused_rgb"), False),
                                              (("conv_transpose3x3_s2_transformed",), True)])
def test_kept_filters_route_convs_to_winograd_and_agree_with_the_reference(monkeypatch, convs, upsampling):
    """In "always" mode every upsampling layer takes the fused stride-2 Winograd transposed conv (the
    unfused one where the rule says so), and every stride-1 3×3 layer the fused F(4×4, 3×3) (with its
    block's toRGB layer in the same pass, where it has one), inside cached_weights() (and only there),
    and the images equal the reference layers' (no_grad off)."""
    from stylegan_anime.ops import winograd_op
    from stylegan_anime.networks import winograd
    if convs == ("conv_transpose3x3_s2_transformed",):
        monkeypatch.setattr(winograd, "up_algorithm", lambda x, shape, kept: "winograd" if kept else None)
    calls = []
    for conv in convs:
        real = getattr(winograd_op, conv)
        monkeypatch.setattr(winograd_op, conv, lambda *a, real=real, conv=conv, **k: calls.append(conv) or real(*a, **k))
    torch.manual_seed(1)
    G = randomize_buffers(Generator(small_g_config())).eval().requires_grad_(False)
    z = torch.randn(2, G.z_dim)
    layers = sum(1 for layer in G.synthesis.noise_layers() if (layer.up > 1) == upsampling)
    with use_winograd("always"), torch.no_grad():
        G(z, noise_mode="const")
        assert calls == []
        with cached_weights():
            kept = G(z, noise_mode="const")
        assert len(calls) == layers > 0
        if not upsampling:  # a skip generator: every block's conv1 feeds its toRGB layer
            assert calls.count("conv3x3_fused_rgb") == len(G.synthesis.blocks())
    with use_winograd("off"):
        reference = G.requires_grad_(True)(z, noise_mode="const").detach()  # recorded: the reference layers
    scale = reference.abs().max().item()
    torch.testing.assert_close(kept, reference, rtol=1e-5, atol=2e-5 * scale)
