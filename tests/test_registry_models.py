"""The registry tells the truth: every model it lists loads with the project's readers.

For each downloadable entry, a file with that model's published architecture (random weights)
is written in its published format by ``published_models`` (shapes from the public code, never
from our networks) and read back: the reader the bytes select is the registry's ``format``, the
loaded network has the registry's resolution and the published layout, and its mapping network
computes what the public code's formula computes from the stored tensors.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan_anime.io import formats, hub

import format_fixtures as ff
import published_models as pm

READER_OF_FORMAT = {"safetensors": "stylegan-anime safetensors", "tf-pickle": "NVlabs TensorFlow pickle",
                    "ada-pickle": "stylegan2-ada-pytorch pickle", "rosinality": "rosinality torch checkpoint"}
BUILT_HERE = {"anime-portraits-512", "tadne-512"}
RESOLUTIONS = [2 ** k for k in range(2, 10)]   # 4 .. 512


@pytest.fixture(autouse=True)
def bundled_registry_only(monkeypatch):
    monkeypatch.delenv(hub.REGISTRY_ENV, raising=False)


def test_every_downloadable_entry_has_an_architecture_test_and_a_known_format():
    entries = hub.registry()
    assert {name for name, e in entries.items() if not e.bundled} == BUILT_HERE
    assert all(e.format in READER_OF_FORMAT for e in entries.values())


def test_the_readme_model_table_lists_every_registry_entry():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    assert set(hub.registry()) <= rows


def test_bundled_entries_load_at_their_registered_resolution():
    for entry in (e for e in hub.registry().values() if e.bundled):
        path = hub.fetch(entry.name)
        assert formats.detect(path).name == READER_OF_FORMAT[entry.format]
        assert formats.read(path).G_ema.img_resolution == entry.resolution


def mapping_reference(z: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]], normalize: bool,
                      lr_mul: float = 0.01) -> torch.Tensor:
    """The published mapping formula: optional 2nd-moment normalisation of z, then per layer
    lrelu(x @ W.T * lr_mul / sqrt(in) + b * lr_mul) * sqrt(2). W: [out, in]."""
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt() if normalize else z
    for W, b in layers:
        x = F.leaky_relu(x @ W.T * (lr_mul / math.sqrt(W.shape[1])) + b * lr_mul, 0.2) * math.sqrt(2)
    return x


def _z(dim: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(0).randn(2, dim)).float()


def assert_generates(G, resolution: int) -> None:
    """One image through the whole loaded network (what ``generate`` does with it)."""
    with torch.no_grad():
        img = G(_z(G.z_dim)[:1], psi=0.7)
    assert img.shape == (1, 3, resolution, resolution) and torch.isfinite(img).all() and img.std() > 0


def test_anime_portraits_512_config_f_tf_snapshot_loads(tmp_path):
    entry = hub.registry()["anime-portraits-512"]
    path, marker = tmp_path / entry.remote().cached_name, tmp_path / ff.MARKER_NAME
    G, D, Gs = pm.write_anime_portraits_512(path, marker)
    assert formats.detect(path).name == READER_OF_FORMAT[entry.format]
    nets = formats.read(path)
    assert not marker.exists()                      # the embedded module source never ran
    cfg = nets.G_ema.cfg
    assert (cfg.img_resolution, cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.architecture) == \
        (entry.resolution, 512, 512, 8, "skip")
    config_f = [pm.tf_nf(int(math.log2(r)) - 1) for r in RESOLUTIONS]
    assert config_f == [512] * 5 + [256, 128, 64]
    assert [cfg.channels(r) for r in RESOLUTIONS] == config_f == [nets.D.cfg.channels(r) for r in RESOLUTIONS]
    assert (nets.D.cfg.architecture, nets.D.cfg.mbstd_group_size, nets.D.cfg.mbstd_num_channels) == ("resnet", 4, 1)

    gs = {k: torch.from_numpy(v) for k, v in pm.tf_variables(Gs).items()}
    layers = [(gs[f"mapping/Dense{i}/weight"].T, gs[f"mapping/Dense{i}/bias"]) for i in range(8)]
    z = _z(512)
    with torch.no_grad():
        torch.testing.assert_close(nets.G_ema.mapping(z, None)[:, 0], mapping_reference(z, layers, normalize=True),
                                   rtol=1e-5, atol=1e-5)
    assert torch.equal(nets.G_ema.mapping.w_avg, gs["dlatent_avg"])
    g = pm.tf_variables(G)   # the raw generator is read too, from its own variables
    assert torch.equal(nets.G.synthesis.b512.torgb.affine.weight,
                       torch.from_numpy(g["synthesis/512x512/ToRGB/mod_weight"].T))
    assert torch.equal(nets.D.b4.out.weight, torch.from_numpy(pm.tf_variables(D)["Output/weight"].T))
    assert_generates(nets.G_ema, entry.resolution)


def test_tadne_512_rosinality_checkpoint_loads(tmp_path):
    entry = hub.registry()["tadne-512"]
    path = tmp_path / entry.remote().cached_name
    ckpt = pm.write_tadne_512(path)
    assert formats.detect(path).name == READER_OF_FORMAT[entry.format]
    nets = formats.read(path)
    assert nets.G is None and nets.D is None        # convert_weight.py saves g_ema and latent_avg only
    cfg = nets.G_ema.cfg
    assert (cfg.img_resolution, cfg.z_dim, cfg.w_dim, cfg.mapping_layers) == (entry.resolution, 1024, 1024, 4)
    # Aydao's TF settings (fmap_base 32 << 10, fmap_max 1024) and the converted layout agree ...
    aydao = [pm.tf_nf(int(math.log2(r)) - 1, 32 << 10, 1024) for r in RESOLUTIONS]
    rosinality = pm.rosinality_channels(channel_multiplier=2, additional_multiplier=2)
    assert aydao == [rosinality[r] for r in RESOLUTIONS] == [1024] * 5 + [512, 256, 128]
    # ... and the loaded network has them: twice config F's width at every resolution.
    assert [cfg.channels(r) for r in RESOLUTIONS] == aydao
    assert (cfg.channel_base, cfg.channel_max) == (65536, 1024)

    sd = {k: v.float() for k, v in ckpt["g_ema"].items()}
    layers = [(sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]) for i in range(1, 5)]
    z = _z(1024)
    with torch.no_grad():   # rosinality's style network: PixelNorm, then EqualLinear with lr_mul 0.01
        torch.testing.assert_close(nets.G_ema.mapping(z, None)[:, 0], mapping_reference(z, layers, normalize=True),
                                   rtol=1e-5, atol=1e-5)
    assert torch.equal(nets.G_ema.mapping.w_avg, ckpt["latent_avg"])
    assert torch.equal(nets.G_ema.synthesis.b512.torgb.weight, sd["to_rgbs.6.conv.weight"][0])
    assert_generates(nets.G_ema, entry.resolution)   # 1024 channels up to 64²: about 20 s on 2 cores
