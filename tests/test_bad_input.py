"""Bad input as a new user gives it, in every command: exit code 2, one line naming the problem,
no work done, and nothing already on disk lost (issue 18, item 7)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

import stylegan_anime as sa
from stylegan_anime.io import hub, loading
from stylegan_anime.cli import build_parser, main
from stylegan_anime.data.synthetic import write_synthetic_dataset

from conftest import randomize_buffers, small_g_config


def run(argv: list[str]) -> int:
    """``main`` as the shell sees it: argparse's own errors exit through SystemExit."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return int(e.code)


def one_line_error(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ": error: " in err and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)
    return err


@pytest.fixture
def net(small_G, tmp_path):
    return sa.save(small_G, tmp_path / "net.safetensors")


@pytest.fixture
def no_work(monkeypatch):
    """Loading a network fails the test: the checks must come before any work."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a network was loaded before the bad input was refused")
    monkeypatch.setattr(loading, "load_networks", forbidden)


@pytest.fixture
def files(tmp_path):
    """A target image for project, a small data set for train, and a regular file."""
    target = tmp_path / "target.png"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(target)
    data = write_synthetic_dataset(tmp_path / "data.zip", 2, 8, progress=False)
    plain = tmp_path / "afile"
    plain.write_text("not a folder\n")
    return {"target": target, "data": data, "file": plain}


def command(name: str, net: Path, out: Path, files: dict, *extra: str) -> list:
    """A valid command line for ``name`` writing ``out`` (a folder for project and train)."""
    n = ["--network", net]
    lines = {
        "generate": ["generate", *n, "--seeds", "0-3", "--grid", "2x2", "-o", out],
        "generate-folder": ["generate", *n, "--seeds", "0-1", "-o", out],
        "interpolate": ["interpolate", *n, "--seeds", "0,1", "--frames", "2", "-o", out],
        "project": ["project", *n, "--target", files["target"], "--steps", "1", "-o", out],
        "dataset": ["dataset", "--synthetic", "2", out, "--resolution", "8"],
        "train": ["train", "--data", files["data"], "--out", out, "--kimg", "0.001", "--quiet"],
        "mix": ["mix", *n, "--rows", "0", "--cols", "1", "-o", out],
        "truncation-grid": ["truncation-grid", *n, "--seeds", "0", "--psis", "0.5,1", "-o", out],
        "convert": ["convert", net, out],
        "new": ["new", out, "--resolution", "8", "--z-dim", "8", "--w-dim", "8"],
        "edit": ["edit", *n, "--seeds", "0", "--directions", out.with_name("d.npz"), "--tags", "x", "-o", out],
        "directions": ["directions", *n, "--classifier", out.with_name("c.safetensors"), "-o", out],
        "classifier": ["classifier", "--data", files["data"], "--steps", "1", "-o", out],
    }
    return lines[name] + list(extra)


SUFFIX = {"generate": ".png", "interpolate": ".gif", "mix": ".png", "truncation-grid": ".png", "edit": ".png",
          "convert": ".safetensors", "new": ".safetensors", "classifier": ".safetensors", "dataset": ".zip",
          "directions": ".npz"}


def out_path(name: str, folder: Path) -> Path:
    return folder / f"out{SUFFIX.get(name, '')}"


# ------------------------------------------------------------------------- outputs that cannot be written

def unwritable_folders(tmp_path: Path) -> list[Path]:
    """Where a folder should be but cannot: below a regular file, and (when this process's
    access check says so, as it does even for root in /proc) below a folder it may not write."""
    places = [tmp_path / "afile" / "deeper"]
    if not os.access("/proc/1", os.W_OK):
        places.append(Path("/proc/1/no_such_folder"))
    return places


@pytest.mark.parametrize("name", ["generate", "generate-folder", "interpolate", "project", "dataset", "train",
                                  "mix", "truncation-grid", "convert", "new", "edit", "directions", "classifier"])
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(name, net, files, tmp_path, capsys,
                                                                       no_work):
    for folder in unwritable_folders(tmp_path):
        out = out_path(name, folder)
        assert run(command(name, net, out, files)) == 2
        one_line_error(capsys, f"cannot write {out}")
        assert not out.exists()
    assert files["file"].read_text() == "not a folder\n"


def test_an_output_file_where_the_folder_is_names_it(net, files, capsys, no_work):
    assert run(command("generate-folder", net, files["file"], files)) == 2
    one_line_error(capsys, f"cannot write {files['file']}", "is a file, not a folder")
    assert run(command("train", net, files["file"], files)) == 2
    one_line_error(capsys, f"cannot write {files['file']}", "is a file, not a folder")
    assert files["file"].read_text() == "not a folder\n"


# ------------------------------------------------------------------------- existing outputs and --force

@pytest.mark.parametrize("name", ["generate", "interpolate", "dataset", "mix", "truncation-grid", "convert", "new",
                                  "edit", "directions", "classifier"])
def test_an_existing_output_is_refused_without_force(name, net, files, tmp_path, capsys, no_work):
    out = out_path(name, tmp_path)
    out.write_bytes(b"precious")
    assert run(command(name, net, out, files)) == 2
    one_line_error(capsys, str(out), "already exists", "--force")
    assert out.read_bytes() == b"precious"


def test_existing_images_in_the_output_folder_are_refused_without_force(net, files, tmp_path, capsys, no_work):
    out = tmp_path / "imgs"
    out.mkdir()
    (out / "seed0001.png").write_bytes(b"precious")
    assert run(command("generate-folder", net, out, files)) == 2
    one_line_error(capsys, str(out / "seed0001.png"), "--force")
    assert (out / "seed0001.png").read_bytes() == b"precious" and not (out / "seed0000.png").exists()


def test_project_refuses_to_replace_an_earlier_projection(net, files, tmp_path, capsys, no_work):
    out = tmp_path / "proj"
    out.mkdir()
    for name in ("projected.npz", "projected.png"):
        (out / name).write_bytes(b"precious")
    assert run(command("project", net, out, files)) == 2
    one_line_error(capsys, str(out / "projected.npz"), "and 1 more", "--force")
    assert (out / "projected.png").read_bytes() == b"precious"


def test_dataset_does_not_replace_a_set_in_use(tmp_path, capsys):
    out = write_synthetic_dataset(tmp_path / "synth8.zip", 6, 8, progress=False)
    before = out.read_bytes()
    assert run(["dataset", "--synthetic", "2", out, "--resolution", "8"]) == 2
    one_line_error(capsys, str(out), "already exists", "--force")
    assert out.read_bytes() == before
    assert run(["dataset", "--synthetic", "2", out, "--resolution", "8", "--force"]) == 0
    assert sa.ImageDataset(out).resolution == 8 and len(sa.ImageDataset(out)) == 2


@pytest.mark.parametrize("name", ["generate", "generate-folder", "truncation-grid", "new"])
def test_force_replaces_the_output(name, net, files, tmp_path):
    out = out_path(name, tmp_path)
    old = out / "seed0000.png" if name == "generate-folder" else out
    old.parent.mkdir(exist_ok=True)
    old.write_bytes(b"old")
    assert run(command(name, net, out, files)) == 2 and old.read_bytes() == b"old"
    assert run(command(name, net, out, files, "--force")) == 0
    if old.suffix == ".png":
        assert Image.open(old).size[0] in (32, 64)
    else:
        assert sa.load(old).img_resolution == 8


def test_an_empty_output_folder_holds_nothing_to_lose(net, files, tmp_path):
    (tmp_path / "empty").mkdir()
    assert run(command("dataset", net, tmp_path / "empty", files)) == 0
    assert len(sa.ImageDataset(tmp_path / "empty")) == 2


# ------------------------------------------------------------------------- psi

PSI_COMMANDS = {
    "generate": lambda net, out: ["generate", "--network", net, "--seeds", "0", "-o", out],
    "interpolate": lambda net, out: ["interpolate", "--network", net, "--seeds", "0,1", "-o", out.with_suffix(".gif")],
    "mix": lambda net, out: ["mix", "--network", net, "--rows", "0", "--cols", "1", "-o", out.with_suffix(".png")],
    "edit": lambda net, out: ["edit", "--network", net, "--seeds", "0", "--directions", "d.npz", "--tags", "x",
                              "-o", out.with_suffix(".png")],
    "fid": lambda net, out: ["fid", "--network", net, "--data", out, "--features", "f.pt"],
}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
@pytest.mark.parametrize("name", sorted(PSI_COMMANDS))
def test_a_psi_that_is_not_finite_is_refused(name, value, net, tmp_path, capsys, no_work):
    out = tmp_path / "out"
    assert run([*PSI_COMMANDS[name](net, out), "--psi", value]) == 2
    one_line_error(capsys, "--psi", "finite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]


@pytest.mark.parametrize("psis", ["0.5,nan", "inf", "0.7,-inf"])
def test_truncation_grid_refuses_psis_that_are_not_finite(psis, net, tmp_path, capsys, no_work):
    out = tmp_path / "t.png"
    assert run(["truncation-grid", "--network", net, "--seeds", "0", "--psis", psis, "-o", out]) == 2
    one_line_error(capsys, "psi", "not a finite number")
    assert not out.exists()


@pytest.mark.parametrize("text,value", [("-1e30", -1e30), ("-.5", -0.5), ("-2E-3", -2e-3), ("-1", -1.0)])
def test_a_negative_psi_in_any_spelling_is_a_number(text, value):
    for name in ("generate", "interpolate", "mix", "edit", "fid"):
        argv = [str(a) for a in PSI_COMMANDS[name]("n", Path("o"))] + ["--psi", text]
        assert build_parser().parse_args(argv).psi == value


def test_a_huge_negative_psi_draws_an_image(net, tmp_path):
    out = tmp_path / "far.png"
    assert run(["generate", "--network", net, "--seeds", "0", "--psi", "-1e30", "--grid", "1x1", "-o", out]) == 0
    assert Image.open(out).size == (32, 32)


# ------------------------------------------------------------------------- checked up front

def test_a_grid_without_a_file_type_is_refused_before_generating(net, tmp_path, capsys, no_work):
    out = tmp_path / "name_without_extension"
    assert run(["generate", "--network", net, "--seeds", "0-3", "--grid", "2x2", "-o", out]) == 2
    one_line_error(capsys, "name_without_extension", ".png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]


@pytest.mark.parametrize("name", ["mix", "truncation-grid"])
def test_image_outputs_without_a_file_type_are_refused_before_work(name, net, files, tmp_path, capsys, no_work):
    out = tmp_path / "noext"
    assert run(command(name, net, out, files)) == 2
    one_line_error(capsys, "noext")
    assert not out.exists()


@pytest.mark.parametrize("resolution", ["63", "100", "2"])
def test_dataset_resolution_must_be_a_power_of_two(resolution, tmp_path, capsys):
    out = tmp_path / "s.zip"
    assert run(["dataset", "--synthetic", "2", out, "--resolution", resolution]) == 2
    one_line_error(capsys, "--resolution", "power of two", resolution)
    assert not out.exists()


def test_a_grid_with_blank_cells_says_so_in_one_line(net, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert run(["generate", "--network", net, "--seeds", "0-3", "--grid", "3x3", "-o", out]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "blank" in line]
    assert notes == ["note: the 3x3 grid has 9 cells for 4 seeds: 5 stay blank"]
    assert Image.open(out).size == (96, 96)


def test_a_full_grid_says_nothing(net, tmp_path, capsys):
    assert run(["generate", "--network", net, "--seeds", "0-3", "--grid", "2x2", "-o", tmp_path / "g.png"]) == 0
    assert "blank" not in capsys.readouterr().err


# ------------------------------------------------------------------------- download --from

@pytest.fixture
def manual_entry(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "cache"))
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps({"models": [dict(name="byhand", resolution=32, format="safetensors", licence="test",
                                               source="local test", manual_url="https://example.invalid/page",
                                               filename="m.safetensors")]}))
    monkeypatch.setenv(hub.REGISTRY_ENV, str(reg))
    return hub.find("byhand")


def test_download_url_from_checks_the_registered_resolution(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "cache"))
    url = "https://example.invalid/m.safetensors"
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps({"models": [dict(name="linked", resolution=32, format="safetensors", licence="test",
                                               source="local test", url=url)]}))
    monkeypatch.setenv(hub.REGISTRY_ENV, str(reg))
    assert run(["download", url, "--from", weights(tmp_path, "big.safetensors", 0, img_resolution=64)]) == 2
    one_line_error(capsys, "big.safetensors", "64²", "linked is 32²")
    assert not hub.cached_file(hub.find("linked").remote()).exists()
    assert run(["download", url, "--from", weights(tmp_path, "ok.safetensors", 0)]) == 0


def weights(tmp_path: Path, name: str, seed: int, **config) -> Path:
    G = randomize_buffers(sa.Generator(small_g_config(**config)), seed).eval()
    return sa.save(G, tmp_path / name)


def cache_state(entry) -> dict:
    dest = hub.cached_file(entry.remote())
    return {p.name: p.read_bytes() for p in dest.parent.iterdir()} if dest.parent.exists() else {}


def test_download_from_files_only_weights_of_the_entry(manual_entry, tmp_path, capsys):
    good = weights(tmp_path, "good.safetensors", 0)
    assert run(["download", "byhand", "--from", good]) == 0
    capsys.readouterr()
    kept = cache_state(manual_entry)
    assert kept["m.safetensors"] == good.read_bytes() and "m.safetensors.sha256.json" in kept
    text = tmp_path / "notes.txt"
    text.write_text("this is a page of text that a browser saved instead of the model.\n"[:75])
    wrong_res = weights(tmp_path, "big.safetensors", 0, img_resolution=64)
    torch_file = tmp_path / "g.pt"
    import torch
    torch.save({"g_ema": {}}, torch_file)
    for bad, words in ((text, ("notes.txt", "not filed", "not a weights file")),
                       (wrong_res, ("big.safetensors", "64²", "32²")),
                       (torch_file, ("g.pt", "rosinality", "stylegan-anime safetensors"))):
        assert run(["download", "byhand", "--from", bad]) == 2
        one_line_error(capsys, *words)
        assert cache_state(manual_entry) == kept


def test_download_from_never_replaces_a_verified_copy_with_an_unverified_one(manual_entry, tmp_path, capsys):
    first, other = weights(tmp_path, "a.safetensors", 0), weights(tmp_path, "b.safetensors", 1)
    assert run(["download", "byhand", "--from", first]) == 0
    kept = cache_state(manual_entry)
    assert run(["download", "byhand", "--from", first]) == 0  # the same bytes again: nothing changes
    assert cache_state(manual_entry) == kept
    capsys.readouterr()
    assert run(["download", "byhand", "--from", other]) == 2
    one_line_error(capsys, "b.safetensors", "verified", "--force")
    assert cache_state(manual_entry) == kept
    assert run(["download", "byhand", "--from", other, "--force"]) == 0
    assert cache_state(manual_entry)["m.safetensors"] == other.read_bytes()
    assert hub.fetch("byhand") == hub.cached_file(manual_entry.remote())  # and its new record checks out


# ------------------------------------------------------------------------- the API, where no check came first

def test_writing_below_a_file_through_the_api_is_one_line(small_G, tmp_path):
    plain = tmp_path / "afile"
    plain.write_text("not a folder\n")
    images = sa.generate_images(small_G, [0])
    for write in (lambda p: sa.save_grid(images, p), lambda p: sa.save(small_G, p.with_suffix(".safetensors")),
                  lambda p: write_synthetic_dataset(p.with_name("set"), 1, 8, progress=False)):
        with pytest.raises(sa.UserError) as e:
            write(plain / "deeper" / "x.png")
        assert "cannot write" in str(e.value) and str(plain) in str(e.value) and "\n" not in str(e.value)
    assert plain.read_text() == "not a folder\n"
