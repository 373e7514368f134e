"""Fuzz corpus, data set tool and training (issue 20, items 5 and 6).

The data set tool does not refuse a bad entry, it skips and counts it: each case puts one hostile
entry beside one good image and asserts the good image is written, the bad entry is counted under
its reason, and the build stays within a memory budget and a time limit (``survives``). A bad
*source* or *output* as a whole is refused (``hostile.refused``). The training cases simulate a full
disk (ENOSPC raised part way through a write), killed writes and torn logs on a tiny run.
"""
from __future__ import annotations

import errno
import io
import json
import os
import socket
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile import COUNTS, peak_rss_growth, refused, time_limit
from stylegan_anime.cli import main
from stylegan_anime.data.build import BuildOptions, BuildReport, build_dataset

RES = 16
ONE = {"written": 1}


def survives(area: str, src: Path, out: Path, options: BuildOptions | None = None, rss_budget_mib: float = 96,
             timeout_s: float = 20) -> BuildReport:
    """Build ``src`` into ``out``; assert it returns in time and within the memory budget."""
    COUNTS[area]["tried"] += 1
    with peak_rss_growth() as peak, time_limit(timeout_s):
        report = build_dataset(src, out, options or BuildOptions(RES), progress=False)
    assert peak[0] <= rss_budget_mib, f"{area}: RSS grew by {peak[0]:.0f} MiB (budget {rss_budget_mib} MiB)"
    COUNTS[area]["skipped or written"] += 1
    return report


def noise_png(path: Path, size: tuple[int, int] = (RES, RES), seed: int = 0) -> Path:
    w, h = size
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def src(tmp_path) -> Path:
    """A source folder holding one good image."""
    d = tmp_path / "src"
    d.mkdir()
    noise_png(d / "good.png")
    return d


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(w: int, h: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))


def huge_valid_png(side: int) -> bytes:
    """A valid 1-bit grayscale PNG of side² pixels, all black: ~20 KB on disk for 169 MP (which
    Pillow decodes into 169 MB, and 0.5 GB as RGB)."""
    comp, row = zlib.compressobj(9), bytes(1 + (side + 7) // 8)
    rows = 1000
    idat = b"".join(comp.compress(row * min(rows, side - i)) for i in range(0, side, rows)) + comp.flush()
    return png_header(side, side, 1, 0) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def expect(report: BuildReport, written: int, skipped: dict[str, int]) -> None:
    assert (report.written, dict(report.skipped)) == (written, skipped)


# --------------------------------------------------------------------------- entries that are not files


def test_symlink_loops_are_counted(src, tmp_path):
    os.symlink("b.png", src / "a.png")
    os.symlink("a.png", src / "b.png")
    os.symlink("self.png", src / "self.png")
    expect(survives("dataset", src, tmp_path / "out"), 1, {"symlink_loop": 3})


def test_dangling_symlink_is_counted(src, tmp_path):
    os.symlink(tmp_path / "gone.png", src / "dangling.png")
    expect(survives("dataset", src, tmp_path / "out"), 1, {"dangling_symlink": 1})


def test_a_fifo_is_counted_and_never_opened(src, tmp_path):
    os.mkfifo(src / "pipe.png")   # opening it for reading would wait for a writer forever
    expect(survives("dataset", src, tmp_path / "out", timeout_s=10), 1, {"not_regular_file": 1})


def test_a_symlink_to_dev_zero_is_not_read(src, tmp_path):
    os.symlink("/dev/zero", src / "zero.png")   # endless bytes
    expect(survives("dataset", src, tmp_path / "out", timeout_s=10), 1, {"not_regular_file": 1})


def test_a_unix_socket_is_counted(src, tmp_path):
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(src / "sock.png"))
        expect(survives("dataset", src, tmp_path / "out"), 1, {"not_regular_file": 1})


def test_an_empty_folder_named_like_an_image_is_counted(src, tmp_path):
    (src / "folder.png").mkdir()
    expect(survives("dataset", src, tmp_path / "out"), 1, {"folder_named_like_an_image": 1})


def test_a_folder_named_like_an_image_is_counted_and_its_images_read(src, tmp_path):
    (src / "folder.png").mkdir()
    noise_png(src / "folder.png" / "inside.png", seed=1)
    expect(survives("dataset", src, tmp_path / "out"), 2, {"folder_named_like_an_image": 1})


