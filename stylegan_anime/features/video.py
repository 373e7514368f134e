"""Frame iterators → GIF / MP4 files, streamed: each frame is encoded as it arrives, so memory
does not grow with the number of frames. Files are written to a temp file, then renamed.

GIF: Pillow's GIF encoder, one frame at a time (each frame its own 256-colour octree palette:
median cut looks a little better but is ~100x slower).
MP4: H.264 through the ffmpeg binary that imageio-ffmpeg ships.
moviepy is not used: its GIF writer keeps every frame until the end (README, "No moviepy";
``python -m benchmarks.video --writer current moviepy moviepy-ffmpeg``).
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
from PIL import GifImagePlugin, Image
from tqdm.auto import tqdm

from ..io.atomic import atomic_path
from ..errors import UserError

VIDEO_SUFFIXES = (".gif", ".mp4")
MAX_GIF_FPS = 50  # GIF delays are whole centiseconds, and players slow down delays under 2 cs


def parse_size(text: str | int | tuple[int, int] | None):
    """'512' → 512 (longer side); '640x360' → (640, 360); None stays None."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        if isinstance(text, int) or "x" not in text.lower():
            value = int(text)
        else:
            value = tuple(int(v) for v in text.lower().split("x"))
            if len(value) != 2:
                raise ValueError
    except ValueError:
        raise UserError(f"bad size {text!r}: use N (longer side) or WxH, e.g. 512 or 640x360") from None
    if min(value if isinstance(value, tuple) else (value,)) < 2:
        raise UserError(f"bad size {text!r}: sides must be at least 2 pixels")
    return value


def output_size(native: tuple[int, int], size, suffix: str) -> tuple[int, int] | None:
    """The frame size to write: ``size`` as (w, h) or longer side, else native; even for MP4
    (H.264 in yuv420p needs even sides). None when the native size is kept."""
    size = parse_size(size)
    if isinstance(size, int):
        scale = size / max(native)
        size = (max(2, round(native[0] * scale)), max(2, round(native[1] * scale)))
    w, h = size if size is not None else native
    if suffix.lower() == ".mp4":
        w, h = w + w % 2, h + h % 2
    return None if (w, h) == tuple(native) else (w, h)


def gif_delays_cs(fps: float, count: int, start: int = 0) -> list[int]:
    """Per-frame GIF delays in centiseconds whose running sum tracks 100 * i / fps (so 30 fps
    alternates 3 and 4 cs instead of drifting to 33.3 fps)."""
    return [round((i + 1) * 100 / fps) - round(i * 100 / fps) for i in range(start, start + count)]


class GifStream:
    """Write GIF frames one at a time to an open binary file."""

    def __init__(self, f: BinaryIO, fps: float, loop: int | None = 0):
        self.f, self.fps, self.loop, self.count = f, fps, loop, 0

    def write(self, frame: np.ndarray) -> None:
        """frame: uint8 [H, W, 3]."""
        image = Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE)
        if self.count == 0:
            info = {"loop": self.loop} if self.loop is not None else {"duration": 10}
            header, _ = GifImagePlugin.getheader(image, info=info)
            self.f.write(b"".join(header))
            self.size = image.size
        elif image.size != self.size:
            raise ValueError(f"frame {self.count} is {image.size}, the first was {self.size}")
        delay = gif_delays_cs(self.fps, 1, self.count)[0]
        for chunk in GifImagePlugin.getdata(image, duration=delay * 10, include_color_table=True):
            self.f.write(chunk)
        self.count += 1

    def close(self) -> None:
        self.f.write(b";")  # GIF trailer


class Mp4Stream:
    """Pipe frames to ffmpeg (libx264, yuv420p)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, quality: float = 8):
        import imageio_ffmpeg
        self.size = size
        self.gen = imageio_ffmpeg.write_frames(str(path), size, fps=fps, codec="libx264", quality=quality,
                                               macro_block_size=1, ffmpeg_log_level="error")
        self.gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the video is {self.size}")
        self.gen.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self.gen.close()


def check_video_path(path: str | Path, fps: float) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"cannot write a video to {path.name!r}: use a .gif or .mp4 file name")
    if fps <= 0:
        raise UserError(f"fps must be positive, got {fps}")
    if path.suffix.lower() == ".gif" and fps > MAX_GIF_FPS:
        raise UserError(f"GIFs play at most {MAX_GIF_FPS} fps (players slow down shorter delays): "
                        "lower --fps or write an .mp4")
    return path


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 30, gif_loop: int | None = 0,
                size=None, quality: float = 8, total: int | None = None, progress: bool = False) -> Path:
    """frames: uint8 [H, W, 3] arrays, all one size → ``path`` (.gif or .mp4), streamed; returns the path.

    gif_loop: GIF repeat count, 0 = forever, None = play once. size: (w, h) or longer side,
    frames are resized to it. quality: MP4 quality in [1, 10] (8 ≈ x264 crf 10).
    Nothing appears at ``path`` unless every frame was written.
    """
    path = check_video_path(path, fps)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise UserError("no frames to write")
    target = output_size((first.shape[1], first.shape[0]), size, path.suffix)

    def sized(frame: np.ndarray) -> np.ndarray:
        return frame if target is None else np.asarray(Image.fromarray(frame).resize(target, Image.LANCZOS))

    with atomic_path(path) as tmp, tqdm(total=total, desc=path.name, unit="frame", disable=not progress) as bar:
        first = sized(first)
        if path.suffix.lower() == ".gif":
            f = open(tmp, "wb")
            stream = GifStream(f, fps, gif_loop)
        else:
            f, stream = None, Mp4Stream(tmp, (first.shape[1], first.shape[0]), fps, quality)
        try:
            stream.write(first)
            bar.update(1)
            for frame in it:
                stream.write(sized(frame))
                bar.update(1)
        finally:  # on failure too: ffmpeg must exit; atomic_path then drops the partial file
            stream.close()
            if f is not None:
                f.close()
    return path
