"""Training throughput: kimg/s and peak RSS of one training iteration (D step + G step,
no regularisation: the lazy R1 / path-length passes are measured separately as
``reg_sec``), CPU, batch 4, float32, channel_base 16384 (rosinality's channel multiplier 1),
with the native and the reference ops.

With ``--rosinality DIR`` (a checkout you made yourself; nothing of it is part of this
project) the same step of rosinality's ``train.py`` (non-saturating loss, style mixing 0.9,
no regularisation) runs side by side on its own CPU code paths, with and without the
``GLIBC_TUNABLES`` that keep freed memory (DESIGN.md), compared at its better figure.
Every case runs in a fresh process; contenders alternate within each repeat. A step's time is
the median after two warm-up steps, for every contender: the first two steps still fault
their memory in (100 000 page faults in our second step, none from the third on).

    python -m benchmarks.train [--res 64 256] [--repeats 2] [--rosinality /work/ext/rosinality]
"""
from __future__ import annotations

import argparse
import json
import sys
import types

import torch

from benchmarks.common import peak_rss_mib, print_table, run_case_in_subprocess, time_calls, write_json

KEEP_MEMORY = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
BATCH = 4
CHANNEL_BASE = 16384


def _use_reference_ops() -> None:
    """Route every layer through the plain-PyTorch reference ops (whatever the switch says)."""
    from stylegan_anime.ops import kernels
    kernels.upfirdn2d = kernels.upfirdn2d_ref
    kernels.bias_act = kernels.bias_act_ref


class _RandomImages(torch.utils.data.Dataset):
    """n random uint8 images [3, res, res], with c_dim random 0/1 labels each (none for 0)."""

    def __init__(self, res: int, n: int = 64, c_dim: int = 0):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, [n, 3, res, res], dtype=torch.uint8, generator=gen)
        self.c = torch.randint(0, 2, [n, c_dim], generator=gen).float()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.c[i]


def make_trainer(res: int):
    """The benchmarked trainer: batch 4, channel_base 16384, no augmentation, with the lazy
    regularisers pushed out of reach (``trainer.step()`` is then one D step + one G step)."""
    from stylegan_anime.networks import DiscriminatorConfig, GeneratorConfig
    from stylegan_anime.training.config import TrainingConfig
    from stylegan_anime.training.loop import Trainer
    g = GeneratorConfig(img_resolution=res, channel_base=CHANNEL_BASE)
    d = DiscriminatorConfig(img_resolution=res, channel_base=CHANNEL_BASE)
    cfg = TrainingConfig(g=g, d=d, batch=BATCH, augment="off", device="cpu")
    trainer = Trainer(cfg, "/tmp/benchmark-train-unused", _RandomImages(res), progress_bar=False)
    trainer.cfg.pl_interval = trainer.cfg.r1_interval = 10 ** 9
    trainer.progress.step = 1
    return trainer


def make_default_trainer(batch: int = 16, label_guide: str | None = None):
    """The trainer of the bundled default's run: 64², 26 labels, channel base 2048 / max 128,
    z = w = 256, 4 mapping layers, batch 16, no augmentation; every step runs both lazy
    regularisers' share as the real run does (R1 every 16, path length every 4 steps)."""
    from stylegan_anime.networks import DiscriminatorConfig, GeneratorConfig
    from stylegan_anime.training.config import TrainingConfig
    from stylegan_anime.training.loop import Trainer
    g = GeneratorConfig(img_resolution=64, z_dim=256, w_dim=256, c_dim=26, mapping_layers=4, channel_base=2048,
                        channel_max=128, num_fp16_res=0, conv_clamp=None)
    d = DiscriminatorConfig(img_resolution=64, c_dim=26, channel_base=2048, channel_max=128, num_fp16_res=0,
                            conv_clamp=None)
    cfg = TrainingConfig(g=g, d=d, batch=batch, augment="off", device="cpu", label_guide=label_guide)
    return Trainer(cfg, "/tmp/benchmark-train-unused", _RandomImages(64, c_dim=26), progress_bar=False)


