"""Seeds exactly as NVlabs, uint8 rounding, grids."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_anime.features import render
from stylegan_anime.errors import UserError
from stylegan_anime.latents import parse_seeds, seeds_to_z


def test_parse_seeds_syntax():
    assert parse_seeds("0-8") == list(range(9))
    assert parse_seeds("1,2,5-10") == [1, 2, 5, 6, 7, 8, 9, 10]
    assert parse_seeds(" 7 ") == [7]
    for bad in ["", "a", "3-1", "1,,2", "-1", "1-2-3", str(2 ** 32)]:
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_seeds_to_z_is_randomstate_randn_and_matches_known_values():
    z = seeds_to_z([0, 42], 512)
    assert z.shape == (2, 512) and z.dtype == torch.float32
    np.testing.assert_array_equal(z[1].numpy(), np.random.RandomState(42).randn(1, 512)[0].astype(np.float32))
    # Known values of the Mersenne-Twister Gaussian stream for seed 0.
    np.testing.assert_allclose(z[0, :3].numpy(), [1.7640524, 0.4001572, 0.978738], rtol=1e-6)


def test_to_uint8_rounds_like_the_official_scripts():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 2.0]).reshape(1, 1, 1, 7)
    got = render.to_uint8(x).flatten().tolist()
    expected = [int(min(max(v * 127.5 + 128, 0), 255)) for v in x.flatten().tolist()]
    assert got == expected == [0, 0, 128, 191, 255, 255, 255]


def test_grid_places_images_row_by_row():
    colours = torch.linspace(-1, 1, 6)
    imgs = colours.reshape(6, 1, 1, 1).expand(6, 3, 4, 4).clone()
    grid = render.make_grid(imgs, cols=3, rows=2, padding=1)
    assert grid.size == (3 * 5 + 1, 2 * 5 + 1)
    arr = np.asarray(grid)
    for i in range(6):
        x, y = 1 + (i % 3) * 5, 1 + (i // 3) * 5
        assert arr[y, x, 0] == render.to_uint8(imgs[i:i + 1])[0, 0, 0, 0]
    assert tuple(arr[0, 0]) == (255, 255, 255)


def test_grid_too_small_is_a_user_error():
    with pytest.raises(UserError, match="3x3 grid holds 9"):
        render.grid_shape(10, 3, 3)
    for bad in ["3", "ax3", "0x3", "3x"]:
        with pytest.raises(UserError):
            render.parse_grid(bad)


def test_save_grid_writes_a_png_and_no_temp_files(tmp_path):
    imgs = torch.rand(4, 3, 8, 8) * 2 - 1
    path = render.save_grid(imgs, tmp_path / "grid.png", cols=2)
    assert Image.open(path).size == (16, 16)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_image_to_tensor_inverts_to_uint8():
    imgs = torch.randint(0, 256, (1, 3, 8, 8)).float() / 127.5 - 1
    pil = render.to_pil(imgs)[0]
    back = render.image_to_tensor(pil)
    assert torch.equal(render.to_uint8(back), render.to_uint8(imgs))
