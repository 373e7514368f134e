"""Generator throughput: images/s and peak RSS, config F at 256² and 512², batch 1 and 8,
float32, CPU, on the native ops and on the reference ops. Each case runs in its own process;
cases are repeated alternately.

    python -m benchmarks.generate [--res 256 512] [--batch 1 8] [--ops native ref] [--repeats 2]
                                  [--out benchmarks/results/generate.json]
"""
from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import best_of_alternating, peak_rss_mib, print_table, time_calls, write_json


def run_case(case: dict) -> dict:
    from stylegan_anime.ops import native_build
    from stylegan_anime.networks import Generator, GeneratorConfig
    native_build.set_ops_mode(case.get("ops", "auto"))
    if native_build.ops_mode() == "native":  # build (or load) before anything is timed
        for op in native_build.OPS:
            native_build.load(op, "cpu")
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=case["res"])).eval().requires_grad_(False)
    z = torch.randn(case["batch"], G.z_dim)
    with torch.inference_mode():
        sec = time_calls(lambda: G(z, psi=0.7), warmup=1, min_seconds=case.get("min_seconds", 3.0))
    return {**case, "sec_per_batch": sec, "images_per_s": case["batch"] / sec, "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--res", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--ops", nargs="+", choices=["native", "ref"], default=["native", "ref"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/generate.json")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    cases = [{"res": r, "batch": b, "ops": o} for r in args.res for b in args.batch for o in args.ops]
    rows = best_of_alternating("benchmarks.generate", cases, args.repeats, lambda r: r["images_per_s"])
    best = {(r["res"], r["batch"], r["ops"]): r for r in rows}
    for row in rows:
        ref = best.get((row["res"], row["batch"], "ref"))
        if ref is not None:
            row["vs_ref"] = row["images_per_s"] / ref["images_per_s"]
    print_table(rows, ["res", "batch", "ops", "images_per_s", "vs_ref", "sec_per_batch", "peak_rss_mib"])
    write_json(rows, args.out, torch=torch.__version__, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
