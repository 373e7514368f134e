"""Native vs reference upfirdn2d, bias_act and to_rgb on the CPU, over the shapes a 512² config-F
generator runs them on (float32). The two paths alternate within one process, each case
timed several times, and the best time of each is kept (the machine's speed drifts).

With ``--conv``, the same for the generator's 3×3 stride-1 convolutions instead: oneDNN's direct
convolution against NNPACK's Winograd and our F(4×4, 3×3) (``networks/winograd.py``), forwards and
(F(4×4, 3×3)) forwards + backwards, with the rules' choices per shape. A 64² training run's layers:
``--conv --batch 4 --max-res 64 --channel-base 16384``.

    python -m benchmarks.ops [--conv [--channel-base 32768]] [--batch 1] [--max-res 512] [--repeats 3] [--threads N]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from benchmarks.common import print_table, time_calls, write_json
import torch.nn.functional as F

from stylegan_anime.ops import kernels, native_build, winograd_op
from stylegan_anime.ops.to_rgb import to_rgb
from stylegan_anime.networks import winograd


def channels(res: int) -> int:
    return min(32768 // res, 512)


def cases(batch: int, max_res: int) -> list[dict]:
    """(name, shape, call) for every op call a synthesis block at each resolution makes."""
    f = kernels.setup_filter([1, 3, 3, 1])
    out = []
    res = 8
    while res <= max_res:
        c, h = channels(res), res // 2
        # The upsampling conv's transposed conv leaves [N, C, 2h+1, 2h+1]; the FIR filter finishes it.
        out.append(dict(op="upfirdn2d", what="up-conv filter", res=res, shape=[batch, c, 2 * h + 1, 2 * h + 1],
                        call=lambda x: kernels.upfirdn2d(x, f, padding=1, gain=4)))
        out.append(dict(op="upfirdn2d", what="rgb upsample", res=res, shape=[batch, 3, h, h],
                        call=lambda x: kernels.upsample2d(x, f)))
        out.append(dict(op="upfirdn2d", what="downsample", res=res, shape=[batch, c, res, res],
                        call=lambda x: kernels.downsample2d(x, f)))
        b = torch.randn(c)
        out.append(dict(op="bias_act", what="lrelu+clamp", res=res, shape=[batch, c, res, res],
                        call=lambda x, b=b: kernels.bias_act(x, b, act="lrelu", gain=math.sqrt(2), clamp=256)))
        w, rgb_bias = torch.randn(batch, 3, c), torch.randn(3)
        out.append(dict(op="to_rgb", what="toRGB", res=res, shape=[batch, c, res, res],
                        call=lambda x, w=w, b=rgb_bias: to_rgb(x, w, b, clamp=256)))
        res *= 2
    return out


def cpu_time_calls(fn, min_seconds: float) -> float:
    """Median CPU seconds of this process per call: on a shared machine this counts only our own
    work, where wall time counts every other process's too (meaningful with one torch thread)."""
    fn()
    times: list[float] = []
    start = time.process_time()
    while len(times) < 3 or time.process_time() - start < min_seconds:
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return sorted(times)[len(times) // 2]


def run(batch: int, max_res: int, repeats: int, min_seconds: float, clock: str = "wall") -> list[dict]:
    timer = cpu_time_calls if clock == "cpu" else (lambda fn, min_seconds: time_calls(fn, min_seconds=min_seconds))
    rows = []
    for case in cases(batch, max_res):
        x = torch.randn(case["shape"])
        best = {"ref": math.inf, "native": math.inf}
        with torch.inference_mode():
            for _ in range(repeats):
                for mode in best:
                    with native_build.use_ops(mode):
                        best[mode] = min(best[mode], timer(lambda: case["call"](x), min_seconds))
        rows.append({"op": case["op"], "what": case["what"], "res": case["res"],
                     "shape": "x".join(map(str, case["shape"])), "ref_ms": best["ref"] * 1e3,
                     "native_ms": best["native"] * 1e3, "speedup": best["ref"] / best["native"]})
    return rows


def run_conv(batch: int, max_res: int, repeats: int, min_seconds: float, channel_base: int) -> list[dict]:
    """Each resolution's 3×3 conv (C → C, C = min(channel_base / res, 512)): forwards of the direct
    convolution, NNPACK's Winograd (inference) and our F(4×4, 3×3), and forwards + backwards
    (input and weight gradients: training) of the direct convolution and F(4×4, 3×3)."""
    rows = []
    res = 8
    while res <= max_res:
        c = min(channel_base // res, 512)
        x, w = torch.randn(batch, c, res, res), torch.randn(c, c, 3, 3) / math.sqrt(9 * c)
        xg, wg, dy = x.clone().requires_grad_(True), w.clone().requires_grad_(True), torch.randn(batch, c, res, res)

        def fwd_bwd(conv):
            return lambda: torch.autograd.grad(conv(xg, wg), (xg, wg), dy)

        calls = {"direct": lambda: F.conv2d(x, w, padding=1), "nnpack": lambda: winograd.nnpack_conv3x3(x, w),
                 "f43": lambda: winograd_op.conv3x3(x, w),
                 "direct_fb": fwd_bwd(lambda a, b: F.conv2d(a, b, padding=1)), "f43_fb": fwd_bwd(winograd_op.conv3x3)}
        best = {k: math.inf for k in calls}
        for _ in range(repeats):
            for k, fn in calls.items():
                with torch.inference_mode(not k.endswith("_fb")):
                    best[k] = min(best[k], time_calls(fn, min_seconds=min_seconds))
        ref = F.conv2d(x.double(), w.double(), padding=1)
        err = {k: ((calls[k]().double() - ref).abs().max() / ref.abs().max()).item() for k in ("nnpack", "f43")}
        inference = "nnpack" if winograd.usable(x, 3, 1, c) else "direct"
        rows.append({"res": res, "shape": f"{batch}x{c}x{res}x{res}", "direct_ms": best["direct"] * 1e3,
                     "nnpack_x": best["direct"] / best["nnpack"], "f43_x": best["direct"] / best["f43"],
                     "fb_direct_ms": best["direct_fb"] * 1e3, "fb_f43_x": best["direct_fb"] / best["f43_fb"],
                     "err_nnpack": err["nnpack"], "err_f43": err["f43"], "inference": inference,
                     "training": "f43" if winograd.f43_usable(xg, w.shape, 1) else "direct"})
        res *= 2
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--max-res", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: this process's CPU time, robust on a busy machine (forces --threads 1)")
    ap.add_argument("--conv", action="store_true", help="time the 3x3 convolutions (direct vs Winograd) instead")
    ap.add_argument("--channel-base", type=int, default=32768, help="--conv: channels = min(base / res, 512)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/ops.json (conv.json with --conv)")
    args = ap.parse_args()
    if args.clock == "cpu":
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.conv:
        if not winograd.nnpack_available():
            raise SystemExit("benchmarks.ops --conv: this torch has no usable NNPACK")
        native_build.load("winograd", "cpu")
        rows = run_conv(args.batch, args.max_res, args.repeats, args.min_seconds, args.channel_base)
        print_table(rows, ["res", "shape", "direct_ms", "nnpack_x", "f43_x", "fb_direct_ms", "fb_f43_x",
                           "err_nnpack", "err_f43", "inference", "training"])
        print("\n*_x: speed-up over the direct convolution (forward; fb_: forward + input and weight gradients)")
        write_json(rows, args.out or "benchmarks/results/conv.json", torch=torch.__version__,
                   threads=torch.get_num_threads(), batch=args.batch)
        return
    with native_build.use_ops("native"):  # build first, so that no build lands inside a timing
        for op in native_build.OPS:
            native_build.load(op, "cpu")
    rows = run(args.batch, args.max_res, args.repeats, args.min_seconds, args.clock)
    print_table(rows, ["op", "what", "res", "shape", "ref_ms", "native_ms", "speedup"])
    by_op = {op: sum(r["ref_ms"] for r in rows if r["op"] == op) / sum(r["native_ms"] for r in rows if r["op"] == op)
             for op in dict.fromkeys(r["op"] for r in rows)}
    print("\ntotal-time speedup (ref / native): " + ", ".join(f"{op} {v:.2f}x" for op, v in by_op.items()))
    write_json(rows, args.out or "benchmarks/results/ops.json", torch=torch.__version__, threads=torch.get_num_threads(), batch=args.batch,
               clock=args.clock, total_speedup=by_op)


if __name__ == "__main__":
    main()
