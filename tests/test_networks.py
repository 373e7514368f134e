"""The StyleGAN2 architecture: parameter counts, shapes, truncation, noise, batch independence."""
from __future__ import annotations

import pytest
import torch

from stylegan_anime.latents import seeds_to_z
from stylegan_anime.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

from conftest import randomize_buffers, small_d_config, small_g_config


def trainable(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("res,g_params,d_params", [
    (256, 30_034_338, 28_864_129),
    (512, 30_276_583, 28_982_849),
    (1024, 30_370_060, 29_012_513),
])
def test_parameter_counts_match_the_published_config_f(res, g_params, d_params):
    with torch.device("meta"):
        G = Generator(GeneratorConfig(img_resolution=res))
        D = Discriminator(DiscriminatorConfig(img_resolution=res))
    assert trainable(G.mapping) == 2_101_248
    assert trainable(G) == g_params
    assert trainable(D) == d_params


def test_building_a_generator_frees_nothing_it_allocated():
    """Its weights are made in place: a temporary per dense layer (randn, then a division into a new
    tensor) left a hole in the heap per layer, 20 MiB resident over a 256² generator's affine layers."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        G = Generator(small_g_config(img_resolution=32))
    freed = -sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage < 0)
    kept = sum(t.numel() * t.element_size() for t in [*G.parameters(), *G.buffers()])
    assert freed < 0.01 * kept, (freed, kept)


def test_num_ws_is_two_per_resolution():
    with torch.device("meta"):
        assert Generator(GeneratorConfig(img_resolution=256)).num_ws == 14
        assert Generator(GeneratorConfig(img_resolution=1024)).num_ws == 18


@pytest.mark.parametrize("res", [4, 8, 32, 64])
@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_shapes_and_dtypes(res, arch):
    torch.manual_seed(0)
    G = Generator(small_g_config(img_resolution=res, architecture=arch)).eval()
    D = Discriminator(small_d_config(img_resolution=res))
    z = torch.randn(4, G.z_dim)
    img = G(z)
    assert img.shape == (4, 3, res, res) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    assert D(img).shape == (4, 1)


def test_conditional_generator_and_projection_discriminator():
    torch.manual_seed(0)
    G = Generator(small_g_config(c_dim=5)).eval()
    D = Discriminator(small_d_config(c_dim=5))
    z = torch.randn(4, G.z_dim)
    c1, c2 = torch.eye(5)[[0, 1, 2, 3]], torch.eye(5)[[4, 4, 4, 4]]
    img1, img2 = G(z, c1), G(z, c2)
    assert not torch.allclose(img1, img2), "labels must change the image"
    assert not torch.allclose(D(img1, c1), D(img1, c2)), "labels must change the projection logit"
    with pytest.raises(ValueError, match="labels"):
        G(z)


def test_truncation_psi_zero_is_w_avg_and_one_is_identity(small_G):
    z = torch.randn(3, small_G.z_dim)
    ws0 = small_G.mapping(z, psi=0.0)
    assert torch.equal(ws0, small_G.mapping.w_avg.expand_as(ws0))
    assert torch.equal(small_G.mapping(z, psi=1.0), small_G.mapping(z))
    half = small_G.mapping(z, psi=0.5)
    full = small_G.mapping(z)
    torch.testing.assert_close(half, small_G.mapping.w_avg + 0.5 * (full - small_G.mapping.w_avg))


def test_cutoff_leaves_later_ws_untouched(small_G):
    z = torch.randn(2, small_G.z_dim)
    full = small_G.mapping(z)
    cut = small_G.mapping(z, psi=0.3, cutoff=3)
    assert torch.equal(cut[:, 3:], full[:, 3:])
    assert not torch.allclose(cut[:, :3], full[:, :3])


def test_const_noise_is_deterministic_random_is_not_none_differs(small_G):
    z = torch.randn(2, small_G.z_dim)
    a, b = small_G(z, noise_mode="const"), small_G(z, noise_mode="const")
    assert torch.equal(a, b)
    r1, r2 = small_G(z, noise_mode="random"), small_G(z, noise_mode="random")
    assert not torch.allclose(r1, r2)
    assert not torch.allclose(small_G(z, noise_mode="none"), a)


def test_seed_alone_equals_seed_in_a_batch(small_G):
    alone = small_G(seeds_to_z([5], small_G.z_dim))
    batch = small_G(seeds_to_z([0, 1, 2, 3, 4, 5, 6, 7], small_G.z_dim))
    torch.testing.assert_close(alone[0], batch[5], rtol=1e-5, atol=1e-5)


def test_fused_and_unfused_modulated_conv_agree(small_G):
    z = torch.randn(3, small_G.z_dim)
    torch.testing.assert_close(small_G(z, grouped=True), small_G(z, grouped=False), rtol=1e-4, atol=1e-4)


def test_explicit_noise_overrides_noise_mode(small_G):
    z = torch.randn(1, small_G.z_dim)
    layers = small_G.synthesis.noise_layers()
    const = [layer.noise_const.unsqueeze(0).unsqueeze(0) for layer in layers]
    assert torch.equal(small_G(z, noise_mode="none", noise=const), small_G(z, noise_mode="const"))


def test_w_avg_tracks_the_mapping_output_when_asked():
    torch.manual_seed(0)
    G = Generator(small_g_config())
    before = G.mapping.w_avg.clone()
    G.mapping(torch.randn(8, G.z_dim), update_w_avg=True)
    assert not torch.equal(before, G.mapping.w_avg)
    frozen = G.mapping.w_avg.clone()
    G.mapping(torch.randn(8, G.z_dim))
    assert torch.equal(frozen, G.mapping.w_avg)


def test_mix_takes_the_listed_layers_from_b(small_G):
    wa = small_G.mapping(torch.randn(1, small_G.z_dim))
    wb = small_G.mapping(torch.randn(1, small_G.z_dim))
    assert torch.equal(small_G.mix(wa, wb, []), wa)
    assert torch.equal(small_G.mix(wa, wb, range(small_G.num_ws)), wb)
    mixed = small_G.mix(wa, wb, [0, 1])
    assert torch.equal(mixed[:, :2], wb[:, :2]) and torch.equal(mixed[:, 2:], wa[:, 2:])


def test_gradients_reach_every_generator_and_discriminator_parameter():
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config(c_dim=3)))
    D = Discriminator(small_d_config(c_dim=3))
    c = torch.eye(3)[[0, 1, 2, 0]]
    loss = D(G(torch.randn(4, G.z_dim), c, noise_mode="random"), c).sum()
    loss.backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