def test_a_symlink_to_an_ancestor_folder_is_not_followed(src, tmp_path):
    (src / "sub").mkdir()
    os.symlink("..", src / "sub" / "up")   # following it would list the source again and again
    expect(survives("dataset", src, tmp_path / "out"), 1, {"symlink_to_folder": 1})


def test_hidden_files_and_folders_are_counted(src, tmp_path):
    (src / ".git").mkdir()
    for i in range(3):
        noise_png(src / ".git" / f"{i}.png", seed=10 + i)
    (src / "._good.png").write_bytes(b"\0\5\26\7resource fork")
    expect(survives("dataset", src, tmp_path / "out"), 1, {"hidden": 4})


def test_a_deeply_nested_image_is_found(src, tmp_path):
    deep = src
    for i in range(150):
        deep = deep / "d"
    deep.mkdir(parents=True)
    noise_png(deep / "deep.png", seed=2)
    expect(survives("dataset", src, tmp_path / "out"), 2, {})


def test_thousands_of_empty_files_are_each_counted(src, tmp_path):
    for i in range(600):
        (src / f"empty{i:04d}.png").touch()
    expect(survives("dataset", src, tmp_path / "out", timeout_s=30), 1, {"not_image": 600})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_an_unreadable_folder_is_counted(src, tmp_path):
    (src / "locked").mkdir()
    noise_png(src / "locked" / "x.png", seed=3)
    os.chmod(src / "locked", 0)
    try:
        expect(survives("dataset", src, tmp_path / "out"), 1, {"unreadable_folder": 1})
    finally:
        os.chmod(src / "locked", 0o755)


# --------------------------------------------------------------------------- names


def test_a_name_that_is_not_utf8_is_stored_escaped_and_reported(src, tmp_path):
    raw = os.path.join(os.fsencode(src), b"caf\xe9\xff.png")   # Latin-1 bytes, not UTF-8
    noise_png(Path(os.fsdecode(raw)), seed=4)
    report = survives("dataset", src, tmp_path / "out")
    assert report.written == 2 and report.converted["name_not_utf8"] == 1
    text = (tmp_path / "out" / "dataset.json").read_bytes().decode("utf-8")   # strict: no surrogates
    names = [name for _, name in json.loads(text)["sources"]]
    assert sorted(names) == ["caf\\xe9\\xff.png", "good.png"]
    assert "\\udc" not in text


def test_a_name_with_a_newline_is_kept(src, tmp_path):
    noise_png(src / "two\nlines.png", seed=5)
    report = survives("dataset", src, tmp_path / "out")
    names = [n for _, n in json.loads((tmp_path / "out" / "dataset.json").read_text())["sources"]]
    assert report.written == 2 and "two\nlines.png" in names


# --------------------------------------------------------------------------- sizes: pixel budget, file size


def test_a_169_megapixel_png_is_skipped_from_its_header(src, tmp_path):
    # 20 KB on disk, under Pillow's bomb limit, 2 GB once decoded and converted: never decoded.
    (src / "bomb.png").write_bytes(huge_valid_png(13000))
    assert (src / "bomb.png").stat().st_size < 100_000
    expect(survives("dataset", src, tmp_path / "out", rss_budget_mib=64), 1, {"too_many_pixels": 1})


@pytest.mark.parametrize("w, h", [(65535, 65535), (2 ** 31 - 1, 1), (1, 2 ** 31 - 1)])
def test_png_headers_declaring_absurd_sizes(src, tmp_path, w, h):
    (src / "liar.png").write_bytes(png_header(w, h) + png_chunk(b"IEND", b""))
    expect(survives("dataset", src, tmp_path / "out", rss_budget_mib=64), 1, {"too_many_pixels": 1})


def _patched(image_format: str, patch) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format=image_format)
    data = bytearray(buf.getvalue())
    patch(data)
    return bytes(data)


def _jpeg_sof(data: bytearray) -> None:
    at = data.index(b"\xff\xc0") + 5                      # SOF0: length(2) precision(1) height(2) width(2)
    data[at: at + 4] = struct.pack(">HH", 60000, 60000)


def _gif_screen(data: bytearray) -> None:
    data[6:10] = struct.pack("<HH", 65535, 65535)        # logical screen width, height
    at = data.index(b"\x2c")                              # image descriptor: left, top, width, height
    data[at + 5: at + 9] = struct.pack("<HH", 65535, 65535)


def _bmp_size(data: bytearray) -> None:
    data[18:26] = struct.pack("<ii", 40000, 40000)


