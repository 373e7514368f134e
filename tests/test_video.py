"""Videos read back with the frame count, fps and size asked for; written atomically; streamed."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from stylegan_anime.errors import UserError
from stylegan_anime.features.video import gif_delays_cs, output_size, write_video

REPO = Path(__file__).resolve().parent.parent


def solid_frames(n: int, w: int = 48, h: int = 32):
    """Frames of distinct flat colours (exact after GIF quantisation), made lazily."""
    for i in range(n):
        yield np.full((h, w, 3), [(37 * i) % 256, (91 * i + 40) % 256, (11 * i + 200) % 256], dtype=np.uint8)


@pytest.mark.parametrize("fps", [10, 25, 30])
def test_gif_has_the_frames_fps_and_loop_asked_for(tmp_path, fps):
    path = write_video(solid_frames(17), tmp_path / "a.gif", fps=fps)
    frames = iio.imread(path, index=None)
    assert frames.shape == (17, 32, 48, 3)
    np.testing.assert_array_equal(frames, np.stack(list(solid_frames(17))))
    durations = [iio.immeta(path, index=i)["duration"] for i in range(17)]
    assert abs(sum(durations) - 17 * 1000 / fps) <= 10  # whole centiseconds, but no drift
    assert iio.immeta(path, index=0)["loop"] == 0


def test_gif_delays_track_the_clock():
    d = gif_delays_cs(30, 300)
    assert set(d) == {3, 4} and sum(d) == 1000


def test_gif_loop_count_and_play_once(tmp_path):
    assert iio.immeta(write_video(solid_frames(3), tmp_path / "a.gif", fps=10, gif_loop=2), index=0)["loop"] == 2
    assert "loop" not in iio.immeta(write_video(solid_frames(3), tmp_path / "b.gif", fps=10, gif_loop=None),
                                    index=0)


@pytest.mark.parametrize("fps", [12, 30])
def test_mp4_has_the_frames_fps_and_size_asked_for(tmp_path, fps):
    path = write_video(solid_frames(23), tmp_path / "a.mp4", fps=fps, size=(64, 40))
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(40, 64, 3) for f in reader]
    assert meta["fps"] == fps and meta["size"] == (64, 40) and len(frames) == 23
    # H.264 is lossy; flat colours come back close.
    expected = np.stack(list(solid_frames(23)))[:, 0, 0].astype(int)
    assert np.abs(np.stack(frames)[:, 20, 32].astype(int) - expected).max() <= 8


def test_sizes(tmp_path):
    assert output_size((96, 64), 48, ".gif") == (48, 32)
    assert output_size((96, 64), None, ".gif") is None
    assert output_size((33, 17), None, ".mp4") == (34, 18)  # H.264 needs even sides
    path = write_video(solid_frames(2), tmp_path / "s.gif", fps=10, size="20x10")
    assert iio.imread(path, index=None).shape == (2, 10, 20, 3)


def test_failed_write_leaves_nothing_behind(tmp_path):
    def broken():
        yield from solid_frames(3)
        raise RuntimeError("generator crashed")
    for name in ("a.gif", "a.mp4"):
        with pytest.raises(RuntimeError):
            write_video(broken(), tmp_path / name, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=".gif or .mp4"):
        write_video(solid_frames(2), tmp_path / "a.avi")
    with pytest.raises(UserError, match="at most 50 fps"):
        write_video(solid_frames(2), tmp_path / "a.gif", fps=60)
    with pytest.raises(UserError, match="bad size"):
        write_video(solid_frames(2), tmp_path / "a.gif", size="big")
    with pytest.raises(UserError, match="no frames"):
        write_video(iter([]), tmp_path / "a.gif")


CHILD = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, "tests")
    import torch
    torch.set_num_threads(1)  # tiny network: threads only add spinning on a busy machine
    from conftest import randomize_buffers, small_g_config
    from stylegan_anime.networks import Generator
    from stylegan_anime.features.interpolation import interpolation_video
    torch.manual_seed(0)
    G = randomize_buffers(Generator(small_g_config())).eval()
    interpolation_video(G, "0,5,9", sys.argv[2], frames=int(sys.argv[1]), grid=(3, 3), size=SIZE, progress=False)
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")
SIZE, MARGIN_MIB = 256, 20


def peak_mib(frames: int, out: Path) -> float:
    r = subprocess.run([sys.executable, "-c", CHILD.replace("SIZE", str(SIZE)), str(frames), str(out)],
                       capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_mib"]


def test_peak_memory_does_not_grow_with_the_number_of_frames(tmp_path):
    # Keeping the 270 extra frames (uint8 only) would cost this much: well over the margin.
    assert 270 * SIZE * SIZE * 3 / 2 ** 20 > 2 * MARGIN_MIB
    short, long = peak_mib(30, tmp_path / "short.gif"), peak_mib(300, tmp_path / "long.gif")
    assert len(iio.imread(tmp_path / "long.gif", index=None)) == 300
    assert long - short < MARGIN_MIB, f"30 frames: {short:.0f} MiB, 300 frames: {long:.0f} MiB"
