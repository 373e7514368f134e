"""Data pipeline throughput, side by side in one run: synthetic portraits (drawing and PNG encoding
timed alternately) at 64² and 256², and ADA (forward + backward, batch 16) per stage at 64² and 256².

    python -m benchmarks.data [--repeats 2] [--out benchmarks/results/data.json]
"""
from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import best_of_alternating, print_table, time_calls, write_json

STAGES = {"p=0": None, "blit": "b", "geometric": "g", "colour": "c", "bgc": "bgc"}


def _synthetic_case(case: dict) -> dict:
    """Drawing and PNG encoding timed call by call, alternately, so load drift hits both alike."""
    import time

    from stylegan_anime.data.synthetic import draw_portrait, sample_params
    from stylegan_anime.data.writer import png_bytes
    draw, encode = [], []
    deadline = time.perf_counter() + case.get("min_seconds", 3.0)
    seed = 0
    while time.perf_counter() < deadline or len(draw) < 5:
        t0 = time.perf_counter()
        image = draw_portrait(sample_params(seed), case["res"])
        t1 = time.perf_counter()
        png_bytes(image)
        t2 = time.perf_counter()
        draw.append(t1 - t0)
        encode.append(t2 - t1)
        seed += 1
    draw.sort()
    encode.sort()
    d, e = draw[len(draw) // 2], encode[len(encode) // 2]
    return {**case, "ms_per_call": (d + e) * 1e3, "images_per_s": 1 / (d + e), "draw_ms": d * 1e3,
            "png_ms": e * 1e3}


def run_case(case: dict) -> dict:
    torch.set_num_threads(1)
    if case["kind"] == "synthetic":
        return _synthetic_case(case)
    from stylegan_anime.training.augment import AugmentConfig, AugmentPipe
    preset = STAGES[case["what"]]
    pipe = AugmentPipe(AugmentConfig.preset(preset) if preset else AugmentConfig(), p=0.0 if preset is None else 1.0)
    x = (torch.rand(16, 3, case["res"], case["res"]) * 2 - 1).requires_grad_()

    def step():
        pipe(x).square().sum().backward()
    sec = time_calls(step, warmup=1, min_seconds=case.get("min_seconds", 2.0))
    return {**case, "ms_per_call": sec * 1e3, "images_per_s": 16 / sec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/data.json")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    cases = [{"kind": "synthetic", "what": "draw+png", "res": r} for r in (64, 256)]
    cases += [{"kind": "augment", "what": w, "res": r} for r in (64, 256) for w in STAGES]
    rows = best_of_alternating("benchmarks.data", cases, args.repeats, lambda r: r["images_per_s"])
    print_table(rows, ["kind", "what", "res", "ms_per_call", "images_per_s", "draw_ms", "png_ms"])
    write_json(rows, args.out, torch=torch.__version__, threads=1)


if __name__ == "__main__":
    main()
