"""Interpolation video throughput: frames/s and peak RSS of a 3×3 grid interpolation (each cell its
own path through 3 seeds, slerp), 60 vs 600 frames, written as MP4 (or GIF). Random weights,
config F by default; each case in its own process, cases alternated across repeats.

Config F at 256² needs ~11 s per 3×3 frame on 2 CPU cores (600 frames ≈ 2 h): on such a machine
use a smaller network to see the pipeline's own cost and memory behaviour, e.g.

    python -m benchmarks.video --res 256 --channel-base 512 --channel-max 16 --threads 1
    python -m benchmarks.video [--res 256] [--frames 60 600] [--format mp4 gif] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import best_of_alternating, peak_rss_mib, print_table, write_json


def run_case(case: dict) -> dict:
    from stylegan_anime.features.interpolation import interpolation_video
    from stylegan_anime.networks import Generator, GeneratorConfig
    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=case["res"], channel_base=case["channel_base"],
                                  channel_max=case["channel_max"])).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"walk.{case['format']}"
        start = time.perf_counter()
        interpolation_video(G, "0,5,9", out, frames=case["frames"], grid=(3, 3), space="slerp", fps=30,
                            batch_size=9, progress=False)
        sec = time.perf_counter() - start
        size_mib = out.stat().st_size / 2 ** 20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {**case, "sec": sec, "frames_per_s": case["frames"] / sec, "peak_rss_mib": peak_rss_mib(),
            "ffmpeg_peak_rss_mib": children if case["format"] == "mp4" else None, "file_mib": size_mib}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--channel-base", type=int, default=32768, help="32768 = config F")
    ap.add_argument("--channel-max", type=int, default=512)
    ap.add_argument("--frames", type=int, nargs="+", default=[60, 600])
    ap.add_argument("--format", nargs="+", default=["mp4"], choices=["mp4", "gif"])
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: torch's default); 1 is far faster on a crowded machine")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/video.json")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    cases = [{"res": args.res, "channel_base": args.channel_base, "channel_max": args.channel_max,
              "frames": n, "format": f, "threads": args.threads} for f in args.format for n in args.frames]
    rows = best_of_alternating("benchmarks.video", cases, args.repeats, lambda r: r["frames_per_s"])
    print_table(rows, ["res", "channel_base", "channel_max", "threads", "format", "frames", "frames_per_s", "sec",
                       "peak_rss_mib", "ffmpeg_peak_rss_mib", "file_mib"])
    write_json(rows, args.out, torch=torch.__version__,
               grid="3x3", cell_resolution=args.res)


if __name__ == "__main__":
    main()
