"""Style mixing (layer sets by resolution, G.mix, the grid) and the truncation sweep."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.errors import UserError
from stylegan_anime.latents.files import Latent, load_latent, save_latent
from stylegan_anime.features.generation import generate_images, synthesize
from stylegan_anime.features.mixing import mixing_grid
from stylegan_anime.networks import Generator
from stylegan_anime.latents.style_layers import named_layers, parse_layers, ws_by_resolution
from stylegan_anime.features.truncation import truncation_grid, truncation_images

from conftest import small_g_config


def seed_ws(G, seeds, psi=1.0):
    return G.mapping(sa.seeds_to_z(seeds, G.z_dim), None, psi=psi)


def test_mix_with_no_layers_is_a_and_with_all_layers_is_b(small_G):
    wa, wb = seed_ws(small_G, [1, 2]), seed_ws(small_G, [3, 4])
    assert torch.equal(small_G.mix(wa, wb, []), wa)
    assert torch.equal(small_G.mix(wa, wb, ""), wa)
    assert torch.equal(small_G.mix(wa, wb, range(small_G.num_ws)), wb)
    assert torch.equal(small_G.mix(wa, wb, "all"), wb)
    mixed = small_G.mix(wa, wb, "0-2")
    assert torch.equal(mixed[:, :3], wb[:, :3]) and torch.equal(mixed[:, 3:], wa[:, 3:])
    assert torch.equal(small_G.mix(wa[0], wb[0], [1]), mixed[0].where(torch.arange(8)[:, None] == 1, wa[0]))


def test_ws_of_each_resolution_partition_the_ws(small_G):
    # 32²: 4² has one conv; 8², 16², 32² two each; the last block's to-RGB reads one more.
    assert ws_by_resolution(small_G.synthesis) == {4: [0], 8: [1, 2], 16: [3, 4], 32: [5, 6, 7]}
    assert small_G.num_ws == 8


def test_named_ranges_at_1024_match_the_paper():
    G = Generator(small_g_config(img_resolution=1024, channel_base=4096, channel_max=4))
    assert G.num_ws == 18
    assert named_layers(G.synthesis, "coarse") == [0, 1, 2]
    assert named_layers(G.synthesis, "middle") == [3, 4, 5, 6]
    assert named_layers(G.synthesis, "fine") == list(range(7, 18))
    assert parse_layers("coarse,middle", G.synthesis) == parse_layers("0-6", G.synthesis)


def test_parse_layers(small_G):
    syn = small_G.synthesis
    assert parse_layers("0,1,4-7", syn) == [0, 1, 4, 5, 6, 7]
    assert parse_layers("middle", syn) == [3, 4, 5, 6, 7]
    for bad, msg in (("8", "ws 0-7"), ("5-2", "ws 0-7"), ("eyes", "bad layer list"), ("fine", "no fine layers")):
        with pytest.raises(UserError, match=msg):
            parse_layers(bad, syn)


def test_mixing_grid_layout_and_cells(small_G):
    R = small_G.img_resolution
    grid = np.asarray(mixing_grid(small_G, "1,2,3", "10,11", "coarse", psi=0.8))
    assert grid.shape == (4 * R, 3 * R, 3)
    assert (grid[:R, :R] == 255).all()  # top-left is blank
    sources = sa.to_uint8(generate_images(small_G, [10, 11, 1, 2, 3], psi=0.8)).numpy().astype(int)
    assert np.abs(grid[:R, R:2 * R] - sources[0]).max() <= 1      # top row: column sources
    assert np.abs(grid[:R, 2 * R:] - sources[1]).max() <= 1
    assert np.abs(grid[3 * R:, :R] - sources[4]).max() <= 1       # left column: row sources
    ws = seed_ws(small_G, [3, 10], psi=0.8)
    cell = synthesize(small_G, small_G.mix(ws[:1], ws[1:], [0, 1, 2]))  # row 3 with seed 10's coarse ws
    assert np.abs(grid[3 * R:, R:2 * R] - sa.to_uint8(cell)[0].numpy()).max() <= 1
    assert np.abs(grid[3 * R:, R:2 * R] - sources[4]).max() > 10  # and it is not just the row source


def test_truncation_sweep(small_G):
    imgs = truncation_images(small_G, [4, 5, 6], [0.0, 0.5, 1.0])
    assert imgs.shape == (9, 3, 32, 32)
    # psi = 0 is the average w for every seed: the same picture in every row.
    assert torch.equal(imgs[0], imgs[3]) and torch.equal(imgs[0], imgs[6])
    assert not torch.equal(imgs[2], imgs[5])
    expected = generate_images(small_G, [4, 5, 6], psi=0.5)
    torch.testing.assert_close(imgs[1::3], expected, atol=1e-5, rtol=0)
    grid = truncation_grid(small_G, "4-6", "0,0.5,1", captions=False)
    assert grid.size == (3 * 32, 3 * 32)
    assert truncation_grid(small_G, "4-6", "0,0.5,1").size == (3 * 32, 3 * (32 + 14))  # a caption row per cell


def test_truncation_of_a_saved_w_pulls_it_to_the_average(small_G, tmp_path):
    w = seed_ws(small_G, [7])[0]
    saved = load_latent(save_latent(Latent(w=w), tmp_path / "w7.npz"))
    imgs = truncation_images(small_G, [saved, 7], [0.3])
    torch.testing.assert_close(imgs[0], imgs[1], atol=1e-5, rtol=0)
