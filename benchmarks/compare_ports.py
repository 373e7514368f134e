"""Our generator against the two public PyTorch ports of StyleGAN2, same weights, CPU.

The ports are NOT part of this project: point the script at checkouts you made yourself
(``git clone`` NVlabs/stylegan2-ada-pytorch and rosinality/stylegan2-pytorch). Their Python
modules are imported from there and run on their own CPU code paths; nothing of theirs is
compiled: ada's custom ops take their reference path on the CPU by themselves, and
rosinality's ``op`` package, which compiles CUDA extensions at import, is imported with
``torch.utils.cpp_extension.load`` stubbed out, so that its own CPU fallbacks run.

Every contender runs in its own fresh process, built once; then they take turns, one
forward each per round (the machine's speed drifts, and other jobs share it), and the table
reports medians: images/s (wall clock) and CPU seconds per image. A process's peak RSS varies
from one launch to the next (ada's by up to 150 MiB at 256², one image: what its transient
allocations leave in glibc's heaps), so ``--rss-processes N`` also starts every contender N more
times, in turns, for a few forwards each, and the table adds the median and range of all its
processes' peaks. The ports run with
and without ``GLIBC_TUNABLES`` that keep freed memory (see DESIGN.md's performance notes);
they are compared at their better figure.

    python -m benchmarks.compare_ports --ada /work/ext/ada --rosinality /work/ext/rosinality \\
        [--res 512] [--batch 1 8] [--rounds 5] [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

from benchmarks.common import peak_rss_mib, print_table, run_case_in_subprocess, write_json

KEEP_MEMORY = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
CONTENDERS = [  # (name, environment)
    ("ours_ref", {"STYLEGAN_ANIME_OPS": "ref"}),
    ("ours_native", {"STYLEGAN_ANIME_OPS": "native"}),
    ("ours_plan", {"STYLEGAN_ANIME_OPS": "native"}),  # as the generation API runs it: an inference plan
    # the plan with no Winograd filters kept (the memory-lean setting)
    ("ours_lean_plan", {"STYLEGAN_ANIME_OPS": "native", "STYLEGAN_ANIME_WINOGRAD": "off"}),
    ("ada", {}),
    ("ada", {"GLIBC_TUNABLES": KEEP_MEMORY}),
    ("rosinality", {}),
    ("rosinality", {"GLIBC_TUNABLES": KEEP_MEMORY}),
]
BASELINE_CONTENDERS = [("ours_baseline", {}), ("ours_baseline_plan", {})]

# --------------------------------------------------------------------------- the same weights everywhere


def build_ours(res: int, seed: int = 0):
    """Config F at ``res`` with random weights, non-zero biases and noise strengths (fresh
    networks have zeros there, which would hide a wrong mapping), const noise."""
    from stylegan_anime.networks import Generator, GeneratorConfig
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(img_resolution=res)).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.copy_(torch.rand([], generator=gen) * 0.5 + 0.1)
        elif name.endswith("bias") and "affine" not in name:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return G


def build_ada(ada_dir: str, G):
    """ada's Generator with our state_dict (our names follow its layout)."""
    sys.path.insert(0, ada_dir)
    from training.networks import Generator as AdaGenerator
    cfg = G.cfg
    A = AdaGenerator(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution,
                     img_channels=cfg.img_channels,
                     mapping_kwargs=dict(num_layers=cfg.mapping_layers, lr_multiplier=cfg.mapping_lr_multiplier),
                     synthesis_kwargs=dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                           num_fp16_res=0, conv_clamp=None))
    missing, unexpected = A.load_state_dict(G.state_dict(), strict=False)
    if unexpected or any(not k.endswith("resample_filter") for k in missing):
        raise RuntimeError(f"ada state_dict mismatch: missing {missing}, unexpected {unexpected}")
    return A.eval().requires_grad_(False)


def _import_rosinality_model(ros_dir: str):
    import torch.utils.cpp_extension as cpp
    real_load = cpp.load
    cpp.load = lambda *a, **k: types.SimpleNamespace()  # its CPU paths never touch the extension
    try:
        sys.path.insert(0, ros_dir)
        import model
    finally:
        cpp.load = real_load
    return model


def rosinality_state_dict(G) -> dict[str, torch.Tensor]:
    """Our (ada-layout) weights under rosinality's names and shapes; the values carry over as
    they are (both scale weights at run time the same way)."""
    sd = G.state_dict()
    out = {}
    for i in range(G.cfg.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]

    def styled(dst: str, src: str) -> None:
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]

    def torgb(dst: str, src: str) -> None:
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)

    styled("conv1", "synthesis.b4.conv1")
    torgb("to_rgb1", "synthesis.b4.torgb")
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"][None, None]
    for k, res in enumerate(G.synthesis.block_resolutions[1:]):
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0")
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")
        torgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        out[f"noises.noise_{2 * k + 1}"] = sd[f"synthesis.b{res}.conv0.noise_const"][None, None]
        out[f"noises.noise_{2 * k + 2}"] = sd[f"synthesis.b{res}.conv1.noise_const"][None, None]
    return out


