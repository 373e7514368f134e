"""The data set tool: bad files are converted or skipped by reason, output is complete or absent."""
from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_anime.cli import main
from stylegan_anime.data import build
from stylegan_anime.data.build import BuildOptions, build_dataset
from stylegan_anime.data.synthetic import write_synthetic_dataset
from stylegan_anime.errors import UserError
from stylegan_anime.training.dataset import ImageDataset

EXPECTED_SKIPPED = {"not_image": 2, "corrupt": 2, "truncated": 1, "too_small": 1, "duplicate": 1, "hidden": 1}
EXPECTED_CONVERTED = {"grayscale": 2, "alpha": 1, "cmyk": 1, "palette": 1}


def _noise(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def messy(tmp_path):
    """A folder with good images, images needing conversion, and broken files of every kind."""
    d = tmp_path / "messy"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(_noise((80, 80, 3), 0)).save(d / "good0.png")
    Image.fromarray(_noise((60, 100, 3), 1)).save(d / "good1.jpg")
    Image.fromarray(_noise((40, 40, 3), 2)).save(d / "sub" / "nested.png")
    Image.fromarray(_noise((64, 64), 3)).save(d / "gray.png")
    Image.fromarray((_noise((64, 64), 4).astype(np.uint16) * 257)).save(d / "gray16.png")
    rgba = _noise((64, 64, 4), 5)
    rgba[:32, :, 3] = 0            # top half fully transparent
    rgba[32:, :, 3] = 255
    Image.fromarray(rgba).save(d / "rgba.png")
    Image.fromarray(_noise((64, 64, 3), 6)).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(_noise((64, 64, 3), 7)).convert("P").save(d / "palette.gif")
    (d / "notes.txt").write_text("not a picture")
    (d / "fake.png").write_text("also not a picture")
    jpg = (d / "good1.jpg").read_bytes()
    (d / "corrupt.jpg").write_bytes(jpg[:20] + bytes(len(jpg) - 20))
    png = bytearray((d / "good0.png").read_bytes())
    png[200:260] = bytes(60)
    (d / "broken.png").write_bytes(bytes(png))
    (d / "truncated.png").write_bytes((d / "good0.png").read_bytes()[:3000])
    Image.fromarray(_noise((10, 10, 3), 8)).save(d / "tiny.png")
    shutil.copy(d / "good0.png", d / "zdup.png")
    (d / ".DS_Store").write_bytes(b"\0\1junk")
    return d


@pytest.mark.parametrize("out_name", ["out", "out.zip"])
def test_every_bad_file_is_reported_by_reason(messy, tmp_path, out_name):
    out = tmp_path / out_name
    report = build_dataset(messy, out, BuildOptions(32), progress=False)
    assert dict(report.skipped) == EXPECTED_SKIPPED
    assert dict(report.converted) == EXPECTED_CONVERTED
    assert report.written == 8
    ds = ImageDataset(out)
    assert len(ds) == 8 and ds.resolution == 32 and ds.c_dim == 0
    meta = ds.meta
    assert meta["skipped"] == EXPECTED_SKIPPED and meta["converted"] == EXPECTED_CONVERTED
    sources = dict(meta["sources"])
    assert sorted(sources.values()) == sorted(["cmyk.jpg", "good0.png", "good1.jpg", "gray.png", "gray16.png",
                                               "palette.gif", "rgba.png", "sub/nested.png"])
    by_source = {v: k for k, v in sources.items()}
    gray = ds[ds.image_names.index(by_source["gray.png"])][0]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    rgba = ds[ds.image_names.index(by_source["rgba.png"])][0]
    assert (rgba[:, :12] == 255).all()              # transparent half composited on white
    assert (rgba[:, 18:] < 250).any()


def test_center_crop_and_pad(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)      # red strip on the left quarter
    arr[:, 20:] = (0, 0, 255)
    Image.fromarray(arr).save(src / "wide.png")
    build_dataset(src, tmp_path / "crop", BuildOptions(20, crop="center"), progress=False)
    build_dataset(src, tmp_path / "pad", BuildOptions(20, crop="pad"), progress=False)
    crop = np.asarray(Image.open(tmp_path / "crop" / "img00000000.png"))
    pad = np.asarray(Image.open(tmp_path / "pad" / "img00000000.png"))
    assert crop.shape == pad.shape == (20, 20, 3)
    assert (crop[:, :, 2] > 200).all()            # the centre square is all blue
    assert (pad[:3] >= 250).all() and (pad[-3:] >= 250).all()  # white bars above and below (Lanczos rings a little)
    assert pad[10, 1, 0] > 200 and pad[10, 18, 2] > 200         # red left, blue right kept


def test_zip_source_and_labels_carry_over(tmp_path):
    write_synthetic_dataset(tmp_path / "syn.zip", 5, 32, seed=3, progress=False)
    report = build_dataset(tmp_path / "syn.zip", tmp_path / "small", BuildOptions(16), progress=False)
    assert report.written == 5 and not report.skipped
    big, small = ImageDataset(tmp_path / "syn.zip"), ImageDataset(tmp_path / "small")
    assert small.resolution == 16 and small.label_names == big.label_names
    for i in range(5):
        assert torch.equal(small[i][1], big[i][1])
        assert small.get_attributes(i) == big.get_attributes(i)


def test_tag_csv_labels(messy, tmp_path):
    csv = tmp_path / "tags.csv"
    csv.write_text("file,tags\ngood0.png,\"blonde hair, blue eyes\"\ngood1.jpg,\"blonde_hair, smile\"\n"
                   "nested.png,\"blue eyes\"\n")
    report = build_dataset(messy, tmp_path / "out", BuildOptions(32), labels=csv, progress=False)
    assert report.written == 3 and report.skipped["no_label"] == 5 and report.skipped["duplicate"] == 1
    ds = ImageDataset(tmp_path / "out")
    assert ds.label_names == ["blonde hair", "blue eyes", "smile"]
    by_source = {v: k for k, v in ds.meta["sources"]}
    labels = {src: ds.get_label(ds.image_names.index(img)).tolist() for src, img in by_source.items()}
    assert labels == {"good0.png": [1, 1, 0], "good1.jpg": [1, 0, 1], "sub/nested.png": [0, 1, 0]}


def test_booru_style_tags():
    from stylegan_anime.data.labels import parse_tag_csv
    table = parse_tag_csv(b"a.png,blonde_hair blue_eyes\nb.png,blue_eyes\n", "t.csv")
    assert table.label_names == ["blue eyes", "blonde hair"]
    assert table.lookup("x/a.png")[0] == [1.0, 1.0] and table.lookup("b.png")[0] == [1.0, 0.0]


def test_class_index_labels_become_one_hot(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_noise((32, 32, 3), i)).save(src / f"{i}.png")
    (src / "dataset.json").write_text(json.dumps({"labels": [["0.png", 2], ["1.png", 0], ["2.png", 1]]}))
    build_dataset(src, tmp_path / "out", BuildOptions(32), progress=False)
    ds = ImageDataset(tmp_path / "out")
    assert ds.c_dim == 3 and ds[0][1].tolist() == [0, 0, 1] and ds[1][1].tolist() == [1, 0, 0]


def test_interrupted_build_leaves_nothing_and_keeps_old_output(messy, tmp_path, monkeypatch):
    out = tmp_path / "out.zip"
    build_dataset(messy, out, BuildOptions(32), progress=False)
    before = out.read_bytes()
    calls = []

    def boom(data, options):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(data, options)
    real = build.prepare
    monkeypatch.setattr(build, "prepare", boom)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(messy, out, BuildOptions(32), progress=False)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy", "out.zip"]


def test_nothing_usable_is_a_user_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("x")
    with pytest.raises(UserError, match="no usable images"):
        build_dataset(src, tmp_path / "out", BuildOptions(32), progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_prints_the_report(messy, tmp_path, capsys):
    assert main(["dataset", str(messy), str(tmp_path / "o.zip"), "--resolution", "32", "--crop", "pad"]) == 0
    out = capsys.readouterr().out
    assert "corrupt 2" in out and "duplicate 1" in out and "cmyk 1" in out
    with zipfile.ZipFile(tmp_path / "o.zip") as z:
        assert json.loads(z.read("dataset.json"))["options"]["crop"] == "pad"
    assert main(["dataset", str(tmp_path / "missing"), str(tmp_path / "x"), "--resolution", "32"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["dataset", str(messy), str(messy), "--resolution", "32"]) == 2
    assert main(["dataset", str(messy), str(tmp_path / "x"), "--resolution", "32", "--labels",
                 str(tmp_path / "none.csv")]) == 2


def test_zip_source_with_a_damaged_member_and_exif_rotation(tmp_path):
    src = tmp_path / "src.zip"
    tall = Image.fromarray(_noise((30, 20, 3), 9))
    exif = Image.Exif()
    exif[0x0112] = 6                                # "rotate 90° clockwise to display"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as z:
        for name, im, kw in (("a.png", Image.fromarray(_noise((24, 24, 3), 0)), {}),
                             ("b.png", Image.fromarray(_noise((24, 24, 3), 1)), {}),
                             ("rot.jpg", tall, {"exif": exif})):
            buf = io.BytesIO()
            im.save(buf, format="PNG" if name.endswith("png") else "JPEG", **kw)
            z.writestr(name, buf.getvalue())
    data = bytearray(src.read_bytes())
    at = data.find(b"IDAT", data.find(b"b.png"))
    data[at + 20] ^= 0xFF                           # b.png's bytes no longer match the zip's CRC
    src.write_bytes(bytes(data))
    report = build_dataset(src, tmp_path / "out", BuildOptions(16, crop="pad"), progress=False)
    assert report.written == 2 and dict(report.skipped) == {"unreadable": 1}
    assert report.converted["exif_rotated"] == 1
    rotated = np.asarray(Image.open(tmp_path / "out" / "img00000001.png"))
    # 20 wide × 30 tall, turned upright → 30 wide × 20 tall: padding goes above and below.
    assert (rotated[0] >= 250).all() and (rotated[:, 0] < 250).any()


def test_output_inside_the_source_is_not_read_back(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_noise((32, 32, 3), i)).save(src / f"{i}.png")
    for _ in range(2):   # the second run must not take the first run's output as input
        report = build_dataset(src, src / "out", BuildOptions(16), progress=False)
        assert report.written == 3 and not report.skipped