def run_ours(case: dict) -> dict:
    if case["ops"] == "ref":
        _use_reference_ops()
    trainer = make_trainer(case["res"])
    sec = time_calls(trainer.step, warmup=2, min_seconds=case.get("min_seconds", 5.0), min_calls=case.get("min_calls", 2))
    trainer.cfg.pl_interval = trainer.cfg.r1_interval = 1
    reg = time_calls(trainer.step, warmup=0, min_seconds=0.0, min_calls=1) - sec
    return {**case, "sec_per_step": sec, "kimg_per_s": BATCH / sec / 1000, "reg_sec": reg,
            "peak_rss_mib": peak_rss_mib()}


def run_rosinality(case: dict) -> dict:
    import torch.utils.cpp_extension as cpp
    import torch.nn.functional as F
    real_load = cpp.load
    cpp.load = lambda *a, **k: types.SimpleNamespace()  # its CPU paths never touch the extension
    try:
        sys.path.insert(0, case["dir"])
        import model
    finally:
        cpp.load = real_load
    torch.manual_seed(0)
    res = case["res"]
    G, D = model.Generator(res, 512, 8, channel_multiplier=1), model.Discriminator(res, channel_multiplier=1)
    g_opt = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99))
    real = torch.rand([BATCH, 3, res, res]) * 2 - 1

    def noise():  # style mixing with p 0.9, as its train.py does
        return list(torch.randn(2, BATCH, 512).unbind(0)) if torch.rand([]) < 0.9 else [torch.randn(BATCH, 512)]

    def step():
        G.requires_grad_(False), D.requires_grad_(True)
        fake, _ = G(noise())
        d_loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        D.zero_grad()
        d_loss.backward()
        d_opt.step()
        G.requires_grad_(True), D.requires_grad_(False)
        fake, _ = G(noise())
        g_loss = F.softplus(-D(fake)).mean()
        G.zero_grad()
        g_loss.backward()
        g_opt.step()

    sec = time_calls(step, warmup=2, min_seconds=case.get("min_seconds", 5.0), min_calls=case.get("min_calls", 2))
    return {**case, "sec_per_step": sec, "kimg_per_s": BATCH / sec / 1000, "peak_rss_mib": peak_rss_mib()}


def contenders(res: int, ops: list[str], rosinality: str | None, min_seconds: float) -> list[tuple[dict, dict]]:
    out = [({"impl": "ours", "ops": o, "res": res, "min_seconds": min_seconds}, {"STYLEGAN_ANIME_OPS": o})
           for o in ops]
    if rosinality:
        for env in ({}, {"GLIBC_TUNABLES": KEEP_MEMORY}):
            out.append(({"impl": "rosinality", "ops": "its own", "res": res, "dir": rosinality,
                         "keep_memory": bool(env), "min_seconds": min_seconds}, env))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rosinality", default=None, help="a rosinality/stylegan2-pytorch checkout (optional)")
    ap.add_argument("--ops", nargs="+", default=["native", "ref"], help="our contenders")
    ap.add_argument("--min-seconds", type=float, default=5.0, help="time at least this long per case")
    ap.add_argument("--out", default="benchmarks/results/train.json")
    args = ap.parse_args()
    if args.case:
        case = json.loads(args.case)
        print(json.dumps(run_rosinality(case) if case["impl"] == "rosinality" else run_ours(case)))
        return
    best: dict[tuple, dict] = {}
    for _ in range(args.repeats):
        for res in args.res:
            for case, env in contenders(res, args.ops, args.rosinality, args.min_seconds):
                row = run_case_in_subprocess("benchmarks.train", case, env)
                key = (row["impl"], row["ops"], row["res"])  # a port's better figure over its environments
                if key not in best or row["sec_per_step"] < best[key]["sec_per_step"]:
                    best[key] = row
    rows = list(best.values())
    for row in rows:
        ros = best.get(("rosinality", "its own", row["res"]))
        row["vs_rosinality"] = ros["sec_per_step"] / row["sec_per_step"] if ros else None
    print_table(rows, ["impl", "ops", "res", "sec_per_step", "kimg_per_s", "reg_sec", "peak_rss_mib",
                       "vs_rosinality"])
    write_json(rows, args.out, batch=BATCH, channel_base=CHANNEL_BASE, torch=torch.__version__,
               threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
