"""Tag prompts → label vectors; attribute directions fitted in w space; edit and CLI errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stylegan_anime.cli import main
from stylegan_anime.data.attributes import encode, label_names
from stylegan_anime.editing.directions import (Directions, edit, edit_grid, fit_directions, load_directions,
                                               orthogonalize, save_directions, tag_strengths)
from stylegan_anime.editing.tags import network_label_names, parse_tags, tag_labels, with_label_names
from stylegan_anime.errors import UserError
from stylegan_anime.networks import Generator

from conftest import randomize_buffers, small_g_config

NAMES = label_names()
FULL = {"hair_color": "blonde", "eye_color": "blue", "hair_style": "twintails", "mouth": "smile",
        "bangs": False, "blush": False, "ribbon": False, "glasses": True, "hat": False}


def test_full_prompt_matches_encoder_in_label_order():
    vec = tag_labels("blonde hair, blue eyes, twintails, smile, glasses", NAMES, seeds=[3])
    assert vec.shape == (1, len(NAMES))
    assert vec[0].tolist() == [float(v) for v in encode(FULL)]


def test_synonyms_case_spacing_and_order_do_not_matter():
    a = parse_tags("blonde hair, blue eyes, twintails, glasses", NAMES)
    b = parse_tags(["  GLASSES", "Twin Tails", "blue_eyes", "Blond-Hair"], NAMES)
    c = parse_tags("hair_color=blonde, eye_color=blue, twintail, eyeglasses", NAMES)
    assert a == b == c
    assert NAMES[max(a, key=lambda i: NAMES[i] == "hair_color=blonde")] == "hair_color=blonde"


def test_unknown_and_conflicting_tags_are_one_line_user_errors():
    with pytest.raises(UserError, match="did you mean 'blonde hair'") as e:
        parse_tags("blnde hair", NAMES)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="both set hair_color"):
        parse_tags("blonde hair, red hair", NAMES)
    with pytest.raises(UserError, match="unknown tag 'zzzz'"):
        parse_tags("zzzz", NAMES)
    # A bare value shared by two groups is ambiguous: it names neither.
    with pytest.raises(UserError, match="'blue eyes'") as e:
        parse_tags("blue", NAMES)
    assert "'blue hair'" in str(e.value)
    with pytest.raises(UserError, match="only on/off attributes can be negated"):
        parse_tags("no blonde hair", NAMES)


def test_unmentioned_groups_sampled_per_seed_or_uniform():
    uniform = tag_labels("glasses", NAMES)[0]
    assert torch.allclose(uniform[:8], torch.full([8], 1 / 8)) and uniform[NAMES.index("hat")] == 0
    a, b = tag_labels("glasses", NAMES, seeds=[0, 1, 2, 3, 4, 5, 6, 7]), tag_labels("glasses", NAMES, seeds=range(8))
    assert torch.equal(a, b)
    assert torch.equal(a[:, :8].sum(1), torch.ones(8))  # one hair colour each
    assert len({tuple(r[:8].tolist()) for r in a}) > 1   # not all the same
    assert tag_labels("no glasses, hat", NAMES)[0, NAMES.index("glasses")] == 0


def test_free_tag_label_names_from_a_csv():
    names = ["blonde hair", "blue eyes", "glasses"]
    assert tag_labels("Blond hair, glasses", names)[0].tolist() == [1.0, 0.0, 1.0]


def test_network_label_names_from_config_extra():
    G = Generator(small_g_config(c_dim=3, extra=with_label_names({}, ["a", "b", "glasses"])))
    assert network_label_names(G) == ["a", "b", "glasses"]
    with pytest.raises(UserError, match="unnamed labels"):
        network_label_names(Generator(small_g_config(c_dim=3)))


def synthetic_w(n=800, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, dim, generator=gen) * torch.linspace(0.5, 2, dim)
    true = torch.randn(3, dim, generator=gen)
    labels = torch.sigmoid(w @ true.T) + 0.05 * torch.randn(n, 3, generator=gen)
    return w, labels, true


def test_fit_recovers_known_linear_direction_in_an_isotropic_space():
    gen = torch.Generator().manual_seed(0)
    w, true = torch.randn(4000, 16, generator=gen), torch.randn(3, 16, generator=gen)
    d = fit_directions(w, (w @ true[0])[:, None], ["x"])
    assert torch.nn.functional.cosine_similarity(d["x"], true[0], dim=0) > 0.99
    # Through a sigmoid and noise, the axis is still found.
    labels = torch.sigmoid(w @ true.T) + 0.05 * torch.randn(4000, 3, generator=gen)
    d = fit_directions(w, labels, ["a", "b", "c"])
    for k, n in enumerate("abc"):
        assert torch.nn.functional.cosine_similarity(d[n], true[k], dim=0) > 0.95
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(3), atol=1e-5)


def test_a_binary_label_gets_the_axis_between_its_class_means():
    """In an anisotropic space the axis is the one the samples move along between the two values (the
    class-mean difference), not the least-squares weight, which can point along a direction of little spread."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4000, 8, generator=gen) * torch.tensor([5.0, 5, 1, 1, 1, 1, 1, 0.05])
    y = ((w[:, 0] + 40 * w[:, 7] + torch.randn(4000, generator=gen)) > 0).float()[:, None]
    d = fit_directions(w, y, ["on"])
    diff = w[y[:, 0] > 0].mean(0) - w[y[:, 0] == 0].mean(0)
    assert torch.nn.functional.cosine_similarity(d["on"], diff, dim=0) > 0.999
    assert float(d.std[0]) > 1.0   # it has the spread of the data, unlike the w_7 axis (0.05)


