"""Our safetensors format: bit-exact round trips, config in metadata and sidecar."""
from __future__ import annotations

import json

import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.errors import UserError
from stylegan_anime.io.formats.native import Networks
from stylegan_anime.networks import Discriminator

from conftest import small_d_config, small_g_config


def test_round_trip_is_bit_exact(small_G, tmp_path):
    path = sa.save(small_G, tmp_path / "g.safetensors")
    G2 = sa.load(path)
    sd1, sd2 = small_G.state_dict(), G2.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    assert G2.cfg == small_G.cfg and not G2.training
    z = torch.randn(2, small_G.z_dim)
    with torch.no_grad():  # the same code path for both (G2 is loaded frozen, small_G is not)
        assert torch.equal(G2(z, psi=0.7), small_G(z, psi=0.7))


def test_all_three_networks_round_trip(tmp_path):
    torch.manual_seed(0)
    G_ema, G = sa.Generator(small_g_config(c_dim=2)), sa.Generator(small_g_config(c_dim=2))
    D = Discriminator(small_d_config(c_dim=2))
    path = sa.save(Networks(G_ema=G_ema, G=G, D=D, meta={"kimg": "12"}), tmp_path / "n.safetensors")
    nets = sa.load_networks(path)
    assert nets.meta == {"kimg": "12"}
    for a, b in [(G_ema, nets.G_ema), (G, nets.G), (D, nets.D)]:
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
            assert k == k2 and torch.equal(v, v2)


def test_sidecar_json_holds_the_config_and_is_used_without_metadata(small_G, tmp_path):
    path = sa.save(small_G, tmp_path / "g.safetensors")
    side = json.loads((tmp_path / "g.json").read_text())
    assert side["configs"]["G_ema"]["img_resolution"] == 32
    # A file written by another tool: same tensors, no metadata; the sidecar supplies the config.
    from safetensors.torch import load_file, save_file
    bare = tmp_path / "bare.safetensors"
    save_file(load_file(str(path)), str(bare))
    (tmp_path / "bare.json").write_text((tmp_path / "g.json").read_text())
    assert torch.equal(sa.load(bare).synthesis.b4.const, small_G.synthesis.b4.const)


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"hello world, not weights", "not a weights file"),
    (b"\x20\x00\x00\x00\x00\x00\x00\x00{\"a\": ", "not a readable safetensors"),
])
def test_bad_files_give_one_line_user_errors(tmp_path, content, match):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(UserError, match=match) as e:
        sa.load(p)
    assert "\n" not in str(e.value)


def test_tensors_that_do_not_fit_the_config_are_refused(small_G, tmp_path):
    path = sa.save(small_G, tmp_path / "g.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    del tensors["G_ema.synthesis.b4.const"]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(UserError, match="missing synthesis.b4.const"):
        sa.load(path)


def test_unknown_config_field_is_a_user_error():
    with pytest.raises(UserError, match="no field"):
        sa.GeneratorConfig.from_dict({"img_resolution": 32, "bogus": 1})
    with pytest.raises(UserError, match="power of two"):
        sa.GeneratorConfig(img_resolution=48)
