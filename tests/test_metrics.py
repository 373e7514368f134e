"""FID: matrix square root and statistics against scipy, distance properties, the feature networks,
the attribute classifier on a tiny synthetic set, and the fid / classifier commands."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.data import attributes
from stylegan_anime.data.synthetic import write_synthetic_dataset
from stylegan_anime.errors import UserError
from stylegan_anime.metrics import (AttributeClassifier, ClassifierConfig, ClassifierTraining, FeatureStats,
                                    dataset_stats, fid_from_stats, frechet_distance, generator_fid, load_classifier,
                                    load_features, save_classifier, sqrtm_psd, train_classifier)
from stylegan_anime.metrics.train_classifier import accuracy, load_images, majority_accuracy, split
from stylegan_anime.training.dataset import ImageDataset


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula, as the public FID code computes it (scipy's general sqrtm)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def stats(x: np.ndarray, batch: int = 7) -> FeatureStats:
    s = FeatureStats(x.shape[1])
    for i in range(0, len(x), batch):
        s.update(x[i:i + batch])
    return s


@pytest.mark.parametrize("rank", [12, 5])  # full rank (SPD) and rank-deficient (PSD)
def test_sqrtm_psd_matches_scipy(rank):
    rng = np.random.default_rng(rank)
    a = rng.standard_normal((12, rank))
    spd = a @ a.T
    ours = sqrtm_psd(spd)
    np.testing.assert_allclose(ours, scipy.linalg.sqrtm(spd).real, atol=1e-6)
    np.testing.assert_allclose(ours @ ours, spd, atol=1e-9)


def test_streaming_stats_match_numpy():
    x = np.random.default_rng(0).standard_normal((103, 9)) * 3 + 5
    s = stats(x)
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-10)
    s_torch = FeatureStats(9).update(torch.from_numpy(x[:50]).float()).update(torch.from_numpy(x[50:]).float())
    np.testing.assert_allclose(s_torch.cov, np.cov(x.astype(np.float32), rowvar=False), rtol=1e-5)


def test_fid_matches_scipy_on_random_features():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 16))
    y = rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16)) * 0.5 + 0.3
    ours = fid_from_stats(stats(x), stats(y))
    assert ours == pytest.approx(scipy_fid(x, y), rel=1e-7)


def test_fid_of_a_set_with_itself_is_zero_and_order_does_not_matter():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 10))
    y = rng.standard_normal((200, 10)) + 0.2
    assert fid_from_stats(stats(x), stats(x)) == pytest.approx(0, abs=1e-9)
    perm = rng.permutation(len(y))
    assert fid_from_stats(stats(x), stats(y[perm], batch=13)) == pytest.approx(fid_from_stats(stats(x), stats(y)),
                                                                              rel=1e-9)


def test_fid_grows_as_a_gaussian_shifts():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 8))
    y = rng.standard_normal((500, 8))
    values = [fid_from_stats(stats(x), stats(y + shift)) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    # the mean term dominates: a shift d in every one of 8 dimensions adds 8 d²
    assert values[3] - values[0] == pytest.approx(8 * 4, rel=0.05)


def test_frechet_distance_of_known_gaussians():
    # N(0, I) vs N(m, 4 I) in D dims: |m|² + D (1 + 4 - 2·2) = |m|² + D
    d = 6
    m = np.arange(d, dtype=float)
    assert frechet_distance(np.zeros(d), np.eye(d), m, 4 * np.eye(d)) == pytest.approx(m @ m + d)


def test_no_feature_network_is_one_line(tmp_path):
    with pytest.raises(UserError) as e:
        load_features(None)
    assert "--features PATH" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError, match="no feature network"):
        load_features(tmp_path / "inception-2015-12-05.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a network")
    with pytest.raises(UserError, match="neither"):
        load_features(junk)


class _Scripted(torch.nn.Module):
    """Stands in for the TorchScript Inception: uint8 images, ``return_features`` → per-channel means."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert x.dtype == torch.uint8
        return x.float().mean(dim=(2, 3))


def test_a_torchscript_file_is_used_as_the_feature_network(tmp_path):
    path = tmp_path / "net.pt"
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; the Inception file is one
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Scripted()).save(str(path))
    net = load_features(path)
    images = torch.rand(4, 3, 8, 8) * 2 - 1
    expected = ((images + 1) * 127.5).round().mean(dim=(2, 3))
    torch.testing.assert_close(net.features(images), expected)


