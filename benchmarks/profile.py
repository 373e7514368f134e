"""Where the time goes: a profile by op of one 512² config-F generator forward (no gradients, the
inference path) or of one 64² training step (D step + G step, as ``benchmarks.train`` times it),
after two warm-up calls, with the native ops.

Prints the time per kind of work (oneDNN and NNPACK convolutions, the Winograd products and
transforms, upfirdn2d, bias_act, ...) and the most expensive (op, input shapes) rows, and writes
both as JSON. Times are PyTorch profiler self-CPU times of the calling thread (an op's own time,
its children excluded), so the rows add up to the total.

    python -m benchmarks.profile --job generate [--res 512] [--batch 1] [--module-forward]
    python -m benchmarks.profile --job train [--res 64]
    python -m benchmarks.profile --job train-default [--label-guide guide.safetensors]
"""
from __future__ import annotations

import argparse
import collections

import torch
from torch.profiler import ProfilerActivity, profile


from benchmarks.common import print_table, write_json

# Kinds of work, by op name (first match wins); everything else is "other".
KINDS = (
    ("conv: NNPACK Winograd F(6x6,3x3)", ("aten::_nnpack_spatial_convolution",)),
    ("conv: oneDNN, direct and transposed (and gradients)",
     ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution")),
    ("conv: fused Winograd F(4x4,3x3) (native: transforms and products, band by band; toRGB after it)",
     ("sa::winograd_conv", "sa::winograd_conv_rgb", "sa::winograd_up_conv")),
    ("conv: Winograd products (BLAS bmm; F(4x4,3x3) and the up-conv's)", ("aten::bmm",)),
    ("conv: Winograd transforms (native winograd)",
     ("_Linear", "_LinearBackward", "sa::winograd_up_input", "sa::winograd_up_output", "sa::winograd_up_planes")),
    ("layer epilogue (native: blur, scale, bias, noise, lrelu, clamp)", ("sa::layer_epilogue",)),
    ("upfirdn2d (native)", ("Upfirdn2d", "Upfirdn2dBackward", "Upfirdn2dGrad")),
    ("bias_act (native)", ("BiasAct", "BiasActGrad", "BiasActBackward")),
    ("toRGB (native)", ("sa::to_rgb",)),
    ("matmul (mapping, affine; toRGB without the native op)", ("aten::mm", "aten::addmm", "aten::baddbmm", "aten::bmm_")),
    ("optimizer (fused Adam)", ("aten::_fused_adam_",)),
)


CONV_OPS = KINDS[1][1]
FIR = "FIR filters as oneDNN depthwise convs (inference path)"


def kind_of(op: str, shapes: list) -> str:
    """The kind of work of ``op`` called on tensors of ``shapes``."""
    if op in CONV_OPS and len(shapes) > 1 and len(shapes[1]) == 4 and shapes[1][1] == 1:
        return FIR  # weight [C, 1, kh, kw]: one filter per channel
    for kind, names in KINDS:
        if op in names:
            return kind
    return "other (elementwise, copies, reductions)"


def profile_call(fn, warmup: int = 2):
    for _ in range(warmup):
        fn()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    return prof


def summarise(prof, top: int) -> tuple[list[dict], list[dict]]:
    """(kinds, rows): self-CPU milliseconds per kind of work and per (op, input shapes)."""
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    per_kind: dict[str, float] = collections.defaultdict(float)
    for e in events:
        per_kind[kind_of(e.key, e.input_shapes)] += e.self_cpu_time_total / 1e3
    kinds = [{"kind": k, "ms": ms, "share": ms / total} for k, ms in sorted(per_kind.items(), key=lambda kv: -kv[1])]
    kinds.append({"kind": "total", "ms": total, "share": 1.0})
    events.sort(key=lambda e: -e.self_cpu_time_total)
    rows = [{"op": e.key, "calls": e.count, "ms": e.self_cpu_time_total / 1e3,
             "share": e.self_cpu_time_total / 1e3 / total, "shapes": str(e.input_shapes)[:90]} for e in events[:top]]
    return kinds, rows


def job_call(job: str, res: int, batch: int, label_guide: str | None = None, module_forward: bool = False):
    if job == "train":
        from benchmarks.train import make_trainer
        return make_trainer(res).step
    if job == "train-default":
        from benchmarks.train import make_default_trainer
        trainer = make_default_trainer(label_guide=label_guide)

        def sixteen_steps():  # one full cycle of the lazy regularisers (R1 every 16, path length every 4)
            for _ in range(16):
                trainer.step()
        return sixteen_steps
    from benchmarks.compare_ports import build_ours
    G = build_ours(res)
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0))
    if module_forward:
        def forward():
            with torch.no_grad():
                return G(z)
        return forward
    plan = G.plan("cpu", batch)  # as the generation API runs it
    return lambda: plan.generate(z)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", choices=["generate", "train", "train-default"], default="generate",
                    help="train-default: 16 steps of the bundled default's run (64², batch 16, 26 labels)")
    ap.add_argument("--label-guide", default=None, help="train-default: with this label-guide classifier")
    ap.add_argument("--res", type=int, default=None, help="default 512 (generate) or 64 (train)")
    ap.add_argument("--batch", type=int, default=1, help="generate: images per forward (train: always 4)")
    ap.add_argument("--module-forward", action="store_true",
                    help="generate: profile G(z), which derives its filters every call (default: an inference "
                         "plan, as the generation API runs)")
    ap.add_argument("--top", type=int, default=25, help="how many (op, shapes) rows to print")
    ap.add_argument("--out", default=None, help="default benchmarks/results/profile_<job>.json")
    args = ap.parse_args()
    res = args.res or (512 if args.job == "generate" else 64)
    kinds, rows = summarise(profile_call(job_call(args.job, res, args.batch, args.label_guide, args.module_forward)),
                            args.top)
    print(f"{args.job} at {res}², torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print_table(kinds, ["kind", "ms", "share"])
    print()
    print_table(rows, ["op", "calls", "ms", "share", "shapes"])
    write_json(rows, args.out or f"benchmarks/results/profile_{args.job}.json", kinds=kinds, job=args.job, res=res,
               batch={"generate": args.batch, "train": 4}.get(args.job, 16), torch=torch.__version__,
               threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
