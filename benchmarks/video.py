"""Interpolation video throughput: frames/s and peak RSS of a 3×3 grid interpolation (each cell its
own path through 3 seeds, slerp), 60 vs 600 frames, written as MP4 (or GIF). Random weights,
config F by default; each case in its own process, cases alternated across repeats.

Config F at 256² needs ~11 s per 3×3 frame on 2 CPU cores (600 frames ≈ 2 h): on such a machine
use a smaller network to see the pipeline's own cost and memory behaviour, e.g.

    python -m benchmarks.video --res 256 --channel-base 512 --channel-max 16 --threads 1
    python -m benchmarks.video [--res 256] [--frames 60 600] [--format mp4 gif] [--repeats 1]

Writers (--writer): ``current`` is ``stylegan_anime.write_video`` (GIF: Pillow, streamed;
MP4: imageio-ffmpeg). The others go through moviepy (``pip install moviepy``, not a dependency):
``moviepy`` is a ``VideoClip`` fed in order from the frame iterator and written with
``write_gif`` (imageio's Pillow plugin) or ``write_videofile`` (libx264, crf 10 like the current
writer's quality 8); ``moviepy-ffmpeg`` (GIF only) sends the same clip through moviepy's ffmpeg
writer with per-frame palettes (palettegen stats_mode=single + paletteuse new=1). Every case
also reports the encoder's own CPU seconds (the process's and its children's CPU time minus what
drawing the frames took: steadier than wall time on a shared machine), the file size, and, from
the decoded file against the frames written, mean abs error (0-255) and PSNR; for GIFs the
playing time the frame delays add up to. The moviepy comparison the README quotes, on the bundled
model (real portraits, not random-weight noise, for the GIF quality numbers):

    python -m benchmarks.video --network default --size 768 --threads 1 --frames 60 300 \\
        --format gif mp4 --writer current moviepy moviepy-ffmpeg --out benchmarks/results/video_moviepy.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import best_of_alternating, peak_rss_mib, print_table, write_json

WRITERS = ("current", "moviepy", "moviepy-ffmpeg")
FPS, CRF = 30, 10  # the current writer's default quality 8 is x264 crf 10


def _frames(G, frames: int, size: int | None):
    from stylegan_anime.features.interpolation import KeyframePath, cell_keyframes, interpolation_frames, make_schedule
    from stylegan_anime.latents.keyframes import parse_keyframe_groups
    paths = [KeyframePath(G, keys, "slerp") for keys in cell_keyframes(parse_keyframe_groups("0,5,9"), 9)]
    return interpolation_frames(G, paths, make_schedule(3, frames), cols=3, batch_size=9,
                                size=(size, size) if size else None)


class InOrderFrames:
    """A moviepy frame function over a frame iterator: t → frame round(t * fps). moviepy asks for
    t = 0 when the clip is made and again when writing, so the frame just served is served again;
    a request for any frame but the next fails instead of quietly showing the wrong one."""

    def __init__(self, frames, fps: float):
        self.it, self.fps, self.index, self.frame = iter(frames), fps, -1, None

    def __call__(self, t: float) -> np.ndarray:
        i = round(t * self.fps)
        if i != self.index:
            if i != self.index + 1:
                raise RuntimeError(f"moviepy asked for frame {i} after frame {self.index}")
            self.frame, self.index = next(self.it), i
        return self.frame

    def finish(self) -> None:
        if next(self.it, None) is not None:
            raise RuntimeError(f"moviepy stopped after frame {self.index}, before the last")


def moviepy_write(frames, path: Path, total: int, writer: str, fps: float = FPS) -> None:
    from moviepy import VideoClip
    from moviepy.video.io.ffmpeg_writer import ffmpeg_write_video
    # iter_frames writes int(duration * fps) frames: half a frame more keeps n / fps * fps from rounding down
    source = InOrderFrames(frames, fps)
    clip = VideoClip(source, duration=(total + 0.5) / fps).with_fps(fps)
    if path.suffix == ".mp4":
        clip.write_videofile(str(path), fps=fps, codec="libx264", ffmpeg_params=["-crf", str(CRF)], audio=False,
                             logger=None)
    elif writer == "moviepy":
        clip.write_gif(str(path), fps=fps, loop=0, logger=None)
    else:
        vf = "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"
        ffmpeg_write_video(clip, str(path), fps, codec="gif", ffmpeg_params=["-vf", vf, "-loop", "0"], logger=None)
    source.finish()


class Timed:
    """Pass frames through, keeping a raw copy on disk (not in memory) for the quality check and
    the wall and CPU seconds spent drawing them (and copying), to subtract from the writer's."""

    def __init__(self, frames, raw_path: Path):
        self.it, self.raw, self.sec, self.cpu, self.count = iter(frames), open(raw_path, "wb"), 0.0, 0.0, 0

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        t, c = time.perf_counter(), time.process_time()
        try:
            frame = next(self.it)
            self.raw.write(np.ascontiguousarray(frame).tobytes())
            self.shape, self.count = frame.shape, self.count + 1
            return frame
        finally:
            self.sec += time.perf_counter() - t
            self.cpu += time.process_time() - c