@pytest.mark.parametrize("name, image_format, patch", [("big.jpg", "JPEG", _jpeg_sof), ("big.gif", "GIF", _gif_screen),
                                                       ("big.bmp", "BMP", _bmp_size)])
def test_other_formats_declaring_huge_sizes(src, tmp_path, name, image_format, patch):
    (src / name).write_bytes(_patched(image_format, patch))
    expect(survives("dataset", src, tmp_path / "out", rss_budget_mib=64), 1, {"too_many_pixels": 1})


def test_the_pixel_budget_is_inclusive(src, tmp_path):
    noise_png(src / "at.png", (32, 32), seed=6)     # 1024 pixels: at the budget
    noise_png(src / "over.png", (33, 32), seed=7)   # 1056: over it
    report = survives("dataset", src, tmp_path / "out", BuildOptions(RES, max_pixels=1024))
    expect(report, 2, {"too_many_pixels": 1})


def test_the_default_budget_is_eight_output_areas_but_at_least_4096_squared():
    assert BuildOptions(64).pixel_budget == 4096 ** 2
    assert BuildOptions(2048).pixel_budget == 8 * 2048 ** 2
    assert BuildOptions(2048).max_file_bytes == 8 * 8 * 2048 ** 2 + 16 * 2 ** 20


def test_a_sparse_4gb_png_is_skipped_without_being_read(src, tmp_path):
    big = src / "sparse.png"
    with open(big, "wb") as f:
        f.write(png_header(64, 64))
        f.truncate(4 * 2 ** 30)   # a hole: no disk used, but 4 GB to read
    expect(survives("dataset", src, tmp_path / "out", rss_budget_mib=48, timeout_s=5), 1, {"file_too_large": 1})


def test_a_symlink_to_a_sparse_file_is_skipped_too(src, tmp_path):
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(4 * 2 ** 30)
    os.symlink(tmp_path / "sparse", src / "link.png")
    expect(survives("dataset", src, tmp_path / "out", rss_budget_mib=48, timeout_s=5), 1, {"file_too_large": 1})


# --------------------------------------------------------------------------- zip sources


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "Duplicate name": on purpose
        with zipfile.ZipFile(path, "w") as z:
            for info, data in members:
                z.writestr(info, data)
    return path