def build_rosinality(ros_dir: str, G):
    cfg = G.cfg
    if cfg.channel_base != 32768 or cfg.channel_max != 512:
        raise ValueError("rosinality's Generator has config F's channel counts only")
    model = _import_rosinality_model(ros_dir)
    R = model.Generator(cfg.img_resolution, cfg.w_dim, cfg.mapping_layers, channel_multiplier=2,
                        lr_mlp=cfg.mapping_lr_multiplier)
    missing, unexpected = R.load_state_dict(rosinality_state_dict(G), strict=False)
    if unexpected or any(not k.endswith("kernel") for k in missing):  # its FIR filters are buffers
        raise RuntimeError(f"rosinality state_dict mismatch: missing {missing}, unexpected {unexpected}")
    return R.eval().requires_grad_(False)


def forward_fn(name: str, case: dict, G):
    """A no-argument call producing images [N, 3, R, R] from fixed z (psi 1, const noise)."""
    z = torch.randn(case["batch"], G.z_dim, generator=torch.Generator().manual_seed(123))
    if name.endswith("_plan") or "_plan@" in name:
        if "@" in name:  # ours_plan@64: a plan whose passes may hold 64 MiB a tensor (``--pass-mib``)
            from stylegan_anime.inference import policy
            policy.PASS_BYTES = int(name.split("@")[1]) * 2 ** 20
        plan = G.plan("cpu", case["batch"])
        return lambda: plan.generate(z, noise_mode="const")
    if name.startswith("ours"):
        return lambda: G(z, noise_mode="const")  # ours_baseline: the same call in another checkout
    if name == "ada":
        A = build_ada(case["ada"], G)
        return lambda: A(z, None, noise_mode="const")
    if name == "rosinality":
        R = build_rosinality(case["rosinality"], G)
        return lambda: R([z], randomize_noise=False)[0]
    raise ValueError(name)


# --------------------------------------------------------------------------- cases


def run_case(case: dict) -> dict:
    G = build_ours(case["res"])
    if case["name"] == "check":
        with torch.inference_mode():
            ref = G(torch.randn(case["batch"], G.z_dim, generator=torch.Generator().manual_seed(123)),
                    noise_mode="const")
            ports = {n: forward_fn(n, case, G)() for n in ("ada", "rosinality")}
            diffs = {n: (img - ref).abs().max().item() for n, img in ports.items()}
            plan = G.plan("cpu", case["batch"])  # as the generation API runs it
            planned = plan.generate(torch.randn(case["batch"], G.z_dim, generator=torch.Generator().manual_seed(123)),
                                 noise_mode="const")
            diffs["ada_plan"] = (ports["ada"] - planned).abs().max().item()
        return {**case, **{f"max_abs_diff_{n}": d for n, d in diffs.items()}, "max_abs_ours": ref.abs().max().item()}
    raise ValueError(case["name"])


def serve(case: dict) -> None:
    """A contender process: build once, then time one forward per line read from stdin and
    answer with a JSON line (wall and CPU seconds), until stdin closes."""
    fn = forward_fn(case["name"], case, build_ours(case["res"]))
    with torch.inference_mode():
        fn()  # warm-up: first-call costs (and a native build, if any) stay out of the timing
        print(json.dumps({"ready": True}), flush=True)
        for _ in sys.stdin:
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                              "peak_rss_mib": peak_rss_mib()}), flush=True)


def start_contender(case: dict, env: dict[str, str]) -> subprocess.Popen:
    """``ours_baseline*`` run this script on another checkout of this project (its package, its native
    builds in ``case["baseline_extensions"]`` if given); the rest on this one."""
    root = Path(__file__).resolve().parent.parent
    if case["name"].startswith("ours_baseline"):
        root = Path(case["baseline"]).resolve()
        if case.get("baseline_extensions"):
            env = {**env, "TORCH_EXTENSIONS_DIR": case["baseline_extensions"]}
    env = {**env, "PYTHONPATH": str(root)}  # its stylegan_anime and benchmarks packages come first
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", json.dumps(case)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **env},
                            cwd=root)


def _ask(proc: subprocess.Popen, line: str | None) -> dict:
    if line is not None:
        proc.stdin.write(line)
        proc.stdin.flush()
    out = proc.stdout.readline()
    if not out:
        raise RuntimeError(f"contender {proc.args[-1]} died (exit {proc.wait()})")
    return json.loads(out)