class ChildPeak:
    """Peak RSS (VmHWM) of this process's child processes (ffmpeg), polled from /proc. The rusage
    of children is no use here: the kernel's peak for a child includes this process's memory as
    it was when the child started (the memory the child shared before its exec)."""

    def __init__(self, interval: float = 0.1):
        self.peak_kib, self.interval, self.stop = 0, interval, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = str(os.getpid())
        while not self.stop.wait(self.interval):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    self.peak_kib = max(self.peak_kib, int(fields["VmHWM"].split()[0]))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def decoded_frames(path: Path):
    if path.suffix == ".gif":
        from PIL import Image
        with Image.open(path) as im:
            for i in range(im.n_frames):
                im.seek(i)
                yield np.asarray(im.convert("RGB")), im.info.get("duration", 0)
    else:
        import imageio_ffmpeg
        reader = imageio_ffmpeg.read_frames(str(path))
        w, h = next(reader)["size"]
        for buf in reader:
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3), None


def quality(path: Path, raw_path: Path, shape: tuple[int, ...]) -> dict:
    """Mean abs error and PSNR of the decoded file against the frames written; GIF playing time."""
    frame_bytes = int(np.prod(shape))
    abs_sum = sq_sum = count = 0
    play_ms = 0.0
    with open(raw_path, "rb") as raw:
        for frame, duration in decoded_frames(path):
            ref = np.frombuffer(raw.read(frame_bytes), np.uint8)
            if ref.size < frame_bytes:
                break
            diff = frame.astype(np.int32).ravel() - ref.astype(np.int32)
            abs_sum, sq_sum, count = abs_sum + np.abs(diff).sum(), sq_sum + (diff * diff).sum(), count + 1
            play_ms += duration or 0
    mse = sq_sum / max(1, count * frame_bytes)
    return {"decoded_frames": count, "mae": abs_sum / max(1, count * frame_bytes),
            "psnr_db": 10 * np.log10(255 ** 2 / mse) if mse else float("inf"),
            "play_sec": play_ms / 1000 if path.suffix == ".gif" else None}


def run_case(case: dict) -> dict:
    import stylegan_anime as sa
    from stylegan_anime.networks import Generator, GeneratorConfig
    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    if case.get("network"):
        G = sa.load(case["network"])
    else:
        G = Generator(GeneratorConfig(img_resolution=case["res"], channel_base=case["channel_base"],
                                      channel_max=case["channel_max"])).eval().requires_grad_(False)
    writer = case.get("writer", "current")
    if writer != "current":
        import moviepy  # noqa: F401  (imported before the clock starts: its import is not per-frame cost)
    with tempfile.TemporaryDirectory() as tmp:
        out, raw = Path(tmp) / f"walk.{case['format']}", Path(tmp) / "frames.raw"
        frames = Timed(_frames(G, case["frames"], case.get("size")), raw)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, cpu_start = time.perf_counter(), time.process_time()
        with ChildPeak() as child:
            if writer == "current":
                sa.write_video(frames, out, fps=FPS, progress=False)
            else:
                moviepy_write(frames, out, case["frames"], writer)
        sec, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        frames.raw.close()
        peak, children = peak_rss_mib(), resource.getrusage(resource.RUSAGE_CHILDREN)
        size_mib = out.stat().st_size / 2 ** 20
        q = quality(out, raw, frames.shape)
    child_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    return {**case, "writer": writer, "sec": sec, "frames_per_s": case["frames"] / sec,
            "encode_sec": sec - frames.sec, "encode_cpu_s": cpu - frames.cpu + child_cpu,
            "peak_rss_mib": peak, "ffmpeg_peak_rss_mib": child.peak_kib / 1024 if child.peak_kib else None,
            "file_mib": size_mib, "written_frames": frames.count, "frame_shape": list(frames.shape), **q}