def _good_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (RES, RES, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _set_declared_size(path: Path, name: str, size: int) -> None:
    """Rewrite the uncompressed size a zip declares for ``name`` (local header and central directory)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    local = data.index(b"PK\x03\x04" + bytes(data[4:4]))   # the first local header
    while data[local + 30: local + 30 + len(encoded)] != encoded:
        local = data.index(b"PK\x03\x04", local + 4)
    data[local + 22: local + 26] = struct.pack("<I", size)
    central = data.index(b"PK\x01\x02")
    while data[central + 46: central + 46 + len(encoded)] != encoded:
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 24: central + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def test_a_zip_member_declaring_4gb_is_skipped_without_being_read(tmp_path):
    z = _zip(tmp_path / "src.zip", [("good.png", _good_bytes()), ("big.png", _good_bytes(1))])
    _set_declared_size(z, "big.png", 0xF000_0000)
    expect(survives("dataset", z, tmp_path / "out", rss_budget_mib=48, timeout_s=5), 1, {"file_too_large": 1})


def test_a_zip_member_larger_than_it_declares_is_cut_and_counted(tmp_path):
    z = _zip(tmp_path / "src.zip", [("good.png", _good_bytes()), ("liar.png", _good_bytes(1))])
    _set_declared_size(z, "liar.png", 100)   # zipfile stops at the declared size; the CRC then fails
    expect(survives("dataset", z, tmp_path / "out"), 1, {"unreadable": 1})


def test_a_zip_bomb_member_is_skipped_from_its_declared_size(tmp_path):
    z = tmp_path / "src.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.png", _good_bytes())
        with zf.open("bomb.png", "w", force_zip64=True) as f:
            chunk = bytes(2 ** 22)
            for _ in range(64):   # 256 MiB of zeros in a ~250 KB member
                f.write(chunk)
    assert z.stat().st_size < 2 ** 20
    report = survives("dataset", z, tmp_path / "out", BuildOptions(RES, max_pixels=1024), rss_budget_mib=64)
    expect(report, 1, {"file_too_large": 1})


def test_zip_symlinks_folders_and_repeated_names_are_counted(tmp_path):
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    folder = zipfile.ZipInfo("folder.png/")
    folder.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
    z = _zip(tmp_path / "src.zip", [("good.png", _good_bytes()), (link, b"/etc/passwd"), (folder, b""),
                                    ("twice.png", _good_bytes(1)), ("twice.png", _good_bytes(2))])
    expect(survives("dataset", z, tmp_path / "out"), 2,
           {"symlink_in_zip": 1, "folder_named_like_an_image": 1, "duplicate_name": 1})


# --------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("data, reason", [
    (b"", "not_image"),
    (b"\x89PNG\r\n\x1a\n", "corrupt"),                                       # a signature and nothing else
    (png_header(16, 16) + png_chunk(b"IEND", b""), "corrupt"),              # no pixel data at all
    (png_header(16, 16)[:20], "corrupt"),                                     # a header cut in half
    (png_header(0, 0) + png_chunk(b"IEND", b""), "corrupt"),                # zero size
    (b"<html><body>404 Not Found</body></html>", "not_image"),
])
def test_broken_files_are_counted_by_reason(src, tmp_path, data, reason):
    (src / "broken.png").write_bytes(data)
    expect(survives("dataset", src, tmp_path / "out"), 1, {reason: 1})


# --------------------------------------------------------------------------- refused as a whole


def test_a_fifo_as_the_source_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    refused("dataset", lambda: build_dataset(tmp_path / "pipe", tmp_path / "out", BuildOptions(RES), progress=False),
            timeout_s=5, match="neither a folder nor a zip")


def test_a_fifo_as_the_output_is_refused(src, tmp_path):
    os.mkfifo(tmp_path / "out.zip")
    refused("dataset", lambda: build_dataset(src, tmp_path / "out.zip", BuildOptions(RES), progress=False),
            timeout_s=5, match="not a zip file")
    assert stat.S_ISFIFO(os.stat(tmp_path / "out.zip").st_mode)   # left as it was


def test_a_zip_with_a_garbage_directory_is_refused(tmp_path):
    z = _zip(tmp_path / "src.zip", [("good.png", _good_bytes())])
    data = bytearray(z.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 4: central + 40] = b"\xff" * 36
    z.write_bytes(bytes(data))
    refused("dataset", lambda: build_dataset(z, tmp_path / "out", BuildOptions(RES), progress=False), match="zip")


def test_only_hostile_entries_is_one_line_from_the_cli(tmp_path, capsys):
    d = tmp_path / "src"
    d.mkdir()
    os.symlink("x.png", d / "x.png")
    os.mkfifo(d / "pipe.png")
    (d / "sparse.png").write_bytes(b"")
    os.truncate(d / "sparse.png", 2 ** 32)
    COUNTS["dataset"]["tried"] += 1
    with time_limit(10):
        assert main(["dataset", str(d), str(tmp_path / "out"), "--resolution", str(RES)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]   # the rest is the progress bar
    assert len(errors) == 1 and errors[0].startswith("stylegan-anime dataset: error: ")
    err = errors[0]
    assert "no usable images" in err and "file_too_large 1" in err and "symlink_loop 1" in err
    assert "not_regular_file 1" in err
    assert not (tmp_path / "out").exists()
    COUNTS["dataset"]["refused"] += 1


def test_a_sources_own_dataset_json_too_large_for_labels_is_one_line(src, tmp_path):
    meta = src / "dataset.json"
    meta.write_bytes(b'{"labels": [')
    os.truncate(meta, 2 ** 32)   # 4 GB of holes: never read
    message = refused("dataset", lambda: build_dataset(src, tmp_path / "out", BuildOptions(RES), progress=False),
                      rss_budget_mib=48, timeout_s=5, match="dataset.json")
    assert "file_too_large" in message


def test_a_sources_own_dataset_json_that_is_a_fifo_is_counted_not_opened(src, tmp_path):
    os.mkfifo(src / "dataset.json")
    expect(survives("dataset", src, tmp_path / "out", timeout_s=5), 1, {"not_regular_file": 1})


def test_an_absurd_max_pixels_is_refused():
    refused("dataset", lambda: BuildOptions(64, max_pixels=100), match="max_pixels")


# =========================================================================== training

from safetensors import SafetensorError   # noqa: E402
from safetensors.torch import save_file   # noqa: E402

from stylegan_anime.features import render   # noqa: E402
from stylegan_anime.training import checkpoint, disk_space, loop   # noqa: E402
from stylegan_anime.training.loop import train   # noqa: E402
from training_utils import BlobDataset, tiny_config   # noqa: E402

SNAPS = ["snapshot-000000008.safetensors", "snapshot-000000016.safetensors"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny finished run: snapshots and sample grids at 8 and 16 images, a log per 4 images."""
    d = tmp_path_factory.mktemp("run") / "run"
    train(tiny_config(kimg=0.016, snap_kimg=0.008), d, dataset=BlobDataset(), progress_bar=False)
    assert sorted(p.name for p in d.glob("snapshot-*")) == SNAPS
    return d


@pytest.fixture
def run(finished_run, tmp_path) -> Path:
    import shutil
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def resumed(run: Path, **kwargs) -> loop.Trainer:
    """The run continued from its newest snapshot (no steps: the run is finished), ready to save."""
    trainer = train(None, run, dataset=BlobDataset(), resume_run=True, progress_bar=False, max_steps=0, **kwargs)
    trainer.progress.nimg = 24
    return trainer


def files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def no_space_partway(exc: Exception):
    """A safetensors writer that fills half the file, then finds the disk full."""
    def write(tensors, filename, metadata=None):
        save_file(tensors, filename, metadata=metadata)
        os.truncate(filename, os.path.getsize(filename) // 2)
        raise exc
    return write


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
], ids=["ENOSPC", "EDQUOT", "safetensors"])
def test_disk_full_part_way_through_a_snapshot_is_one_line_and_loses_nothing(run, monkeypatch, exc):
    trainer = resumed(run)
    before = files(run)
    monkeypatch.setattr(checkpoint, "save_file", no_space_partway(exc))
    message = refused("training", trainer.save_snapshot, match=str(run))
    assert "snapshot-000000024.safetensors" in message and "needs about" in message and "--resume-run" in message
    assert files(run) == before   # earlier snapshots, latest.json, logs: byte for byte; no temp left
    assert checkpoint.load_snapshot(checkpoint.latest_snapshot(run)).progress.nimg == 16


