"""Projection cost: seconds per optimisation step, config F (random weights), CPU float32, next to one
plain forward pass of the same generator (the ratio is what a step costs in forwards).

Cases: forward (no grad) · w step (pixel + pyramid) · w+ step · w step + D features. Each case runs
in its own process; cases are repeated alternately and the best repeat is kept.

    python -m benchmarks.projection [--res 256] [--steps 6] [--repeats 2] [--out benchmarks/results/projection.json]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.common import best_of_alternating, peak_rss_mib, print_table, time_calls, write_json

CASES = ["forward", "w", "w+", "w+D"]


def run_case(case: dict) -> dict:
    from stylegan_anime.editing import ProjectionConfig, project
    from stylegan_anime.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=case["res"])).eval().requires_grad_(False)
    if case["name"] == "forward":
        ws = G.mapping(torch.randn(1, G.z_dim))
        with torch.inference_mode():
            sec = time_calls(lambda: G.synthesis(ws), warmup=1, min_seconds=3.0)
        return {**case, "sec_per_step": sec, "peak_rss_mib": peak_rss_mib()}
    D = Discriminator(DiscriminatorConfig(img_resolution=case["res"])).eval() if case["name"] == "w+D" else None
    with torch.no_grad():
        target = G(torch.randn(1, G.z_dim)).clamp(-1, 1)
    cfg = ProjectionConfig(steps=case["steps"], mode="w" if case["name"] == "w" else "w+", w_avg_samples=1000)
    project(G, target, ProjectionConfig(steps=1, w_avg_samples=100), D=D)  # warm-up
    stamps: list[float] = []
    project(G, target, cfg, D=D, on_step=lambda s: stamps.append(time.perf_counter()))
    per_step = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    return {**case, "sec_per_step": per_step[len(per_step) // 2], "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/projection.json")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    cases = [{"name": name, "res": args.res, "steps": args.steps} for name in CASES]
    best = {r["name"]: r for r in best_of_alternating("benchmarks.projection", cases, args.repeats,
                                                      lambda r: -r["sec_per_step"])}
    base = best["forward"]["sec_per_step"]
    rows = [{**r, "x_forward": r["sec_per_step"] / base} for r in best.values()]
    print_table(rows, ["name", "res", "sec_per_step", "x_forward", "peak_rss_mib"])
    write_json(rows, args.out, torch=torch.__version__, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