def _turn(r: int, n: int) -> list[int]:
    """The order of n contenders in round r: each round starts one later, so that whoever runs right
    after a big process (and pays for the caches and memory it left behind, 2-3 % at 256² batch 8) changes."""
    return [(r + j) % n for j in range(n)]


def _label(case: dict) -> str:
    return f"{case['name']}{'+t' if case['tunables'] else ''}"


def round_robin(cases: list[tuple[dict, dict]], rounds: int) -> list[dict]:
    """Start every contender, then let them run one forward each in turn, ``rounds`` times, the order
    rotating by one each round: all of them see the same drift in the machine's speed. Rows carry
    median times."""
    procs = [start_contender(case, env) for case, env in cases]
    alive = [True] * len(procs)

    def ask(i: int, line: str | None) -> dict | None:
        """A contender that dies (say, killed for memory) drops out; the others go on."""
        if not alive[i]:
            return None
        try:
            return _ask(procs[i], line)
        except (RuntimeError, BrokenPipeError) as e:
            print(f"  dropped: {e}", flush=True)
            alive[i] = False
            return None

    try:
        for i in range(len(procs)):
            ask(i, None)
        samples: list[list[dict]] = [[] for _ in procs]
        for r in range(rounds):
            for i in _turn(r, len(procs)):
                got = ask(i, "go\n")
                if got is not None:
                    samples[i].append(got)
            times = [f"{_label(c)} {s[-1]['wall']:.2f}s"
                     for (c, _), s in zip(cases, samples) if s]
            print(f"  round {r + 1}/{rounds}: " + ", ".join(times), flush=True)
    finally:
        for p in procs:
            try:
                p.stdin.close()
            except BrokenPipeError:
                pass
            p.wait()
    rows = []
    for (case, _), s in zip(cases, samples):
        if not s:
            rows.append({**case, "died": True})
            continue
        wall, cpu = statistics.median(x["wall"] for x in s), statistics.median(x["cpu"] for x in s)
        rows.append({**case, "sec_per_batch": wall, "images_per_s": case["batch"] / wall,
                     "cpu_s_per_image": cpu / case["batch"], "peak_rss_mib": max(x["peak_rss_mib"] for x in s),
                     "rounds": len(s), "walls": [x["wall"] for x in s]})
    return rows


def rss_runs(cases: list[tuple[dict, dict]], processes: int, forwards: int = 3) -> list[list[float]]:
    """Peak RSS (MiB) of ``processes`` more fresh processes of each contender, started in turns, each
    building its network and running a warm-up and ``forwards`` forwards."""
    peaks: list[list[float]] = [[] for _ in cases]
    for p in range(processes):
        for i in _turn(p, len(cases)):
            proc = start_contender(*cases[i])
            try:
                _ask(proc, None)
                peaks[i].append(max(_ask(proc, "go\n")["peak_rss_mib"] for _ in range(forwards)))
            except (RuntimeError, BrokenPipeError) as e:
                print(f"  dropped: {e}", flush=True)
            finally:
                proc.stdin.close()
                proc.wait()
        print(f"  peak RSS, processes {p + 1}/{processes}: " + ", ".join(
            f"{_label(c)} {r[-1]:.0f}" for (c, _), r in zip(cases, peaks) if r),
            flush=True)
    return peaks


def add_rss_runs(rows: list[dict], peaks: list[list[float]]) -> None:
    """Each row's peak RSS over its timing process and the extra ones: median, min, max."""
    for row, more in zip(rows, peaks):
        if "peak_rss_mib" in row:
            runs = [row["peak_rss_mib"], *more]
            row.update(peak_rss_runs=runs, peak_rss_median=statistics.median(runs), peak_rss_min=min(runs),
                       peak_rss_max=max(runs))


