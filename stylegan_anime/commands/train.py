"""`stylegan-anime train`: train or fine-tune on a data set folder/zip, resumable.

Also the body of ``python -m stylegan_anime.train``, which ``torchrun`` starts once per GPU
(or CPU process) for data-parallel training.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..io import loading
from ..errors import UserError
from ..networks import DiscriminatorConfig, GeneratorConfig
from ..io.outputs import check_folder
from ..training.config import AUGMENT_MODES, TrainingConfig
from .args import float_arg, int_arg, resolution_arg


# The CLI's defaults are the config's: one place sets them.
TRAINING = TrainingConfig()

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data set folder or .zip (img*.png + dataset.json)")
    p.add_argument("--out", help="run folder: snapshots, sample grids, log.jsonl")
    p.add_argument("--resume-run", default=None, metavar="DIR", help="continue the run in DIR from its latest snapshot")
    p.add_argument("--resume", default=None, metavar="MODEL",
                   help="fine-tune from a registry name or weights file (TF/ada .pkl, rosinality .pt, ours)")
    p.add_argument("--resolution", type=resolution_arg("--resolution"), default=None,
                   help="image size (default: the data set's); must match the data set")
    p.add_argument("--kimg", type=float_arg("--kimg"), default=None, help="train until this many thousand real images")
    p.add_argument("--snap", type=float_arg("--snap"), default=TRAINING.snap_kimg,
                   help=f"snapshot every N kimg (default {TRAINING.snap_kimg:g})")
    p.add_argument("--keep", type=int_arg("--keep", 0), default=None,
                   help="snapshots and sample grids kept, the newest (default 2; 0 keeps all)")
    p.add_argument("--batch", type=int_arg("--batch", 1), default=TRAINING.batch,
                   help=f"global batch size (default {TRAINING.batch})")
    p.add_argument("--augment", choices=AUGMENT_MODES, default=TRAINING.augment)
    p.add_argument("--p", dest="augment_p", type=float_arg("--p"), default=TRAINING.augment_p,
                   help="augment probability (start/fixed)")
    p.add_argument("--target", type=float_arg("--target"), default=TRAINING.ada_target,
                   help="ADA target for E[sign(D(real))]")
    p.add_argument("--freezed", type=int_arg("--freezed", 0), default=TRAINING.freezed,
                   help="freeze the discriminator's N highest-resolution blocks (FreezeD)")
    p.add_argument("--gan-cls", type=float_arg("--gan-cls"), default=TRAINING.gan_cls, metavar="LAMBDA",
                   help="matching-aware D (GAN-CLS): real images with wrong labels count as fake with weight "
                        "LAMBDA in [0, 1], fake ones 1-LAMBDA (0.5 = Reed et al. 2016; default 0: off)")
    p.add_argument("--gan-int", type=float_arg("--gan-int"), default=TRAINING.gan_int, metavar="WEIGHT",
                   help="GAN-INT: G also trains on labels interpolated between two batch images, with this "
                        "weight (1 = the paper; default 0: off)")
    p.add_argument("--gan-int-beta", type=float_arg("--gan-int-beta"), default=TRAINING.gan_int_beta,
                   help="GAN-INT's beta: labels beta*c1 + (1-beta)*c2 (default 0.5, the paper's)")
    p.add_argument("--cond-aug", action="store_true",
                   help="conditioning augmentation: G samples its label embedding from N(mu, sigma) while "
                        "training (inference uses mu)")
    p.add_argument("--ca-kl", type=float_arg("--ca-kl"), default=TRAINING.ca_kl,
                   help="weight of the conditioning augmentation KL term (default 1)")
    p.add_argument("--label-guide", default=TRAINING.label_guide, metavar="CLASSIFIER",
                   help="add this attribute classifier's cross-entropy on G's images to G's loss (train it "
                        "with `stylegan-anime classifier` on the same data set; not the one you judge with)")
    p.add_argument("--label-guide-weight", type=float_arg("--label-guide-weight"),
                   default=TRAINING.label_guide_weight, help="weight of the label guide's term (default 1)")
    p.add_argument("--gamma", type=float_arg("--gamma"), default=None, help="R1 weight (default 0.0002·res²/batch)")
    p.add_argument("--lr", type=float_arg("--lr"), default=TRAINING.g_lr, help="Adam learning rate of G and D")
    p.add_argument("--no-labels", dest="use_labels", action="store_false", help="ignore the data set's labels")
    p.add_argument("--mirror", action="store_true", help="add x-flipped copies of the images")
    p.add_argument("--cbase", type=int_arg("--cbase", 1), default=16384, help="channel base (16384 = ×0.5)")
    p.add_argument("--cmax", type=int_arg("--cmax", 1), default=512, help="maximum channels per layer")
    p.add_argument("--z-dim", type=int_arg("--z-dim", 1), default=512)
    p.add_argument("--w-dim", type=int_arg("--w-dim", 1), default=512)
    p.add_argument("--map", type=int_arg("--map", 1), default=8, help="mapping network layers")
    p.add_argument("--fp16-res", type=int_arg("--fp16-res", 0), default=4,
                   help="run the N highest resolutions in float16 on CUDA (ignored on the CPU)")
    p.add_argument("--conv-clamp", type=float_arg("--conv-clamp"), default=256.0)
    p.add_argument("--seed", type=int_arg("--seed", 0), default=TRAINING.seed)
    p.add_argument("--device", default=TRAINING.device, help="auto (CUDA if present), cpu, cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--fid-features", default=None, metavar="PATH",
                   help="at each snapshot, write FID in this feature network's space (a classifier from "
                        "`stylegan-anime classifier`, or inception-2015-12-05.pt) to metrics.jsonl")
    p.add_argument("--fid-num", type=int_arg("--fid-num", 2), default=500, help="samples per snapshot FID")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune on a data set",
                       description="Train a StyleGAN2 (or fine-tune one with --resume) on a data set; "
                                   "continue an interrupted run with --resume-run DIR.")
    add_arguments(p)
    p.set_defaults(run=run)


def build_config(args: argparse.Namespace, resolution: int, c_dim: int):
    from ..training.config import TrainingConfig
    if args.resolution is not None and args.resolution != resolution:
        raise UserError(f"--resolution {args.resolution} does not match the data set ({resolution}²)")
    clamp = args.conv_clamp if args.conv_clamp > 0 else None
    g = GeneratorConfig(img_resolution=resolution, z_dim=args.z_dim, w_dim=args.w_dim, c_dim=c_dim,
                        mapping_layers=args.map, channel_base=args.cbase, channel_max=args.cmax,
                        num_fp16_res=args.fp16_res, conv_clamp=clamp)
    d = DiscriminatorConfig(img_resolution=resolution, c_dim=c_dim, channel_base=args.cbase,
                            channel_max=args.cmax, num_fp16_res=args.fp16_res, conv_clamp=clamp)
    return TrainingConfig(data=str(args.data), g=g, d=d, use_labels=args.use_labels, xflip=args.mirror,
                          batch=args.batch, kimg=args.kimg if args.kimg is not None else 1000.0,
                          snap_kimg=args.snap, g_lr=args.lr, d_lr=args.lr, r1_gamma=args.gamma,
                          augment=args.augment, augment_p=args.augment_p, ada_target=args.target,
                          freezed=args.freezed, gan_cls=args.gan_cls, gan_int=args.gan_int,
                          gan_int_beta=args.gan_int_beta, cond_aug=args.cond_aug, ca_kl=args.ca_kl,
                          label_guide=args.label_guide, label_guide_weight=args.label_guide_weight,
                          resume=args.resume, seed=args.seed, device=args.device,
                          keep_snapshots=args.keep if args.keep is not None else 2)


def snapshot_metric(args: argparse.Namespace, dist, run_dir: str | None = None):
    """The FID metric_fn asked for by --fid-features (None without it), on the writing process only."""
    if not getattr(args, "fid_features", None) or not dist.is_writer:
        return None
    from ..metrics import snapshot_fid
    data = args.data
    if data is None and run_dir is not None:
        from ..training.config import TrainingConfig
        from ..training.loop import TRAINING_JSON
        path = Path(run_dir) / TRAINING_JSON
        data = TrainingConfig.from_json(path.read_text()).data if path.exists() else None
    if data is None:
        raise UserError("--fid-features needs the data set: give --data")
    return snapshot_fid(data, args.fid_features, num=args.fid_num, device=dist.device)


def run(args: argparse.Namespace) -> int:
    from ..training import distributed, loop
    device = loading.resolve_device(args.device)
    dist = distributed.init_from_env(device)
    try:
        if args.resume_run:
            loop.train(None, args.resume_run, resume_run=True, kimg=args.kimg, keep=args.keep, dist=dist,
                       progress_bar=not args.quiet, metric_fn=snapshot_metric(args, dist, args.resume_run))
            out = args.resume_run
        else:
            if not args.data or not args.out:
                raise UserError("give --data and --out (or --resume-run DIR)")
            check_folder(args.out)
            from ..training.dataset import ImageDataset
            dataset = ImageDataset(args.data, use_labels=args.use_labels, xflip=args.mirror)
            cfg = build_config(args, dataset.resolution, dataset.c_dim)
            loop.train(cfg, args.out, dataset=dataset, dist=dist, progress_bar=not args.quiet,
                       metric_fn=snapshot_metric(args, dist))
            out = args.out
    finally:
        distributed.shutdown(dist)
    if dist.is_writer:
        print(f"run in {out}")
    return 0