def growth(rows: list[dict]) -> list[dict]:
    """Per writer and format: what the most frames cost in peak memory over the fewest."""
    out = []
    for key in dict.fromkeys((r["writer"], r["format"]) for r in rows):
        mine = sorted((r for r in rows if (r["writer"], r["format"]) == key), key=lambda r: r["frames"])
        if len(mine) > 1:
            lo, hi = mine[0], mine[-1]
            child = (hi["ffmpeg_peak_rss_mib"], lo["ffmpeg_peak_rss_mib"])
            out.append({"writer": key[0], "format": key[1], "frames": f"{lo['frames']} -> {hi['frames']}",
                        "peak_rss_growth_mib": hi["peak_rss_mib"] - lo["peak_rss_mib"],
                        "ffmpeg_peak_growth_mib": child[0] - child[1] if all(child) else None,
                        "frame_mib": float(np.prod(hi["frame_shape"])) / 2 ** 20})
    return out


def ratios(rows: list[dict]) -> list[dict]:
    """Each moviepy row against the current writer's row of the same format and frame count."""
    base = {(r["format"], r["frames"]): r for r in rows if r["writer"] == "current"}
    out = []
    for r in rows:
        b = base.get((r["format"], r["frames"]))
        if r["writer"] == "current" or b is None:
            continue
        out.append({"writer": r["writer"], "format": r["format"], "frames": r["frames"],
                    "encode_cpu_x": r["encode_cpu_s"] / b["encode_cpu_s"], "sec_x": r["sec"] / b["sec"],
                    "peak_rss_extra_mib": r["peak_rss_mib"] - b["peak_rss_mib"],
                    "file_x": r["file_mib"] / b["file_mib"], "mae_x": r["mae"] / b["mae"] if b["mae"] else None})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--network", help="a model to load (e.g. default, the bundled one) instead of random weights")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--channel-base", type=int, default=32768, help="32768 = config F")
    ap.add_argument("--channel-max", type=int, default=512)
    ap.add_argument("--size", type=int, help="frame size (the 3×3 grid resized to it), e.g. 768")
    ap.add_argument("--frames", type=int, nargs="+", default=[60, 600])
    ap.add_argument("--format", nargs="+", default=["mp4"], choices=["mp4", "gif"])
    ap.add_argument("--writer", nargs="+", default=["current"], choices=WRITERS)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: torch's default); 1 is far faster on a crowded machine")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/video.json")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    net = {"network": args.network} if args.network else {
        "res": args.res, "channel_base": args.channel_base, "channel_max": args.channel_max}
    cases = [{**net, "size": args.size, "frames": n, "format": f, "writer": w, "threads": args.threads}
             for f in args.format for n in args.frames for w in args.writer
             if not (w == "moviepy-ffmpeg" and f == "mp4")]  # moviepy's MP4 is always its ffmpeg writer
    rows = best_of_alternating("benchmarks.video", cases, args.repeats, lambda r: r["frames_per_s"])
    print_table(rows, ["writer", "format", "frames", "frames_per_s", "sec", "encode_sec", "encode_cpu_s",
                       "peak_rss_mib", "ffmpeg_peak_rss_mib", "file_mib", "mae", "psnr_db", "play_sec"])
    grown = growth(rows)
    if grown:
        print("\npeak memory, most frames over fewest:")
        print_table(grown, ["writer", "format", "frames", "peak_rss_growth_mib", "ffmpeg_peak_growth_mib", "frame_mib"])
    versus = ratios(rows)
    if versus:
        print("\nagainst the current writer (same format and frame count):")
        print_table(versus, ["writer", "format", "frames", "encode_cpu_x", "sec_x", "peak_rss_extra_mib", "file_x",
                             "mae_x"])
    write_json(rows, args.out, torch=torch.__version__, grid="3x3", fps=FPS,
               cell_resolution=args.res if not args.network else None, network=args.network or "random",
               versus_current=versus, memory_growth=grown)


if __name__ == "__main__":
    main()
