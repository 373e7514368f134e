"""The CLI: outputs on disk, bad input → one line and exit code 2."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.features.generation import generate_images


@pytest.fixture
def net_path(small_G, tmp_path):
    return sa.save(small_G, tmp_path / "net.safetensors")


def test_generate_one_png_per_seed_matches_the_api(net_path, small_G, tmp_path):
    out = tmp_path / "out"
    assert main(["generate", "--network", str(net_path), "--seeds", "3,5-6", "--psi", "0.7", "-o", str(out),
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0003.png", "seed0005.png", "seed0006.png"]
    expected = sa.to_uint8(generate_images(small_G, [5], psi=0.7))[0].numpy()
    np.testing.assert_array_equal(np.asarray(Image.open(out / "seed0005.png")), expected)


def test_generate_grid(net_path, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["generate", "--network", str(net_path), "--seeds", "0-5", "--grid", "3x2", "-o", str(out)]) == 0
    assert Image.open(out).size == (3 * 32, 2 * 32)


def test_generate_honours_cutoff_and_noise_mode(net_path, small_G, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    main(["generate", "--network", str(net_path), "--seeds", "1", "--psi", "0", "--cutoff", "2", "-o", str(a)])
    main(["generate", "--network", str(net_path), "--seeds", "1", "--psi", "0", "--noise-mode", "none", "-o", str(b)])
    imgs = generate_images(small_G, [1], psi=0, cutoff=2)
    np.testing.assert_array_equal(np.asarray(Image.open(a / "seed0001.png")), sa.to_uint8(imgs)[0].numpy())
    assert not np.array_equal(np.asarray(Image.open(a / "seed0001.png")), np.asarray(Image.open(b / "seed0001.png")))


@pytest.mark.parametrize("args,message", [
    (["--seeds", "x-y"], "bad seed list"),
    (["--seeds", "0-3", "--psi", "abc"], "--psi must be a number"),
    (["--seeds", "0-9", "--grid", "3x3"], "3x3 grid holds 9"),
    (["--seeds", "0", "--class", "1"], "unconditional"),
    (["--seeds", "0", "--cutoff", "99"], "cutoff 99 is out of range"),
    (["--seeds", "0", "--device", "cuda:0"] if not torch.cuda.is_available() else ["--seeds", "0", "--device", "tpu"],
     "device"),
])
def test_bad_input_exits_2_with_one_line(net_path, tmp_path, capsys, args, message):
    out = tmp_path / "o.png" if "--grid" in args else tmp_path / "o"
    assert main(["generate", "--network", str(net_path), *args, "-o", str(out)]) == 2 if "--psi" not in args \
        else True
    if "--psi" in args:
        with pytest.raises(SystemExit) as e:
            main(["generate", "--network", str(net_path), *args, "-o", str(out)])
        assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_missing_network_file_exits_2_in_a_real_process(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stylegan_anime.cli", "generate", "--network",
                        str(tmp_path / "missing.pkl"), "--seeds", "0", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"stylegan-anime generate: error: no such file: {tmp_path / 'missing.pkl'}"]


def test_new_then_convert_round_trip(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(["new", str(a), "--resolution", "16", "--z-dim", "8", "--w-dim", "8", "--channel-base", "64",
                 "--channel-max", "8", "--with-discriminator"]) == 0
    assert main(["convert", str(a), str(b)]) == 0
    na, nb = sa.load_networks(a), sa.load_networks(b)
    assert nb.D is not None
    for k, v in na.G_ema.state_dict().items():
        assert torch.equal(v, nb.G_ema.state_dict()[k])


@pytest.mark.parametrize("variable,value", [("STYLEGAN_ANIME_OPS", "fast"), ("STYLEGAN_ANIME_WINOGRAD", "fast")])
def test_a_bad_environment_switch_exits_2_with_one_line_and_writes_nothing(tmp_path, variable, value):
    out = tmp_path / "grid.png"
    r = subprocess.run([sys.executable, "-m", "stylegan_anime.cli", "generate", "--seeds", "0-1", "--grid", "2x1",
                        "-o", str(out)], capture_output=True, text=True, env={**os.environ, variable: value})
    assert r.returncode == 2
    assert r.stderr.strip() == f"stylegan-anime generate: error: {variable}='{value}': expected one of " + \
        ("auto, native, ref" if variable == "STYLEGAN_ANIME_OPS" else "auto, off, always")
    assert not out.exists()
