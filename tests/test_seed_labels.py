"""Seeds asked for no particular character bring their own labels (issue 21 item 2): drawn from the
seed, with the training data's frequencies, the same in any batch; `generate` uses them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.data.attributes import label_names
from stylegan_anime.editing.tags import network_label_prior, seed_labels, with_label_names, with_label_prior
from stylegan_anime.errors import UserError
from stylegan_anime.metrics.classifier import label_groups
from stylegan_anime.networks import Generator

from conftest import randomize_buffers, small_g_config

NAMES = label_names()
GROUPS = {g.name: g for g in label_groups(NAMES)}


def skewed_labels(n: int = 1000) -> np.ndarray:
    """A label set whose hair colour is 70 % the first value and whose glasses are on 10 % of the time."""
    rng = np.random.default_rng(0)
    rows = np.zeros([n, len(NAMES)], np.float32)
    for g in GROUPS.values():
        if g.binary:
            rows[:, g.start] = rng.random(n) < (0.1 if g.name == "glasses" else 0.5)
        else:
            first = rng.random(n) < (0.7 if g.name == "hair_color" else 1 / g.width)
            pick = np.where(first, 0, rng.integers(1, g.width, n))
            rows[np.arange(n), g.start + pick] = 1
    return rows


def conditional_G(extra: dict[str, str]) -> Generator:
    torch.manual_seed(0)
    return randomize_buffers(Generator(small_g_config(c_dim=len(NAMES), extra=extra))).eval()


def test_seed_labels_follow_the_stored_data_frequencies():
    data = skewed_labels()
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), data))
    assert np.allclose(network_label_prior(G), data.mean(0), atol=1e-6)
    c = seed_labels(G, list(range(4000))).numpy()
    for g in GROUPS.values():
        span = c[:, g.start:g.start + g.width]
        if not g.binary:
            assert (span.sum(1) == 1).all()   # one value per categorical group
    hair, glasses = GROUPS["hair_color"], GROUPS["glasses"]
    assert abs(c[:, hair.start].mean() - data[:, hair.start].mean()) < 0.03
    assert abs(c[:, glasses.start].mean() - data[:, glasses.start].mean()) < 0.03
    # Without stored frequencies: uniform values and binary entries on half the time.
    plain = seed_labels(conditional_G(with_label_names({}, NAMES)), list(range(4000))).numpy()
    assert abs(plain[:, hair.start].mean() - 1 / hair.width) < 0.03
    assert abs(plain[:, glasses.start].mean() - 0.5) < 0.03


def test_a_seed_keeps_its_labels_in_any_batch():
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), skewed_labels()))
    alone = seed_labels(G, [7])
    assert torch.equal(seed_labels(G, [3, 7, 11])[1], alone[0])
    assert not all(torch.equal(seed_labels(G, [s])[0], alone[0]) for s in range(8, 14))  # seeds differ


def test_a_prior_of_the_wrong_length_is_a_user_error():
    G = conditional_G({**with_label_names({}, NAMES), "label_prior": "[0.5, 0.5]"})
    with pytest.raises(UserError, match="label frequencies"):
        seed_labels(G, [0])


def test_generate_without_labels_on_a_conditional_network_uses_each_seeds_labels(tmp_path):
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), skewed_labels()))
    net = sa.save(G, tmp_path / "c.safetensors")
    assert main(["generate", "--network", str(net), "--seeds", "3-4", "--grid", "2x1",
                 "-o", str(tmp_path / "g.png")]) == 0
    want = sa.generate_images(G, [3, 4], c=seed_labels(G, [3, 4]))
    assert torch.allclose(sa.generate_images(G, [3, 4]), want)   # the API does the same
    got = torch.from_numpy(np.array(Image.open(tmp_path / "g.png"))).permute(2, 0, 1).float() / 127.5 - 1
    assert (got[:, :, 32:] - want[1].clamp(-1, 1)).abs().max() < 2 / 127.5 + 1e-4
    # The labels matter: seed 4 with seed 3's labels is another image.
    swapped = sa.generate_images(G, [4], c=seed_labels(G, [3]))
    assert (swapped[0] - want[1]).abs().mean() > 1e-3


def test_mix_truncation_and_interpolation_draw_seeds_with_their_own_labels():
    from stylegan_anime.features.interpolation import KeyframePath
    from stylegan_anime.features.truncation import truncation_images
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), skewed_labels()))
    want = sa.generate_images(G, [3, 4])
    assert torch.allclose(truncation_images(G, [3, 4], [1.0]), want, atol=1e-5)
    z = sa.seeds_to_z([3, 4], G.z_dim)
    for space in ("z", "slerp", "w"):
        path = KeyframePath(G, [3, 4], space=space)
        ends = path.ws(np.array([0, 0]), np.array([0.0, 1.0]))
        assert torch.allclose(ends, G.mapping(z, seed_labels(G, [3, 4])), atol=1e-5), space
    # Halfway in z, the labels are blended too: not seed 3's and not seed 4's.
    mid = KeyframePath(G, [3, 4], space="z").ws(np.array([0]), np.array([0.5]))
    zmid = (z[0] + z[1])[None] / 2
    blended = seed_labels(G, [3, 4]).mean(0, keepdim=True)
    assert torch.allclose(mid, G.mapping(zmid, blended), atol=1e-5)


def test_projection_without_labels_uses_uniform_labels_on_a_conditional_network():
    from stylegan_anime.editing.projection import ProjectionConfig, project
    from stylegan_anime.editing.tags import tag_labels
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), skewed_labels()))
    target = sa.generate_images(G, [9])
    cfg = ProjectionConfig(steps=3, w_avg_samples=64)
    implicit = project(G, target, cfg)
    explicit = project(G, target, cfg, c=tag_labels([], NAMES))
    assert torch.equal(implicit.latent.w, explicit.latent.w)
    assert not torch.equal(implicit.latent.w, project(G, target, cfg, c=seed_labels(G, [9])).latent.w)


def test_with_group_value_changes_one_group_and_keeps_the_rest():
    from stylegan_anime.editing.tags import with_group_value
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), skewed_labels()))
    c = seed_labels(G, list(range(50)))
    hair, glasses = GROUPS["hair_color"], GROUPS["glasses"]
    blonde = with_group_value(c, hair, NAMES.index("hair_color=blonde") - hair.start)
    assert (blonde[:, NAMES.index("hair_color=blonde")] == 1).all() and (blonde[:, :hair.width].sum(1) == 1).all()
    assert torch.equal(blonde[:, hair.width:], c[:, hair.width:])
    for v in (0, 1):
        assert (with_group_value(c, glasses, v)[:, glasses.start] == v).all()


def test_a_saved_latent_keeps_its_labels_along_a_z_path_and_one_without_labels_is_refused():
    from stylegan_anime.features.interpolation import KeyframePath
    from stylegan_anime.latents.files import Latent
    G = conditional_G(with_label_prior(with_label_names({}, NAMES), skewed_labels()))
    z = sa.seeds_to_z([3, 4], G.z_dim)
    own = seed_labels(G, [5])
    start = KeyframePath(G, [Latent(z=z[0], c=own[0]), 4], space="z").ws(np.array([0]), np.array([0.0]))
    assert torch.allclose(start, G.mapping(z[:1], own), atol=1e-5)
    with pytest.raises(UserError, match="without labels"):
        KeyframePath(G, [Latent(z=z[0]), 4], space="z")
