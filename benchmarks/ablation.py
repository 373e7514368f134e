"""Ablation of the text-to-image training methods at equal kimg (issue 21): plain conditional,
+ GAN-CLS, + GAN-INT, + conditioning augmentation, and all three, each arm trained from the
same seed on the same data for the same number of images, then judged by the attribute
classifier: the fraction of generated images whose predicted attribute is the one asked for
(labels drawn from the data set's, so that they follow its distribution).

The judge should be a classifier trained on held-out images the generators never saw
(``stylegan-anime classifier``); without ``--classifier`` one is trained here on the data
(toy runs only; its held-out accuracy is printed beside the table).

    # toy (seconds per arm): a small synthetic set is drawn when --data is not given
    python -m benchmarks.ablation --toy
    # the real ablation (hours; run alone on the machine)
    python -m benchmarks.ablation --data synth64.zip --classifier judge.safetensors --kimg 50 \\
        --cbase 2048 --cmax 128 --z-dim 128 --w-dim 128 --map 2 --batch 8 --num 500 --runs /work/ablation
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import print_table, write_json

ARMS = {
    "plain": {},
    "gan-cls": {"gan_cls": 0.5},
    "gan-int": {"gan_int": 1.0},
    "cond-aug": {"cond_aug": True},
    "all": {"gan_cls": 0.5, "gan_int": 1.0, "cond_aug": True},
}
CATEGORICAL = ("hair_color", "eye_color", "hair_style", "mouth")


@dataclass(frozen=True)
class ArmSetup:
    """What every arm shares: network widths, batch, kimg, seed."""

    kimg: float
    batch: int
    cbase: int
    cmax: int
    z_dim: int
    w_dim: int
    map_layers: int
    seed: int = 0


def arm_config(data: str, resolution: int, c_dim: int, setup: ArmSetup, options: dict):
    """The TrainingConfig of one arm: the shared setup plus the arm's method options."""
    from stylegan_anime.networks import DiscriminatorConfig, GeneratorConfig
    from stylegan_anime.training.config import TrainingConfig
    g = GeneratorConfig(img_resolution=resolution, z_dim=setup.z_dim, w_dim=setup.w_dim, c_dim=c_dim,
                        mapping_layers=setup.map_layers, channel_base=setup.cbase, channel_max=setup.cmax)
    d = DiscriminatorConfig(img_resolution=resolution, c_dim=c_dim, channel_base=setup.cbase, channel_max=setup.cmax,
                            mapping_layers=min(setup.map_layers, 2))
    return TrainingConfig(data=data, g=g, d=d, batch=setup.batch, kimg=setup.kimg, snap_kimg=setup.kimg,
                          tick_kimg=setup.kimg, augment="off", grid_seeds=4, seed=setup.seed, device="cpu",
                          **options)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float → uint8 [N, 3, R, R], as a saved PNG would hold them."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def judge_arm(G, judge, labels: torch.Tensor, num: int, seed: int = 0, batch: int = 16) -> dict[str, float]:
    """Per attribute: the share of ``num`` generated images (seeds seed.., labels drawn from
    ``labels`` [M, c_dim]) whose attribute the judge reads as the one asked for."""
    from stylegan_anime.latents import seeds_to_z
    from stylegan_anime.metrics.train_classifier import accuracy
    asked = labels[torch.from_numpy(np.random.default_rng(seed).integers(0, len(labels), num))]
    images = []
    for start in range(0, num, batch):
        stop = min(start + batch, num)
        z = seeds_to_z(list(range(seed + start, seed + stop)), G.z_dim)
        images.append(to_uint8(G(z, asked[start:stop], noise_mode="const")))
    return accuracy(judge, torch.cat(images), asked)


def summarise(name: str, acc: dict[str, float], seconds: float) -> dict:
    cats = [acc[g] for g in CATEGORICAL if g in acc]
    return {"arm": name, "mean": float(np.mean(list(acc.values()))), "worst_categorical": min(cats) if cats else None,
            **acc, "train_s": seconds}