def add_ratios(rows: list[dict]) -> None:
    """vs_best_port: images/s over the faster port's best (with or without tunables) at that
    size; cpu_vs_best_port: the same in CPU time per image (less sensitive to other load);
    rss_vs_ada: peak RSS over ada's in its default setting (no tunables), of the timing processes;
    rss_median_vs_ada: the same of the medians over all processes (``--rss-processes``); vs_baseline_plan: images/s
    over the baseline checkout's plan (``--baseline``), as the ratio of the median times and as
    vs_baseline_paired, the median of the rounds' own ratios: two contenders that take turns see the same
    drift within a round, while the medians of 9 rounds on a shared machine may come from different ones."""
    for r in rows:
        same = [p for p in rows if p["res"] == r["res"] and p["batch"] == r["batch"] and "images_per_s" in p]
        ada = [p for p in same if p["name"] == "ada" and not p["tunables"]]
        base = [p for p in same if p["name"] == "ours_baseline_plan"]
        if ada and "peak_rss_mib" in r:
            r["rss_vs_ada"] = r["peak_rss_mib"] / ada[0]["peak_rss_mib"]
        if ada and "peak_rss_median" in r and "peak_rss_median" in ada[0]:
            r["rss_median_vs_ada"] = r["peak_rss_median"] / ada[0]["peak_rss_median"]
        if base and "images_per_s" in r:
            r["vs_baseline_plan"] = r["images_per_s"] / base[0]["images_per_s"]
            r["vs_baseline_paired"] = statistics.median(b / o for o, b in zip(r["walls"], base[0]["walls"]))
        ports = [p for p in rows if p["name"] in ("ada", "rosinality") and p["res"] == r["res"]
                 and p["batch"] == r["batch"] and "images_per_s" in p]
        if ports and "images_per_s" in r:
            r["vs_best_port"] = r["images_per_s"] / max(p["images_per_s"] for p in ports)
            r["cpu_vs_best_port"] = min(p["cpu_s_per_image"] for p in ports) / r["cpu_s_per_image"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--ada", required=False, help="checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--rosinality", required=False, help="checkout of rosinality/stylegan2-pytorch")
    ap.add_argument("--res", type=int, nargs="+", default=[512])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=5, help="forwards per contender, taken in turns")
    ap.add_argument("--only", nargs="+", help="contender names to run (default: all)")
    ap.add_argument("--baseline",
                    help="another checkout of this project (say, main) to run as ours_baseline "
                         "and ours_baseline_plan")
    ap.add_argument("--baseline-extensions", help="TORCH_EXTENSIONS_DIR for the baseline checkout's native builds")
    ap.add_argument("--pass-mib", type=int, nargs="+", default=[],
                    help="also run plans with these pass budgets (MiB a tensor) as ours_plan@MiB")
    ap.add_argument("--rss-processes", type=int, default=0,
                    help="also start each contender this many more times for its peak RSS (median and range)")
    ap.add_argument("--check", action="store_true", help="first check that all three agree on the same weights")
    ap.add_argument("--out", default="benchmarks/results/compare_ports.json")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    if args.serve:
        serve(json.loads(args.serve))
        return
    if not (args.ada and args.rosinality):
        ap.error("--ada and --rosinality checkouts are required")
    dirs = {"ada": args.ada, "rosinality": args.rosinality, "baseline": args.baseline,
            "baseline_extensions": args.baseline_extensions}
    checks = []
    if args.check:
        for res in args.res:
            row = run_case_in_subprocess("benchmarks.compare_ports", {"name": "check", "res": res, "batch": 2, **dirs})
            checks.append(row)
            scale = row["max_abs_ours"]
            print(f"{res}²: max |ours - ada| = {row['max_abs_diff_ada']:.2e} ({row['max_abs_diff_ada'] / scale:.1e} "
                  f"of max |ours| = {scale:.2f}), max |ours - rosinality| = {row['max_abs_diff_rosinality']:.2e} "
                  f"({row['max_abs_diff_rosinality'] / scale:.1e}); inference plan: max |ours - ada| = "
                  f"{row['max_abs_diff_ada_plan']:.2e}")
    contenders = [c for c in CONTENDERS if not args.only or c[0] in args.only]
    contenders += [(f"ours_plan@{mib}", {"STYLEGAN_ANIME_OPS": "native"}) for mib in args.pass_mib]
    if args.baseline:  # the other checkout as plain forwards and as the generate API runs them
        contenders[:0] = [c for c in BASELINE_CONTENDERS if not args.only or c[0] in args.only]
    rows = []
    for res in args.res:
        for batch in args.batch:
            print(f"{res}² batch {batch}:")
            cases = [({"name": name, "res": res, "batch": batch, "tunables": "GLIBC_TUNABLES" in env, **dirs}, env)
                     for name, env in contenders]
            timed = round_robin(cases, args.rounds)
            if args.rss_processes:
                add_rss_runs(timed, rss_runs(cases, args.rss_processes))
            rows += [{k: v for k, v in r.items() if k not in dirs} for r in timed]
    add_ratios(rows)
    print_table(rows, ["name", "res", "batch", "tunables", "images_per_s", "cpu_s_per_image", "peak_rss_mib",
                       "rss_vs_ada", "peak_rss_median", "peak_rss_min", "peak_rss_max", "rss_median_vs_ada",
                       "vs_baseline_plan", "vs_baseline_paired", "vs_best_port", "cpu_vs_best_port", "died"])
    write_json(rows, args.out, checks=checks, torch=torch.__version__, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