def test_classifier_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = AttributeClassifier(ClassifierConfig(label_names=attributes.label_names(), resolution=16,
                                                 channel_base=8, channel_max=16, feature_dim=12)).eval()
    path = save_classifier(model, tmp_path / "clf.safetensors")
    loaded = load_features(path)
    x = torch.rand(3, 3, 24, 24) * 2 - 1  # another size: resized inside
    torch.testing.assert_close(loaded.features(x), model.features(x), rtol=0, atol=0)
    probs = load_classifier(path).predict(x)
    groups = {g.name: g for g in model.groups}
    hair = groups["hair_color"]
    torch.testing.assert_close(probs[:, hair.start:hair.start + hair.width].sum(1), torch.ones(3))
    assert (tmp_path / "clf.json").exists()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("syn") / "set", 200, 16, progress=False)


def test_the_trained_classifier_beats_chance_on_held_out_images(synthetic, one_thread):
    ds = ImageDataset(synthetic)
    opts = ClassifierTraining(steps=80, batch=32, lr=3e-3, holdout=0.25)
    cfg = ClassifierConfig(label_names=ds.label_names, resolution=16, channel_base=16, channel_max=32,
                           feature_dim=32)
    model = train_classifier(ds, cfg, opts, progress=False)
    train_idx, held = split(len(ds.image_names), opts.holdout, opts.seed)
    images, labels = load_images(ds, held, progress=False)
    _, train_labels = load_images(ds, train_idx, progress=False)
    acc, base = accuracy(model, images, labels), majority_accuracy(model, train_labels, labels)
    # hair colour (8 values) is the easiest cue to see; most-common-colour guessing gets ~1/8
    assert acc["hair_color"] > base["hair_color"] + 0.3, (acc, base)
    assert np.mean(list(acc.values())) > np.mean(list(base.values())), (acc, base)
    predicted = model.predict_attributes(images.float() / 127.5 - 1)
    truth = [ds.get_attributes(int(i)) for i in held]
    hits = np.mean([p["hair_color"] == t["hair_color"] for p, t in zip(predicted, truth)])
    assert hits == pytest.approx(acc["hair_color"])  # the readable predictions are the scored ones
    assert set(predicted[0]) == {a.name for a in attributes.ATTRIBUTES}


def test_generator_fid_in_classifier_space_and_the_cli(synthetic, small_G, tmp_path, capsys, one_thread):
    torch.manual_seed(0)
    clf = AttributeClassifier(ClassifierConfig(label_names=attributes.label_names(), resolution=16,
                                               channel_base=8, channel_max=16, feature_dim=8)).eval()
    real = dataset_stats(synthetic, clf, max_items=64, progress=False)
    assert real.count == 64
    value = generator_fid(small_G, clf, real, num=40, batch=20, progress=False)
    assert value > 0
    assert generator_fid(small_G, clf, real, num=40, batch=7, progress=False) == pytest.approx(value, rel=1e-6)
    net = sa.save(small_G, tmp_path / "g.safetensors")
    feats = save_classifier(clf, tmp_path / "clf.safetensors")
    assert main(["fid", "--network", str(net), "--data", str(synthetic), "--features", str(feats), "--num", "40",
                 "--max-data", "64"]) == 0
    out = capsys.readouterr().out.strip()
    assert float(out.split()[-1]) == pytest.approx(value, rel=1e-6)
    assert main(["fid", "--network", str(net), "--data", str(synthetic)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--features PATH" in err and "\n" not in err


def test_classifier_command_trains_and_reports(synthetic, tmp_path, capsys, one_thread):
    out = tmp_path / "clf.safetensors"
    assert main(["classifier", "--data", str(synthetic), "-o", str(out), "--steps", "5", "--resolution", "16",
                 "--feature-dim", "16"]) == 0
    report = capsys.readouterr().out
    assert "hair_color" in report and "held-out" in report
    model = load_classifier(out)
    assert model.cfg.feature_dim == 16 and model.cfg.label_names == attributes.label_names()


def test_training_logs_fid_at_each_snapshot(synthetic, tmp_path, one_thread):
    from stylegan_anime.io import loading
    from stylegan_anime.metrics import snapshot_fid
    from stylegan_anime.training import checkpoint
    torch.manual_seed(0)
    clf = AttributeClassifier(ClassifierConfig(label_names=attributes.label_names(), resolution=16,
                                               channel_base=8, channel_max=16, feature_dim=8))
    feats = save_classifier(clf, tmp_path / "clf.safetensors")
    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic), "--out", str(run), "--kimg", "0.008", "--snap", "0.004",
                 "--cbase", "128", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map", "2", "--batch", "4",
                 "--augment", "off", "--quiet", "--fid-features", str(feats), "--fid-num", "24"]) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) >= 2 and all(line["fid_clf"] > 0 for line in lines)
    G = loading.load(str(checkpoint.latest_snapshot(run)))
    assert G.c_dim == len(attributes.label_names())  # conditional: samples take the data set's labels
    again = snapshot_fid(synthetic, feats, num=24)(G, 8)["fid_clf"]
    assert again == pytest.approx(lines[-1]["fid_clf"], rel=1e-5)
