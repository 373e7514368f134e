"""SeFa directions, fit quality of regression directions, and the directions file's method (issue 21 items 5, 6)."""
from __future__ import annotations

import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.editing.directions import (MIN_R2, Directions, drop_weak, edit, held_out_r2, load_directions,
                                               save_directions)
from stylegan_anime.editing.sefa import sefa_directions
from stylegan_anime.errors import UserError

cos = torch.nn.functional.cosine_similarity


def plant_direction(G, v: torch.Tensor, layers, strength: float = 20.0, seed: int = 0) -> None:
    """Affine weights of the convs reading ``layers`` become small noise + a rank-one part (u vᵀ) that
    makes v the w axis moving their styles most."""
    gen = torch.Generator().manual_seed(seed)
    convs = G.synthesis.noise_layers()
    with torch.no_grad():
        for i in layers:
            a = convs[i].affine
            u = torch.randn(a.weight.shape[0], 1, generator=gen)
            noise = torch.randn(a.weight.shape, generator=gen) * 0.1
            a.weight.copy_((noise + strength * u @ v[None]) / a.weight_gain)


def unit(dim, seed):
    return torch.nn.functional.normalize(torch.randn(dim, generator=torch.Generator().manual_seed(seed)), dim=0)


def test_sefa_finds_a_planted_dominant_direction_in_the_chosen_layers(small_G):
    d = small_G.w_dim
    v_coarse, v_rest = unit(d, 1), unit(d, 2)
    n_conv = len(small_G.synthesis.noise_layers())
    plant_direction(small_G, v_coarse, [0, 1, 2])
    plant_direction(small_G, v_rest, range(3, n_conv), seed=1)
    coarse = sefa_directions(small_G, "0-2", count=3)
    rest = sefa_directions(small_G, list(range(3, n_conv)), count=3)
    assert abs(float(cos(coarse["sefa0"], v_coarse, dim=0))) > 0.999
    assert abs(float(cos(rest["sefa0"], v_rest, dim=0))) > 0.999
    # Ranked strongest first, orthonormal, recorded as SeFa over those layers.
    assert bool((coarse.eigenvalues[:-1] >= coarse.eigenvalues[1:]).all())
    assert float(coarse.eigenvalues[0]) > 50 * float(coarse.eigenvalues[1])
    assert torch.allclose(coarse.vectors @ coarse.vectors.T, torch.eye(3), atol=1e-5)
    assert coarse.method == "sefa" and coarse.layers == (0, 1, 2)
    # The plant is what it finds: without it the top direction is elsewhere.
    plain = sa.Generator(small_G.cfg)
    assert abs(float(cos(sefa_directions(plain, "0-2", count=1)["sefa0"], v_coarse, dim=0))) < 0.9


def test_sefa_matches_the_eigenvectors_of_the_stacked_weights(small_G):
    convs = small_G.synthesis.noise_layers()
    a = torch.cat([convs[i].affine.weight.detach().double() * convs[i].affine.weight_gain for i in (1, 2)])
    u, s, vh = torch.linalg.svd(a, full_matrices=False)   # right singular vectors = eigenvectors of AᵀA
    got = sefa_directions(small_G, [1, 2], count=4)
    assert torch.allclose(got.eigenvalues.double(), s[:4] ** 2, rtol=1e-4)
    for k in range(4):
        assert abs(float(cos(got.vectors[k].double(), vh[k], dim=0))) > 0.9999
    # std is the spread of mapped w along each direction.
    w = small_G.mapping(sa.seeds_to_z(list(range(2000)), small_G.z_dim))[:, 0].detach()
    assert torch.allclose(got.std, ((w - w.mean(0)) @ got.vectors.T).std(0), rtol=1e-3)


