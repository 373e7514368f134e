"""Synthetic portraits, the attribute vocabulary, the data set writer and ImageDataset."""
from __future__ import annotations

import hashlib
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from stylegan_anime.data import attributes as vocab
from stylegan_anime.data.synthetic import draw_portrait, sample_params, write_synthetic_dataset
from stylegan_anime.data.writer import DatasetWriter
from stylegan_anime.errors import UserError
from stylegan_anime.training.dataset import ImageDataset


def test_same_seed_same_bytes_different_seeds_differ():
    a = draw_portrait(sample_params(7), 64).tobytes()
    assert a == draw_portrait(sample_params(7), 64).tobytes()
    assert a != draw_portrait(sample_params(8), 64).tobytes()
    assert sample_params(7) == sample_params(7)


def test_portrait_is_rgb_at_the_requested_resolution():
    for res in (32, 64, 128):
        im = draw_portrait(sample_params(3), res)
        assert im.mode == "RGB" and im.size == (res, res)


def test_sampler_covers_the_whole_vocabulary():
    seen = {a.name: set() for a in vocab.ATTRIBUTES}
    for s in range(300):
        for k, v in sample_params(s).attributes().items():
            seen[k].add(v)
    for a in vocab.ATTRIBUTES:
        assert seen[a.name] == (set(a.values) if not a.binary else {False, True}), a.name


def test_label_vector_round_trips_through_the_vocabulary():
    names = vocab.label_names()
    assert len(names) == len(vocab.HAIR_COLORS) + len(vocab.EYE_COLORS) + len(vocab.HAIR_STYLES) \
        + len(vocab.MOUTHS) + 5
    for s in range(40):
        p = sample_params(s)
        vec = p.label()
        assert len(vec) == len(names)
        assert vocab.decode(vec) == p.attributes()
        assert vec[names.index(f"hair_color={p.hair_color}")] == 1
        assert vec[names.index("glasses")] == int(p.glasses)
        for a in vocab.ATTRIBUTES:   # exactly one hot per categorical group
            if not a.binary:
                assert sum(vec[names.index(n)] for n in a.entry_names()) == 1


def test_tags_and_unknown_values():
    assert vocab.tags({"hair_color": "blonde", "eye_color": "blue", "hair_style": "twintails",
                       "glasses": True, "hat": False}) == ["blonde hair", "blue eyes", "twintails", "glasses"]
    values = sample_params(0).attributes() | {"hair_color": "green-ish"}
    with pytest.raises(UserError, match="hair_color"):
        vocab.encode(values)


def test_drawing_shows_the_hair_and_eye_colour():
    checked = 0
    for s in range(40):
        p = sample_params(s)
        if p.hat:
            continue
        a = np.asarray(draw_portrait(p, 64)).astype(int)
        crown = a[8:16, 26:38].reshape(-1, 3)
        assert (np.abs(crown - p.hair_rgb).max(1) < 40).mean() > 0.4, s
        assert (np.abs(a.reshape(-1, 3) - p.eye_rgb).max(1) < 30).sum() >= 5, s
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_written_set_reads_back_pixel_exact(tmp_path, suffix):
    out = tmp_path / f"set{suffix}"
    write_synthetic_dataset(out, 6, 32, seed=10, progress=False)
    ds = ImageDataset(out)
    assert len(ds) == 6 and ds.resolution == 32 and ds.c_dim == len(vocab.label_names())
    assert ds.has_labels and ds.image_shape == (3, 32, 32)
    assert ds.label_names == vocab.label_names()
    for i in (0, 5):
        img, label = ds[i]
        p = sample_params(10 + i)
        assert img.dtype == torch.uint8 and img.shape == (3, 32, 32)
        np.testing.assert_array_equal(img.permute(1, 2, 0).numpy(), np.asarray(draw_portrait(p, 32)))
        assert label.dtype == torch.float32 and label.tolist() == p.label()
        assert ds.get_attributes(i) == p.attributes()
    meta = json.loads((out / "dataset.json").read_text() if not suffix else zipfile.ZipFile(out).read("dataset.json"))
    assert meta["labels"][3][0] == "img00000003.png" and meta["resolution"] == 32


def test_zip_is_deterministic(tmp_path):
    digests = []
    for name in ("a.zip", "b.zip"):
        write_synthetic_dataset(tmp_path / name, 4, 32, seed=1, progress=False)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_parallel_workers_write_the_same_bytes(tmp_path):
    write_synthetic_dataset(tmp_path / "one.zip", 40, 16, seed=5, progress=False)
    write_synthetic_dataset(tmp_path / "two.zip", 40, 16, seed=5, progress=False, workers=2)
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_xflip_and_unlabelled_reading(tmp_path):
    write_synthetic_dataset(tmp_path / "s.zip", 3, 32, progress=False)
    ds = ImageDataset(tmp_path / "s.zip", use_labels=False, xflip=True)
    assert len(ds) == 6 and ds.c_dim == 0 and ds.label_names == [] and not ds.has_labels
    img, label = ds[1]
    flipped, _ = ds[4]
    assert label.shape == (0,)
    assert torch.equal(flipped, img.flip(2)) and not torch.equal(flipped, img)


def test_zip_dataset_pickles_for_workers(tmp_path):
    write_synthetic_dataset(tmp_path / "s.zip", 3, 32, progress=False)
    ds = ImageDataset(tmp_path / "s.zip")
    first = ds[0][0]
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0][0], first)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1)
    images, labels = next(iter(loader))
    assert images.shape == (3, 3, 32, 32) and labels.shape == (3, ds.c_dim)


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "set"
    with pytest.raises(RuntimeError):
        with DatasetWriter(out, 32) as w:
            w.add(draw_portrait(sample_params(0), 32))
            raise RuntimeError("interrupted")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_reader_rejects_bad_paths(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ImageDataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        ImageDataset(tmp_path / "empty")


def test_cli_synthetic(tmp_path, capsys):
    from stylegan_anime.cli import main
    out = tmp_path / "syn.zip"
    assert main(["dataset", "--synthetic", "5", str(out), "--resolution", "32", "--seed", "4"]) == 0
    ds = ImageDataset(out)
    assert len(ds) == 5 and ds.get_attributes(0) == sample_params(4).attributes()
    assert main(["dataset", "--synthetic", "5", "a", "b", "--resolution", "32"]) == 2
    assert "only OUT" in capsys.readouterr().err


def test_writer_replaces_only_an_earlier_data_set(tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(UserError, match="not a data set"):
        write_synthetic_dataset(mine, 2, 16, progress=False)
    assert (mine / "holiday.jpg").read_bytes() == b"precious"
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(UserError, match="not a zip"):
        write_synthetic_dataset(tmp_path / "notes.zip", 2, 16, progress=False)
    write_synthetic_dataset(tmp_path / "set", 2, 16, progress=False)
    write_synthetic_dataset(tmp_path / "set", 3, 16, seed=9, progress=False)     # an earlier set: replaced
    assert len(ImageDataset(tmp_path / "set")) == 3