def test_orthogonalized_directions_are_orthonormal_and_edits_are_monotone():
    w, labels, true = synthetic_w()
    d = fit_directions(w, labels, ["a", "b", "c"])
    o = orthogonalize(d, ["a", "b"], against=["c"])
    c = d["c"]
    gram = torch.cat([o.vectors, c[None]]) @ torch.cat([o.vectors, c[None]]).T
    assert torch.allclose(gram, torch.eye(3), atol=1e-5)
    w0 = w[:10]
    assert torch.equal(edit(w0, o, {"a": 0.0}), w0)
    # Moving along "a" raises label a's score, and leaves the kept label c's linear score unchanged.
    scores = [torch.sigmoid(edit(w0, o, {"a": s}) @ true[0]) for s in (-2, -1, 0, 1, 2)]
    assert all(bool((hi > lo).all()) for lo, hi in zip(scores, scores[1:]))
    assert torch.allclose(edit(w0, o, {"a": 2}) @ c, w0 @ c, atol=1e-4)


def test_tag_strengths_and_round_trip(tmp_path):
    w, labels, _ = synthetic_w(dim=8)
    d = fit_directions(w, labels, ["hair_color=blonde", "hair_color=red", "glasses"])
    assert tag_strengths("blond hair, no glasses", d, 2.0) == {"hair_color=blonde": 2.0, "glasses": -2.0}
    back = load_directions(save_directions(d, tmp_path / "d.npz"))
    assert back.names == d.names and torch.equal(back.vectors, d.vectors) and torch.equal(back.std, d.std)


def test_edit_grid_centre_column_is_the_unedited_image(small_G):
    d = Directions(["glasses"], torch.nn.functional.normalize(torch.randn(1, small_G.w_dim), dim=1), torch.ones(1))
    grid = edit_grid(small_G, [0, 1], d, {"glasses": 2.0}, steps=3)
    with torch.no_grad():
        plain = small_G(torch.from_numpy(np.stack([np.random.RandomState(s).randn(small_G.z_dim) for s in (0, 1)]))
                        .float())
    assert grid.shape[0] == 6
    assert torch.allclose(grid[[1, 4]], plain, atol=1e-5)
    assert not torch.allclose(grid[0], grid[1], atol=1e-3)