def test_sefa_edit_moves_only_its_layers_and_round_trips(tmp_path, small_G):
    dirs = sefa_directions(small_G, "0-2", count=2)
    ws = small_G.mapping(sa.seeds_to_z([0, 1], small_G.z_dim)).detach()
    moved = edit(ws, dirs, {"sefa0": 2.0})
    delta = (moved - ws).norm(dim=2)
    assert bool((delta[:, :3] > 0).all()) and bool((delta[:, 3:] == 0).all())
    assert torch.allclose(delta[:, 0], torch.full([2], 2.0 * float(dirs.std[0])), rtol=1e-4)
    back = load_directions(save_directions(dirs, tmp_path / "s.npz"))
    assert back.method == "sefa" and back.layers == (0, 1, 2) and torch.equal(back.eigenvalues, dirs.eigenvalues)
    assert torch.equal(back.vectors, dirs.vectors)
    with pytest.raises(UserError, match="drive no convolution"):
        sefa_directions(small_G, [small_G.synthesis.num_ws - 1])
    with pytest.raises(UserError, match="count must be"):
        sefa_directions(small_G, "all", count=small_G.w_dim + 1)


def test_held_out_r2_matches_the_signal_share_of_the_label():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4000, 16, generator=gen)
    t = unit(16, 3)
    signal = w @ t                                      # variance 1
    labels = torch.stack([signal, signal + torch.randn(4000, generator=gen), torch.randn(4000, generator=gen)], 1)
    r2 = held_out_r2(w, labels)
    assert r2[0] > 0.999                                # exact linear label
    assert abs(float(r2[1]) - 0.5) < 0.05               # half its variance is noise w does not predict
    assert abs(float(r2[2])) < 0.02                     # pure noise: no better than the mean
    dirs = sa.fit_directions(w, labels, ["exact", "half", "noise"])
    dirs.r2 = r2
    kept, refused = drop_weak(dirs)
    assert kept.names == ["exact", "half"] and list(refused) == ["noise"] and MIN_R2 == 0.1
    with pytest.raises(UserError, match="no direction fits"):
        drop_weak(Directions(["noise"], dirs.vectors[2:], dirs.std[2:], r2=r2[2:]))


def test_old_directions_files_load_as_regression(tmp_path):
    import numpy as np
    path = tmp_path / "old.npz"
    np.savez(path, names=np.array(["glasses"]), vectors=np.ones((1, 4), np.float32) / 2, std=np.ones(1, np.float32))
    d = load_directions(path)
    assert d.method == "regression" and d.layers is None and d.r2 is None


def test_directions_cli_sefa_then_edit(tmp_path, small_G, capsys):
    net = sa.save(small_G, tmp_path / "g.safetensors")
    out = tmp_path / "sefa.npz"
    assert main(["directions", "--network", str(net), "--method", "sefa", "--layers", "0-2", "--count", "3",
                 "-o", str(out)]) == 0
    assert "sefa0: eigenvalue" in capsys.readouterr().out
    d = load_directions(out)
    assert d.method == "sefa" and d.names == ["sefa0", "sefa1", "sefa2"]
    assert main(["edit", "--network", str(net), "--seeds", "0", "--directions", str(out), "--tags", "sefa0",
                 "--steps", "3", "-o", str(tmp_path / "e.png")]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "e.png").size == (3 * 32, 32)
    capsys.readouterr()
    for bad in (["--method", "regression"], ["--method", "sefa", "--classifier", "c.safetensors"],
                ["--method", "sefa", "--layers", "0-99"]):
        assert main(["directions", "--network", str(net), *bad, "-o", str(tmp_path / "x.npz")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("stylegan-anime directions: error:") and "\n" not in err
    assert not (tmp_path / "x.npz").exists()


def test_edit_warns_on_a_weak_regression_direction(tmp_path, small_G, capsys):
    net = sa.save(small_G, tmp_path / "g.safetensors")
    vectors = torch.nn.functional.normalize(torch.randn(2, small_G.w_dim, generator=torch.Generator().manual_seed(0)))
    d = Directions(["glasses", "hat"], vectors, torch.ones(2), r2=torch.tensor([0.05, 0.8]))
    path = save_directions(d, tmp_path / "d.npz")
    for tags, warned in (("glasses", True), ("hat", False)):
        assert main(["edit", "--network", str(net), "--seeds", "0", "--directions", str(path), "--tags", tags,
                     "--steps", "2", "-o", str(tmp_path / f"{tags}.png")]) == 0
        out = capsys.readouterr().out
        assert ("warning: weak fits" in out and "glasses 0.05" in out) == warned
