"""`stylegan-anime classifier`: train the attribute classifier (a feature network for FID, and label
predictions for editing) on a labelled data set; report held-out accuracy per attribute."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..metrics import ClassifierConfig, ClassifierTraining, save_classifier, train_classifier
from ..metrics.train_classifier import accuracy, load_images, majority_accuracy, split
from ..training.dataset import ImageDataset
from ..io.outputs import check_outputs
from .args import add_force_option, float_arg, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("classifier", help="train the attribute classifier on a labelled data set")
    p.add_argument("--data", required=True, help="labelled data set (e.g. from `dataset --synthetic N`)")
    p.add_argument("-o", "--out", required=True, help="output .safetensors (a .json config is written beside it)")
    p.add_argument("--steps", type=int_arg("--steps", 1), default=2000)
    p.add_argument("--batch", type=int_arg("--batch", 1), default=32)
    p.add_argument("--lr", type=float_arg("--lr"), default=2e-3)
    p.add_argument("--resolution", type=int_arg("--resolution", 8), default=64, help="input side (power of two)")
    p.add_argument("--feature-dim", type=int_arg("--feature-dim", 1), default=128)
    p.add_argument("--holdout", type=float_arg("--holdout"), default=0.1, help="fraction kept out for the report")
    p.add_argument("--seed", type=int_arg("--seed", 0), default=0)
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out, Path(args.out).with_suffix(".json")], force=args.force)
    ds = ImageDataset(args.data)
    cfg = ClassifierConfig(label_names=ds.label_names, resolution=args.resolution, feature_dim=args.feature_dim)
    opts = ClassifierTraining(steps=args.steps, batch=args.batch, lr=args.lr, holdout=args.holdout, seed=args.seed)
    model = train_classifier(ds, cfg, opts)
    print(f"wrote {save_classifier(model, args.out)}")
    train_idx, held = split(len(ds.image_names), opts.holdout, opts.seed)
    if len(held) == 0:
        return 0
    images, labels = load_images(ds, held, progress=False)
    acc = accuracy(model, images, labels)
    base = majority_accuracy(model, torch.stack([ds.get_label(int(i)) for i in train_idx]), labels)
    print(f"held-out accuracy on {len(held)} images (baseline: always the most common value)")
    for name in acc:
        print(f"  {name:<12} {acc[name]:6.1%}   baseline {base[name]:6.1%}")
    return 0