def test_cli_errors_exit_2(tmp_path, small_G, capsys):
    from stylegan_anime import save
    net = save(small_G, tmp_path / "g.safetensors")
    assert main(["edit", "--network", str(net), "--seeds", "0", "--directions", str(tmp_path / "none.npz"),
                 "--tags", "glasses", "-o", str(tmp_path / "e.png")]) == 2
    w, labels, _ = synthetic_w(dim=small_G.w_dim)
    dirs = save_directions(fit_directions(w, labels, ["hair_color=blonde", "hair_color=red", "glasses"]),
                           tmp_path / "d.npz")
    assert main(["edit", "--network", str(net), "--seeds", "0", "--directions", str(dirs),
                 "--tags", "glases", "-o", str(tmp_path / "e.png")]) == 2
    assert "did you mean 'glasses'" in capsys.readouterr().err
    assert main(["edit", "--network", str(net), "--seeds", "0-1", "--directions", str(dirs),
                 "--tags", "glasses", "--steps", "3", "-o", str(tmp_path / "e.png")]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "e.png").size == (3 * 32, 2 * 32)
    assert main(["generate", "--network", str(net), "--seeds", "0", "--tags", "glasses", "-o", str(tmp_path / "g")]) == 2


def test_generate_tags_sets_conditional_labels(tmp_path):
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config(c_dim=len(NAMES), extra=with_label_names({}, NAMES)))).eval()
    from stylegan_anime import generate_images, save
    net = save(G, tmp_path / "c.safetensors")
    assert main(["generate", "--network", str(net), "--seeds", "0-1", "--tags", "blonde hair, blue eyes, glasses",
                 "--grid", "2x1", "-o", str(tmp_path / "t.png")]) == 0
    c = tag_labels("blonde hair, blue eyes, glasses", NAMES, [0, 1])
    want = generate_images(G, [0, 1], c=c)
    from PIL import Image
    got = torch.from_numpy(np.array(Image.open(tmp_path / "t.png"))).permute(2, 0, 1).float() / 127.5 - 1
    assert (got[:, :, :32] - want[0].clamp(-1, 1)).abs().max() < 2 / 127.5 + 1e-4
    assert main(["generate", "--network", str(net), "--seeds", "0", "--tags", "blonde hair", "--class", "1",
                 "-o", str(tmp_path / "x")]) == 2


def test_training_stores_label_names_with_the_generator(tmp_path):
    from stylegan_anime.training.loop import Trainer
    from training_utils import BlobDataset, tiny_config

    ds = BlobDataset(n=4, c_dim=3)
    ds.label_names = ["hair_color=blonde", "hair_color=red", "glasses"]
    trainer = Trainer(tiny_config(c_dim=3), tmp_path, ds, progress_bar=False)
    assert network_label_names(trainer.G_ema) == ds.label_names
    assert tag_labels("red hair", network_label_names(trainer.G_ema))[0].tolist() == [0.0, 1.0, 0.0]


def test_directions_cli_fits_one_unit_direction_per_classifier_label(tmp_path, small_G):
    from stylegan_anime import save
    from stylegan_anime.metrics import AttributeClassifier, ClassifierConfig, save_classifier
    torch.manual_seed(0)
    clf = AttributeClassifier(ClassifierConfig(label_names=["hair_color=blonde", "hair_color=red", "glasses"],
                                               resolution=8, channel_base=4, channel_max=8, feature_dim=8))
    net, clf_path = save(small_G, tmp_path / "g.safetensors"), save_classifier(clf, tmp_path / "clf.safetensors")
    out = tmp_path / "dirs.npz"
    # A random classifier's scores are not a function of w (held-out R² < 0): refused by default ...
    assert main(["directions", "--network", str(net), "--classifier", str(clf_path), "--samples", "24",
                 "-o", str(out)]) == 2
    assert not out.exists()
    # ... and written when asked to keep every fit.
    assert main(["directions", "--network", str(net), "--classifier", str(clf_path), "--samples", "24",
                 "--min-r2=-1000", "-o", str(out)]) == 0
    d = load_directions(out)
    assert d.names == clf.cfg.label_names and d.vectors.shape == (3, small_G.w_dim)
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(3), atol=1e-5) and bool((d.std > 0).all())
    # The fit is the one of fit_directions on the classifier's scores of the same samples.
    from stylegan_anime.editing.directions import sample_labelled_w
    w, probs = sample_labelled_w(small_G, clf, 24)
    assert torch.allclose(fit_directions(w, probs, d.names).vectors, d.vectors, atol=1e-5)
    assert main(["directions", "--network", str(net), "--classifier", str(tmp_path / "no.safetensors"),
                 "--samples", "4", "-o", str(out)]) == 2
