"""CLI interpolate / mix / truncation-grid: files people can open, matching the API; bad input → exit 2."""
from __future__ import annotations

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.latents.files import Latent, save_latent
from stylegan_anime.features.mixing import mixing_grid
from stylegan_anime.features.truncation import truncation_grid


@pytest.fixture
def net_path(small_G, tmp_path):
    return sa.save(small_G, tmp_path / "net.safetensors")


def test_interpolate_gif_grid_with_a_saved_latent_keyframe(net_path, small_G, tmp_path):
    w = small_G.mapping(sa.seeds_to_z([9], small_G.z_dim), None, psi=0.7)[0]
    key = save_latent(Latent(w=w), tmp_path / "nine.npz")
    out = tmp_path / "walk.gif"
    assert main(["interpolate", "--network", str(net_path), "--seeds", f"0,5,{key}", "--space", "w", "--psi", "0.7",
                 "--frames", "12", "--fps", "24", "--grid", "2x1", "--loop", "--easing", "ease-in-out",
                 "-o", str(out)]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape == (12, 32, 64, 3)
    assert abs(sum(iio.immeta(out, index=i)["duration"] for i in range(12)) - 500) <= 10


def test_interpolate_mp4_by_duration_and_size(net_path, tmp_path):
    out = tmp_path / "walk.mp4"
    assert main(["interpolate", "--network", str(net_path), "--seeds", "0,5", "--seeds", "1,6", "--seeds", "2,7", "--grid", "3x1",
                 "--duration", "1.5", "--fps", "20", "--size", "150", "-o", str(out)]) == 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["fps"] == 20 and meta["size"] == (150, 50) and sum(1 for _ in reader) == 30


def test_mix_and_truncation_grid_match_the_api(net_path, small_G, tmp_path):
    assert main(["mix", "--network", str(net_path), "--rows", "1,2,3", "--cols", "10,11", "--layers", "0-6",
                 "-o", str(tmp_path / "mix.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "mix.png")),
                                  np.asarray(mixing_grid(small_G, "1,2,3", "10,11", "0-6")))
    assert main(["truncation-grid", "--network", str(net_path), "--seeds", "0-2", "--psis", "0.3,1", "-o",
                 str(tmp_path / "t.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "t.png")),
                                  np.asarray(truncation_grid(small_G, "0-2", "0.3,1")))


@pytest.mark.parametrize("argv,message", [
    (["interpolate", "--seeds", "0", "-o", "x.gif"], "at least 2 keyframes"),
    (["interpolate", "--seeds", "0,1", "-o", "x.avi"], ".gif or .mp4"),
    (["interpolate", "--seeds", "0,1", "--fps", "60", "-o", "x.gif"], "at most 50 fps"),
    (["interpolate", "--seeds", "0,1", "--seeds", "2,3", "--grid", "3x1", "-o", "x.gif"], "2 keyframe groups for 3 grid cells"),
    (["interpolate", "--seeds", "0,missing.npz", "-o", "x.gif"], "no such latent file"),
    (["interpolate", "--seeds", "0,1", "--size", "huge", "-o", "x.gif"], "bad size"),
    (["mix", "--rows", "1", "--cols", "2", "--layers", "fine", "-o", "x.png"], "no fine layers"),
    (["mix", "--rows", "1", "--cols", "2", "--layers", "0-99", "-o", "x.png"], "ws 0-7"),
    (["truncation-grid", "--seeds", "0", "--psis", "a,b", "-o", "x.png"], "bad psi list"),
])
def test_bad_input_exits_2_with_one_line(net_path, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main([argv[0], "--network", str(net_path), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]


def test_w_only_keyframe_in_z_space_is_a_user_error(net_path, small_G, tmp_path, capsys):
    key = save_latent(Latent(w=torch.zeros(small_G.num_ws, small_G.w_dim)), tmp_path / "w.npz")
    assert main(["interpolate", "--network", str(net_path), "--seeds", f"0,{key}", "--space", "slerp",
                 "-o", str(tmp_path / "x.gif")]) == 2
    assert "--space w" in capsys.readouterr().err
    assert not (tmp_path / "x.gif").exists()
