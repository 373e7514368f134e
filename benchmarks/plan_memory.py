"""Peak RSS and images/s of a forward run from an inference plan against the module forward ``G(z)``
(which derives its filters every call and allocates its activations), config F with random weights, each case in a fresh process,
the cases taking turns (the machine's speed drifts); ratios plan / module side by side. The speed
ratio is also measured in one process, the two paths alternating call by call on the same network
(``alternating_ratio``): on a shared machine that is the steadier figure.

    python -m benchmarks.plan_memory [--res 256] [--batches 1 8] [--repeats 2] [--rounds 5] [--out benchmarks/results/plan_memory.json]

``--budgets 16 32 64 128 0`` instead times plans built with each pass budget (MiB a tensor, 0: the
whole batch a pass; ``inference.policy.PASS_BYTES``) in one process, call by call in turns, and
reports each one's speed over the unsplit plan's and its activation buffers. ``--unkept-tiles 0 64 256``
likewise times plans whose F(4x4, 3x3) layers of at most that many tiles a call make their filters on the
way instead of keeping them (``networks.winograd.UNKEPT_MAX_TILES``; 0: all kept), and
``--unkept-min-tiles 16 64`` plans whose layers of fewer tiles than ``MIN_TILES`` (64) run so from that many
tiles a call (``networks.winograd.UNKEPT_MIN_TILES``; 64: oneDNN's direct conv below 64 tiles), and
``--filters-in-arena 1 0`` plans that make the stride-2 filter planes per call where the arena has room
(``inference.plan.FILTERS_IN_ARENA``) against plans that keep them all.

Keep to 256² on the shared machine: 512² batch 8 needs several GB.
"""
from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import (best_of_alternating, peak_rss_mib, print_table, run_case_in_subprocess, time_calls,
                               write_json)

PATHS = ("module", "plan")


def run_case(case: dict) -> dict:
    """One (path, batch, resolution): median seconds per forward after a warm-up, and peak RSS."""
    from stylegan_anime.networks import Generator, GeneratorConfig
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=case["res"])).eval().requires_grad_(False)
    z = torch.randn(case["batch"], G.z_dim)
    with torch.no_grad():
        if case["path"] == "plan":
            plan = G.plan("cpu", case["batch"])
            seconds = time_calls(lambda: plan.generate(z), warmup=1, min_seconds=3.0)
        else:
            seconds = time_calls(lambda: G(z), warmup=1, min_seconds=3.0)
    return {**case, "img_s": case["batch"] / seconds, "peak_rss_mib": peak_rss_mib()}