def test_a_snapshot_that_cannot_fit_is_refused_before_writing(run, monkeypatch):
    trainer = resumed(run)
    before = files(run)
    monkeypatch.setattr(disk_space, "free_bytes", lambda folder: 1000)
    monkeypatch.setattr(checkpoint, "save_file", lambda *a, **k: pytest.fail("wrote despite no space"))
    message = refused("training", trainer.save_snapshot, match=str(run))
    tensor_bytes = sum(p.numel() * 4 for net in (trainer.G, trainer.D) for p in net.parameters())
    needed_mib = float(message.split("needs about ")[1].split(" MiB")[0])
    assert needed_mib * 2 ** 20 >= 2 * tensor_bytes   # G_ema + G + D and Adam's two moments at least
    assert "0.0 MiB free" in message
    assert files(run) == before


def test_disk_full_while_writing_the_sample_grid(run, monkeypatch):
    trainer = resumed(run)

    def grid(images, path, cols=None):
        Path(path).write_bytes(b"\x89PNG half")   # what a full disk leaves: atomic_path removes it
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(render, "save_grid", grid)
    message = refused("training", trainer.save_snapshot, match="samples-000000024.png")
    assert str(run) in message
    assert checkpoint.load_snapshot(run / "snapshot-000000024.safetensors").progress.nimg == 24


def test_disk_full_while_appending_a_log_line(run, monkeypatch):
    trainer = resumed(run)

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(loop, "open", lambda *a, **k: Full(), raising=False)
    refused("training", lambda: trainer._append_jsonl(loop.LOG, {"kimg": 0.024}), match="log.jsonl")


