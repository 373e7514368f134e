"""`stylegan-anime project`: an image → the w (or w+) and noise that reproduce it, saved as a latent .npz."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..io import loading
from ..features import render
from ..editing import ProjectionConfig, load_perceptual, load_target, project
from ..errors import UserError
from ..latents.files import save_latent
from ..features.video import check_video_path
from ..io.outputs import check_outputs
from .args import add_force_option, add_network_options, float_arg, int_arg
from .generate import conditioning


def add_parser(sub) -> None:
    p = sub.add_parser("project", help="find the latent of an image",
                       description="Optimise w (or w+) and the noise maps until the network reproduces the "
                       "target image. OUTDIR receives projected.npz (a keyframe for the latent commands), "
                       "projected.png and target_vs_projected.png.")
    add_network_options(p)
    p.add_argument("--target", required=True, help="image file (centre-cropped and resized to the network)")
    p.add_argument("--steps", type=int_arg("--steps", 1), default=500)
    p.add_argument("--mode", choices=["w", "w+"], default="w", help="one w for all layers, or one per layer")
    p.add_argument("--lr", type=float_arg("--lr"), default=0.1, help="peak learning rate")
    p.add_argument("--seed", type=int_arg("--seed", 0), default=0)
    p.add_argument("--noise-reg", type=float_arg("--noise-reg"), default=1e5, help="noise regularisation weight")
    p.add_argument("--no-noise", action="store_true", help="keep the network's own noise: the saved w alone then reproduces the projection (e.g. in interpolate)")
    p.add_argument("--pixel-loss", choices=["l2", "l1"], default="l2")
    p.add_argument("--discriminator-weight", type=float_arg("--discriminator-weight"), default=0.1,
                   help="weight of the D-feature loss when the file holds a discriminator (0: off)")
    p.add_argument("--perceptual", default=None, help="TorchScript feature extractor, e.g. the ADA metrics' vgg16.pt")
    p.add_argument("--perceptual-weight", type=float_arg("--perceptual-weight"), default=1.0)
    p.add_argument("--class", dest="class_idx", type=int_arg("--class", 0), default=None,
                   help="class index for conditional networks")
    p.add_argument("--labels", default=None, help="comma-separated label vector for conditional networks")
    p.add_argument("--video", default=None, help="also write the optimisation (target | projection) as .gif or .mp4")
    p.add_argument("--video-fps", type=float_arg("--video-fps"), default=30)
    p.add_argument("--video-every", type=int_arg("--video-every", 1), default=1, help="one frame every N steps")
    p.add_argument("--video-size", type=int_arg("--video-size", 2), default=None,
                   help="longer side of the video in pixels (default: 2R x R)")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder")
    add_force_option(p)
    p.set_defaults(run=run)


OUTPUTS = ("projected.npz", "projected.png", "target_vs_projected.png")


def config_from_args(args: argparse.Namespace) -> ProjectionConfig:
    return ProjectionConfig(steps=args.steps, mode=args.mode, lr=args.lr, seed=args.seed,
                            noise_reg_weight=args.noise_reg, optimize_noise=not args.no_noise,
                            pixel_loss=args.pixel_loss, discriminator_weight=args.discriminator_weight,
                            perceptual_weight=args.perceptual_weight)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix:
        raise UserError(f"{out} looks like a file: -o names a folder for projected.npz/.png")
    written = [out / name for name in OUTPUTS]
    if args.video is not None:
        check_video_path(args.video, args.video_fps)
        written.append(args.video)
    check_outputs(written, force=args.force)
    cfg = config_from_args(args)
    nets = loading.load_networks(args.network, device=loading.resolve_device(args.device),
                                 allow_nonfinite=args.allow_nonfinite)
    G = nets.G_ema
    target = load_target(args.target, G.img_resolution, G.img_channels)
    perceptual = load_perceptual(args.perceptual, G.device, cfg.perceptual_size) if args.perceptual else None
    c = conditioning(args, G.c_dim, 1, G)
    result = project(G, target, cfg, c=c, D=nets.D, perceptual=perceptual, progress=True, video=args.video,
                     video_fps=args.video_fps, video_every=args.video_every, video_size=args.video_size)
    save_latent(result.latent, out / "projected.npz")
    render.save_images(result.image, [out / "projected.png"])
    render.save_grid(torch.cat([target, result.image.cpu().clamp(-1, 1)]), out / "target_vs_projected.png", cols=2,
                     labels=["target", "projected"] if G.img_resolution >= 64 else None)  # captions need room
    print(f"wrote {out}/projected.npz, projected.png, target_vs_projected.png (PSNR {result.psnr:.2f} dB)")
    if args.video is not None:
        print(f"wrote {args.video}")
    return 0