def run_alternating(case: dict) -> dict:
    """Both paths on one network, call by call, ``case["rounds"]`` times: the median of plan / module speed."""
    from stylegan_anime.networks import Generator, GeneratorConfig
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=case["res"])).eval().requires_grad_(False)
    z = torch.randn(case["batch"], G.z_dim)
    plan = G.plan("cpu", case["batch"])
    ratios = []
    with torch.no_grad():
        G(z), plan.generate(z)  # warm-up
        for _ in range(case["rounds"]):
            module = time_calls(lambda: G(z), warmup=0, min_seconds=0, min_calls=1)
            planned = time_calls(lambda: plan.generate(z), warmup=0, min_seconds=0, min_calls=1)
            ratios.append(module / planned)
    ratios.sort()
    return {**case, "ratio": ratios[len(ratios) // 2]}


def _set_budget(mib: int) -> None:
    from stylegan_anime.inference import policy
    policy.PASS_BYTES = mib * 2 ** 20 if mib else 2 ** 62


def _set_unkept_tiles(tiles: int) -> None:
    from stylegan_anime.networks import winograd
    winograd.UNKEPT_MAX_TILES = tiles


def _set_unkept_min_tiles(tiles: int) -> None:
    from stylegan_anime.networks import winograd
    winograd.UNKEPT_MIN_TILES = tiles


def _set_filters_in_arena(on: int) -> None:
    from stylegan_anime.inference import plan
    plan.FILTERS_IN_ARENA = bool(on)


# What ``--budgets``, ``--unkept-tiles``, ``--unkept-min-tiles`` and ``--filters-in-arena`` vary: (case key,
# setter, the row's column, the reference value).
VARIANTS = {"budgets": ("budgets", _set_budget, "budget_mib", 0),
            "unkept": ("unkept_tiles", _set_unkept_tiles, "unkept_max_tiles", 0),
            "unkept_min": ("unkept_min_tiles", _set_unkept_min_tiles, "unkept_min_tiles", 64),
            "in_arena": ("filters_in_arena", _set_filters_in_arena, "filters_in_arena", 0)}


def run_variants(case: dict) -> list[dict]:
    """Plans of one network built under each value of one setting (``VARIANTS``), timed in turns
    ``case["rounds"]`` times: median seconds, activation buffers and kept filters."""
    from stylegan_anime.inference.plan import total_prepared_bytes
    from stylegan_anime.networks import Generator, GeneratorConfig
    key, setter, column, _ = VARIANTS[case["path"]]
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=case["res"])).eval().requires_grad_(False)
    z = torch.randn(case["batch"], G.z_dim)
    plans = {}
    for value in case[key]:
        setter(value)
        G.release_plans()  # each value its own plan, store and buffers
        plans[value] = G.plan("cpu", case["batch"])
        plans[value].generate(z)  # the first forward allocates the buffers
    seconds = {value: [] for value in plans}
    for _ in range(case["rounds"]):
        for value, plan in plans.items():
            seconds[value].append(time_calls(lambda: plan.generate(z), warmup=0, min_seconds=0, min_calls=1))
    return [{"res": case["res"], "batch": case["batch"], column: value, "seconds": sorted(t)[len(t) // 2],
             "buffers_mib": plans[value].buffers.nbytes / 2 ** 20,
             "filters_mib": total_prepared_bytes(plans[value]) / 2 ** 20} for value, t in seconds.items()]


def main_variants(args, path: str) -> None:
    """``--budgets`` (speed over the whole batch a pass), ``--unkept-tiles`` (speed over filters all kept),
    ``--unkept-min-tiles`` (speed over oneDNN's direct conv below 64 tiles) or ``--filters-in-arena``
    (speed over every stride-2 filter kept)."""
    key, _, column, reference = VARIANTS[path]
    rows = []
    for b in args.batches:
        got = run_case_in_subprocess("benchmarks.plan_memory", {"path": path, "batch": b, "res": args.res,
                                                                 "rounds": args.rounds, key: getattr(args, key)})
        base = next(r["seconds"] for r in got if r[column] == reference)
        rows += [{**r, f"speed_vs_{column}_{reference}": base / r["seconds"]} for r in got]
    print_table(rows, list(rows[0]))
    if args.out:
        write_json(rows, args.out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="calls of each path in the alternating run")
    ap.add_argument("--budgets", type=int, nargs="+", help="pass budgets in MiB to compare (include 0: whole batch)")
    ap.add_argument("--unkept-tiles", type=int, nargs="+", dest="unkept_tiles",
                    help="values of winograd.UNKEPT_MAX_TILES to compare (include 0: every F(4x4,3x3) filter kept)")
    ap.add_argument("--unkept-min-tiles", type=int, nargs="+", dest="unkept_min_tiles",
                    help="values of winograd.UNKEPT_MIN_TILES to compare (include 64: direct conv below 64 tiles)")
    ap.add_argument("--filters-in-arena", type=int, nargs="+", dest="filters_in_arena",
                    help="values of plan.FILTERS_IN_ARENA to compare, 1 and 0 (0: every stride-2 filter kept)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.case:
        case = json.loads(args.case)
        run = run_variants if case["path"] in VARIANTS else run_alternating if case["path"] == "both" else run_case
        print(json.dumps(run(case)))
        return
    varied = [path for path, (key, *_) in VARIANTS.items() if getattr(args, key)]  # key: the option's dest
    if varied:
        main_variants(args, varied[0])
        return
    cases = [{"path": p, "batch": b, "res": args.res} for b in args.batches for p in PATHS]
    rows = best_of_alternating("benchmarks.plan_memory", cases, args.repeats, score=lambda r: r["img_s"])
    alternating = {b: run_case_in_subprocess("benchmarks.plan_memory",
                                             {"path": "both", "batch": b, "res": args.res, "rounds": args.rounds})
                   for b in args.batches}
    table = []
    for b in args.batches:
        module, plan = (next(r for r in rows if r["batch"] == b and r["path"] == p) for p in PATHS)
        table.append({"res": args.res, "batch": b, "module_img_s": module["img_s"], "plan_img_s": plan["img_s"],
                      "speed_ratio": plan["img_s"] / module["img_s"],
                      "alternating_ratio": alternating[b]["ratio"], "module_rss_mib": module["peak_rss_mib"],
                      "plan_rss_mib": plan["peak_rss_mib"], "rss_ratio": plan["peak_rss_mib"] / module["peak_rss_mib"]})
    print_table(table, list(table[0]))
    if args.out:
        write_json(table, args.out, cases=rows, alternating=list(alternating.values()))


if __name__ == "__main__":
    main()