def test_other_write_errors_are_not_called_a_full_disk(run, monkeypatch):
    trainer = resumed(run)
    monkeypatch.setattr(checkpoint, "save_file", no_space_partway(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(OSError, match="Input/output"):
        trainer.save_snapshot()


def test_stale_temp_files_of_killed_writes_are_removed_on_resume(run):
    partial = (run / SNAPS[-1]).read_bytes()[:5000]
    stale = {".snapshot-000000024.safetensors.k3j4x_0q.safetensors": b"",   # our atomic_path, killed at once
             ".tmpAb12Cd": partial,                                          # safetensors' own, killed mid-write
             ".samples-000000024.png.abcd1234.png": b"",
             ".log.jsonl.zz9y8x7w.jsonl": b'{"kimg": 0.0',
             ".latest.json.q1w2e3r4.json": b""}
    kept = {".notes": b"mine", ".tmpfoo": b"mine too", ".tmpABCDEFG": b"7 characters", "notes.txt": b"x"}
    for name, data in {**stale, **kept}.items():
        (run / name).write_bytes(data)
    before = files(run)
    resumed(run)
    after = files(run)
    assert set(before) - set(after) == set(stale)
    assert all(after[name] == before[name] for name in kept) and set(SNAPS) <= set(after)


def _log_kimgs(run: Path) -> list[float]:
    return [json.loads(line)["kimg"] for line in (run / loop.LOG).read_text().splitlines()]


def test_a_torn_last_log_line_is_dropped_on_resume(run):
    assert _log_kimgs(run) == [0.004, 0.008, 0.012, 0.016]
    with open(run / loop.LOG, "a") as f:
        f.write('{"kimg": 0.02, "loss/G": 0.6')   # killed, or the disk filled, mid-line
    resumed(run)
    assert _log_kimgs(run) == [0.004, 0.008, 0.012, 0.016]


def test_garbage_log_lines_are_dropped_on_resume(run):
    lines = (run / loop.LOG).read_bytes().splitlines(keepends=True)
    junk = [b"[1, 2]\n", b'"text"\n', b'{"kimg": "0.004"}\n', b'{"kimg": true}\n', b"\xff\xfe\x00\n", b"\n"]
    (run / loop.LOG).write_bytes(b"".join(lines[:2] + junk + lines[2:]))
    resumed(run)
    assert _log_kimgs(run) == [0.004, 0.008, 0.012, 0.016]


@pytest.mark.parametrize("pointer", [
    b"\xff\x00garbage", b"[]", b'{"snapshot": "../../../etc/passwd"}', b'{"snapshot": "/etc/passwd"}',
    b'{"snapshot": 5}', b'{"snapshot": "snapshot-000000099.safetensors"}', b'{"snapshot": "training.json"}', b"",
])
def test_a_broken_latest_pointer_falls_back_to_the_newest_snapshot(run, pointer):
    COUNTS["training"]["tried"] += 1
    (run / checkpoint.LATEST).write_bytes(pointer)
    assert checkpoint.latest_snapshot(run) == run / SNAPS[-1]
    COUNTS["training"]["survived"] += 1


def test_a_truncated_snapshot_is_one_line(run):
    data = (run / SNAPS[-1]).read_bytes()
    (run / SNAPS[-1]).write_bytes(data[: len(data) // 3])
    refused("training", lambda: resumed(run), match=SNAPS[-1])


@pytest.mark.parametrize("change", [{"progress": "{"}, {"progress": "[]"}, {"rng": "null"}, {"optimizers": "1e999999"}])
def test_snapshot_metadata_that_is_not_json_objects_is_one_line(run, change):
    from safetensors import safe_open
    path = run / SNAPS[-1]
    with safe_open(str(path), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(path), metadata={**metadata, **change})
    refused("training", lambda: checkpoint.load_snapshot(path), match="not a readable snapshot")


@pytest.mark.parametrize("keep, expected", [(1, ["000000024"]), (0, ["000000008", "000000016", "000000024"])])
def test_keep_prunes_sample_grids_like_snapshots_and_applies_on_resume(run, keep, expected):
    resumed(run, keep=keep).save_snapshot()
    assert sorted(p.name[9:18] for p in run.glob("snapshot-*.safetensors")) == expected
    assert sorted(p.name[8:17] for p in run.glob("samples-*.png")) == expected


def test_disk_full_from_the_cli_is_one_line_and_exit_2(run, monkeypatch, capsys):
    monkeypatch.setattr(disk_space, "free_bytes", lambda folder: 0)
    monkeypatch.setattr(loop, "open_dataset", lambda cfg: BlobDataset())
    COUNTS["training"]["tried"] += 1
    with time_limit(60):
        code = main(["train", "--resume-run", str(run), "--kimg", "0.02", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"stylegan-anime train: error: no space left in {run} to write "
                                                   f"snapshot-000000020.safetensors: it needs about ")
    assert sorted(p.name for p in run.glob("snapshot-*")) == SNAPS
    COUNTS["training"]["refused"] += 1


@pytest.fixture(scope="module", autouse=True)
def print_counts():
    """``pytest -s`` prints tried / refused (or survived) per area for the README's safety section."""
    yield
    from hostile import corpus_counts
    print("\nhostile data and training corpus:", corpus_counts())