def build_judge(ds, path: str | None, steps: int):
    """The classifier at ``path``, or (toy runs) one trained here; with its held-out accuracy."""
    from stylegan_anime.metrics.classifier import load_classifier
    from stylegan_anime.metrics.train_classifier import (ClassifierTraining, accuracy, load_images, split,
                                                         train_classifier)
    if path:
        return load_classifier(path), None
    opts = ClassifierTraining(steps=steps, holdout=0.2)
    judge = train_classifier(ds, opts=opts, progress=False)
    _, held = split(len(ds.image_names), opts.holdout, opts.seed)
    images, labels = load_images(ds, held, progress=False)
    return judge, accuracy(judge, images, labels)


def toy_dataset(folder: Path, n: int, resolution: int) -> Path:
    from stylegan_anime.data.synthetic import write_synthetic_dataset
    return write_synthetic_dataset(folder / "synthetic", n, resolution, progress=False)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="labelled data set (default with --toy: a small synthetic one drawn here)")
    p.add_argument("--classifier", help="attribute classifier (the judge); default: train one on the data")
    p.add_argument("--toy", action="store_true", help="tiny networks, a few steps per arm (shows the harness works)")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--kimg", type=float, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--cbase", type=int, default=None)
    p.add_argument("--cmax", type=int, default=None)
    p.add_argument("--z-dim", type=int, default=None)
    p.add_argument("--w-dim", type=int, default=None)
    p.add_argument("--map", type=int, default=None)
    p.add_argument("--num", type=int, default=None, help="generated images judged per arm")
    p.add_argument("--classifier-steps", type=int, default=300)
    p.add_argument("--runs", default=None, help="keep the arms' run folders here (default: a temporary folder)")
    p.add_argument("--json", default="benchmarks/results/ablation.json")
    args = p.parse_args(argv)
    # Toy: 16² images, 16-wide networks, 32 images per arm; otherwise the small default model's widths.
    small = dict(kimg=0.032, batch=4, cbase=128, cmax=16, z_dim=16, w_dim=16, map_layers=2, num=64) if args.toy \
        else dict(kimg=50.0, batch=8, cbase=2048, cmax=128, z_dim=128, w_dim=128, map_layers=2, num=500)
    given = {"kimg": args.kimg, "batch": args.batch, "cbase": args.cbase, "cmax": args.cmax, "z_dim": args.z_dim,
             "w_dim": args.w_dim, "map_layers": args.map, "num": args.num}
    chosen = {k: (v if given[k] is None else given[k]) for k, v in small.items()}
    num = chosen.pop("num")
    setup = ArmSetup(**chosen)
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    from stylegan_anime.metrics.evaluate import data_labels
    from stylegan_anime.training.dataset import ImageDataset
    from stylegan_anime.training.loop import train
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None and not args.toy:
            p.error("give --data (or --toy)")
        data = args.data or str(toy_dataset(Path(tmp), 256, 16))
        ds = ImageDataset(data)
        if ds.c_dim == 0:
            p.error(f"{data} has no labels: the ablation compares conditional training methods")
        judge, judge_acc = build_judge(ds, args.classifier, args.classifier_steps)
        labels = data_labels(ds)
        runs = Path(args.runs or tmp) / "runs"
        rows = []
        for name in args.arms:
            cfg = arm_config(data, ds.resolution, ds.c_dim, setup, ARMS[name])
            t = time.perf_counter()
            trainer = train(cfg, runs / name, dataset=ds, progress_bar=False)
            seconds = time.perf_counter() - t
            rows.append(summarise(name, judge_arm(trainer.G_ema, judge, labels, num), seconds))
    groups = [g.name for g in judge.groups]
    print(f"label accuracy judged by the attribute classifier, {num} images per arm, {setup.kimg} kimg each")
    if judge_acc is not None:
        print("judge trained here; its held-out accuracy: "
              + ", ".join(f"{k} {v:.2f}" for k, v in judge_acc.items()))
    print_table(rows, ["arm", "mean", "worst_categorical", *groups, "train_s"])
    write_json(rows, args.json, setup=dataclasses.asdict(setup), num=num, judge=args.classifier or "trained here",
               judge_heldout=judge_acc, arms={k: ARMS[k] for k in args.arms})


if __name__ == "__main__":
    main()
