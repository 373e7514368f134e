"""Saved latents round-trip and give the same ws as the network they came from."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan_anime.errors import UserError
from stylegan_anime.latents.files import Latent, load_latent, save_latent


def test_w_and_noise_round_trip_bit_exactly(small_G, tmp_path):
    w = torch.randn(small_G.num_ws, small_G.w_dim)
    noise = [torch.randn(1, 1, 4, 4), torch.randn(1, 1, 8, 8)]
    path = save_latent(Latent(w=w, noise=noise), tmp_path / "a.npz")
    back = load_latent(path)
    assert torch.equal(back.w, w) and back.z is None
    assert len(back.noise) == 2 and all(torch.equal(a, b) for a, b in zip(back.noise, noise))
    assert torch.equal(back.ws(small_G)[0], w)


def test_saved_z_maps_like_the_generator(small_G, tmp_path):
    z = torch.randn(small_G.z_dim)
    back = load_latent(save_latent(Latent(z=z), tmp_path / "z.npz"))
    expected = small_G.mapping(z[None], None, psi=0.5)
    assert torch.allclose(back.ws(small_G, psi=0.5), expected)


def test_wrong_shapes_and_foreign_files_are_user_errors(small_G, tmp_path):
    path = save_latent(Latent(w=torch.zeros(3, 5)), tmp_path / "bad.npz")
    with pytest.raises(UserError, match="this network needs"):
        load_latent(path).ws(small_G)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(UserError, match="neither w nor z"):
        load_latent(other)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a latent"):
        load_latent(junk)
