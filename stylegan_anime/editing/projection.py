"""Projection: find the w (or per-layer w+) and noise maps with which a generator reproduces an image.

The method is the one the StyleGAN2 paper describes: start at the average w, optimise with
Adam under a learning rate that ramps up then down (cosine), jitter w with Gaussian noise that
fades out over the first part of the run (it keeps the search from settling early), optimise
the per-layer noise maps too, with a penalty that keeps them white and a renormalisation to
zero mean and unit variance after every step. The distance is ours (see ``losses``): it works
without downloaded weights.

    cfg = ProjectionConfig(steps=500, mode="w+")
    result = project(G, load_target("face.png", G.img_resolution), cfg, progress=True)
    save_latent(result.latent, "face.npz")      # a keyframe for every latent command
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from ..errors import UserError
from ..latents.files import Latent
from ..networks import Discriminator, Generator
from ..networks.config import ConfigBase
from ..features.render import image_to_tensor, to_uint8
from ..features.video import check_video_path, write_video
from . import losses
from .tags import network_label_names, stores_label_names, unchosen_labels

MODES = ("w", "w+")


@dataclass
class ProjectionConfig(ConfigBase):
    """How to project. Step fractions are of ``steps``; w noise is in units of σ_w, the root-mean-square
    distance of mapped ws from their average. Loss weights multiply the terms in ``losses``;
    ``discriminator_weight`` applies only when a D is given, ``perceptual_weight`` only with an extractor."""

    steps: int = 1000
    mode: str = "w"                 # "w": one w for every layer; "w+": one w per layer
    lr: float = 0.1                 # Adam's peak learning rate
    lr_rampup: float = 0.05         # fraction of steps to ramp the rate up (linear)
    lr_rampdown: float = 0.25       # fraction of steps to ramp it down to 0 at the end (cosine)
    w_noise: float = 0.05           # initial std of the jitter added to w, times σ_w
    w_noise_ramp: float = 0.75      # fraction of steps over which the jitter falls (quadratically) to 0
    tie_until: float = 0.5          # w+ only: fraction of steps during which every layer shares one w
    optimize_noise: bool = True     # False: keep the network's constant noise (the w alone then suffices)
    noise_reg_weight: float = 1e5
    w_avg_samples: int = 10000      # z samples that estimate σ_w (and w_avg, when the network's is zero)
    pixel_loss: str = "l2"          # l2 | l1
    pixel_weight: float = 1.0
    multiscale_weight: float = 1.0
    multiscale_min_size: int = 8
    discriminator_weight: float = 0.1
    perceptual_weight: float = 1.0
    perceptual_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"projection mode must be w or w+, got {self.mode!r}")
        if self.steps < 1:
            raise UserError(f"projection needs at least 1 step, got {self.steps}")
        if self.pixel_loss not in losses.PIXEL_KINDS:
            raise UserError(f"pixel loss must be l2 or l1, got {self.pixel_loss!r}")
        if self.w_avg_samples < 2:
            raise UserError("w_avg_samples must be at least 2")


@dataclass
class ProjectionStep:
    """What one optimisation step saw: image: [1, C, R, R] in [-1, 1] (before this step's update)."""

    step: int                       # 1-based
    loss: float                     # the weighted distance to the target (without the noise penalty)
    psnr: float
    image: torch.Tensor


@dataclass
class ProjectionResult:
    """The projected latent, its image [1, C, R, R] in [-1, 1], and the per-step loss (distance to the
    target) and PSNR."""

    latent: Latent
    image: torch.Tensor
    psnr: float
    losses: list[float]
    psnrs: list[float]


def learning_rate(t: float, cfg: ProjectionConfig) -> float:
    """Learning rate at progress t in [0, 1]: linear ramp up, cosine ramp down to 0 at t = 1."""
    down = min(1.0, (1.0 - t) / cfg.lr_rampdown) if cfg.lr_rampdown > 0 else 1.0
    up = min(1.0, t / cfg.lr_rampup) if cfg.lr_rampup > 0 else 1.0
    return cfg.lr * (0.5 - 0.5 * math.cos(down * math.pi)) * up


def w_noise_std(t: float, cfg: ProjectionConfig, w_std: float) -> float:
    """Std of the jitter on w at progress t in [0, 1]."""
    if cfg.w_noise_ramp <= 0:
        return 0.0
    return w_std * cfg.w_noise * max(0.0, 1.0 - t / cfg.w_noise_ramp) ** 2


@torch.no_grad()
def w_statistics(G: Generator, samples: int, c: torch.Tensor | None = None,
                 gen: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """(w_avg: [w_dim], σ_w) from ``samples`` random z. The network's tracked w_avg is used as the
    centre when it is non-zero (a trained network's); else the sample mean."""
    z = torch.randn([samples, G.z_dim], generator=gen, device=G.device)
    cs = c.expand(samples, -1) if c is not None else None
    ws = torch.cat([G.mapping(z[i:i + 1000], cs[i:i + 1000] if cs is not None else None)[:, 0]
                    for i in range(0, samples, 1000)])
    w_avg = G.mapping.w_avg.clone() if G.mapping.w_avg.abs().sum() > 0 else ws.mean(dim=0)
    w_std = (ws - w_avg).square().sum(dim=1).mean().sqrt().item()
    return w_avg, w_std


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module | None) -> Iterator[None]:
    """Parameters of ``modules`` need no gradients inside the block; restored after."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class ProjectionLoss:
    """Weighted sum of the ``losses`` distances to one target image [1, C, R, R] in [-1, 1]."""

    def __init__(self, target: torch.Tensor, cfg: ProjectionConfig, D: Discriminator | None = None,
                 perceptual: losses.PerceptualFeatures | None = None):
        self.target, self.cfg = target, cfg
        self.target_levels = losses.image_pyramid(target, cfg.multiscale_min_size)
        self.D = losses.DiscriminatorFeatures(D) if D is not None and cfg.discriminator_weight else None
        self.perceptual = perceptual if cfg.perceptual_weight else None
        with torch.no_grad():
            self.d_target = self.D.features(target) if self.D else None
            self.p_target = self.perceptual.features(target) if self.perceptual else None

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        loss = cfg.pixel_weight * losses.pixel_distance(img, self.target, cfg.pixel_loss)
        if cfg.multiscale_weight:
            loss = loss + cfg.multiscale_weight * losses.pyramid_distance(
                img, self.target_levels, cfg.pixel_loss, cfg.multiscale_min_size)
        if self.D is not None:
            loss = loss + cfg.discriminator_weight * self.D.distance(self.D.features(img), self.d_target)
        if self.perceptual is not None:
            loss = loss + cfg.perceptual_weight * self.perceptual.distance(self.perceptual.features(img),
                                                                           self.p_target)
        return loss


def check_target(G: Generator, target: torch.Tensor) -> torch.Tensor:
    shape = (1, G.img_channels, G.img_resolution, G.img_resolution)
    if target.ndim == 3:
        target = target.unsqueeze(0)
    if tuple(target.shape) != shape:
        raise UserError(f"target must be {list(shape)} for this network, got {list(target.shape)}")
    return target.to(G.device, torch.float32)


class Projection:
    """One projection run: ``steps()`` runs the optimisation, yielding each step; ``result()`` is the
    latent found so far. Everything random comes from ``cfg.seed``."""

    def __init__(self, G: Generator, target: torch.Tensor, cfg: ProjectionConfig | None = None,
                 c: torch.Tensor | None = None, D: Discriminator | None = None,
                 perceptual: losses.PerceptualFeatures | None = None):
        self.G, self.cfg, self.D, self.perceptual = G, cfg or ProjectionConfig(), D, perceptual
        self.target = check_target(G, target)
        if c is None and stores_label_names(G):
            c = unchosen_labels(network_label_names(G)).to(G.device)
        if G.c_dim and (c is None or c.shape[-1] != G.c_dim):
            raise UserError(f"this network is conditional: projection needs labels c of size {G.c_dim}")
        self.c = c.reshape(1, -1).to(G.device) if G.c_dim else None
        if D is not None and D.img_resolution != G.img_resolution:
            raise UserError(f"the discriminator sees {D.img_resolution}² images, the generator makes "
                            f"{G.img_resolution}²")
        self.gen = torch.Generator(G.device).manual_seed(self.cfg.seed)
        w_avg, self.w_std = w_statistics(G, self.cfg.w_avg_samples, self.c, self.gen)
        num = 1 if self.cfg.mode == "w" else G.num_ws
        self.w = w_avg.reshape(1, 1, -1).repeat(1, num, 1).requires_grad_(True)
        self.noise = [self._initial_noise(layer) for layer in G.synthesis.noise_layers()]
        self.losses: list[float] = []
        self.psnrs: list[float] = []

    def _initial_noise(self, layer) -> torch.Tensor:
        """[1, 1, r, r]: random (seeded) when optimised; else the network's own constant noise, so that the
        saved w alone reproduces the projection wherever the network runs with noise_mode='const'."""
        r = layer.resolution
        if not self.cfg.optimize_noise:
            return layer.noise_const.detach().clone().reshape(1, 1, r, r)
        return torch.randn([1, 1, r, r], generator=self.gen, device=self.G.device).requires_grad_(True)

    def ws(self, w: torch.Tensor | None = None, tied: bool = False) -> torch.Tensor:
        """[1, num_ws, w_dim]: the optimised w, broadcast to every layer in w mode. ``tied``: the layers'
        mean for all (the copies start equal and then get equal gradients, so they stay equal)."""
        w = self.w if w is None else w
        return (w.mean(dim=1, keepdim=True) if tied else w).expand(-1, self.G.num_ws, -1)

    def steps(self) -> Iterator[ProjectionStep]:
        """Run the optimisation, one ``ProjectionStep`` per step (the networks' own parameters are frozen
        meanwhile)."""
        params = [self.w] + (self.noise if self.cfg.optimize_noise else [])
        opt = torch.optim.Adam(params, lr=self.cfg.lr, betas=(0.9, 0.999))
        loss_fn = ProjectionLoss(self.target, self.cfg, self.D, self.perceptual)
        with frozen(self.G, self.D, self.perceptual.module if self.perceptual else None):
            for i in range(self.cfg.steps):
                yield self._step(opt, loss_fn, i)

    def _step(self, opt: torch.optim.Optimizer, loss_fn: ProjectionLoss, i: int) -> ProjectionStep:
        cfg, t = self.cfg, i / self.cfg.steps
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, cfg)
        tied = t < cfg.tie_until
        jitter = torch.randn(self.w[:, :1].shape if tied else self.w.shape, generator=self.gen,
                             device=self.w.device) * w_noise_std(t, cfg, self.w_std)
        img = self.G.synthesis(self.ws(self.w + jitter, tied), noise=self.noise)
        distance = loss_fn(img)
        loss = distance
        if cfg.optimize_noise and cfg.noise_reg_weight:
            loss = loss + cfg.noise_reg_weight * losses.noise_regularization(self.noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cfg.optimize_noise:
            self._renormalize_noise()
        self.losses.append(distance.item())
        self.psnrs.append(losses.psnr(img, self.target))
        return ProjectionStep(i + 1, self.losses[-1], self.psnrs[-1], img.detach())

    @torch.no_grad()
    def _renormalize_noise(self) -> None:
        for n in self.noise:
            n.sub_(n.mean()).div_(n.square().mean().sqrt() + 1e-8)

    @torch.no_grad()
    def result(self) -> ProjectionResult:
        ws = self.ws().detach().clone()
        noise = [n.detach().clone() for n in self.noise]
        image = self.G.synthesis(ws, noise=noise)
        c = self.c[0].cpu() if self.c is not None else None
        latent = Latent(w=ws[0].cpu(), c=c, noise=[n.cpu() for n in noise])
        return ProjectionResult(latent, image, losses.psnr(image, self.target), list(self.losses), list(self.psnrs))


def side_by_side(target: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """[1, C, R, R] twice → [1, C, R, 2R]: the target left, the projection right."""
    return torch.cat([target.to(image.device), image.clamp(-1, 1)], dim=3)


def project(G: Generator, target: torch.Tensor, cfg: ProjectionConfig | None = None, *,
            c: torch.Tensor | None = None, D: Discriminator | None = None,
            perceptual: losses.PerceptualFeatures | None = None, progress: bool = False,
            on_step: Callable[[ProjectionStep], None] | None = None, video: str | Path | None = None,
            video_fps: float = 30, video_every: int = 1, video_size: int | None = None) -> ProjectionResult:
    """Project ``target``: [1, C, R, R] in [-1, 1] (see ``load_target``) into ``G``'s latent space.

    ``D``: a discriminator whose features join the loss; ``perceptual``: ``losses.load_perceptual(...)``.
    ``on_step`` is called after every step. ``video``: a .gif / .mp4 of target | projection, one frame
    every ``video_every`` steps (and the last), streamed as it runs; ``video_size``: its longer side.
    """
    if video is not None:
        check_video_path(video, video_fps)
    run = Projection(G, target, cfg, c=c, D=D, perceptual=perceptual)
    steps = reported_steps(run, progress, on_step)
    if video is None:
        for _ in steps:
            pass
    else:
        total = run.cfg.steps
        frames = (video_frame(run.target, s.image) for s in steps
                  if (s.step - 1) % video_every == 0 or s.step == total)
        write_video(frames, video, fps=video_fps, size=video_size)
    return run.result()


def reported_steps(run: Projection, progress: bool,
                   on_step: Callable[[ProjectionStep], None] | None) -> Iterator[ProjectionStep]:
    """``run.steps()`` with a tqdm bar (loss, PSNR) and the callback."""
    with tqdm(total=run.cfg.steps, desc="project", unit="step", disable=not progress) as bar:
        for step in run.steps():
            bar.set_postfix(loss=f"{step.loss:.4f}", psnr=f"{step.psnr:.2f}dB", refresh=False)
            bar.update(1)
            if on_step is not None:
                on_step(step)
            yield step


def video_frame(target: torch.Tensor, image: torch.Tensor) -> np.ndarray:
    """uint8 [R, 2R, 3]: target left, projection right (grey images repeated to RGB)."""
    frame = to_uint8(side_by_side(target, image))[0].numpy()
    return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame


def load_target(path: str | Path, resolution: int, channels: int = 3) -> torch.Tensor:
    """An image file → [1, channels, resolution, resolution] in [-1, 1]: centre-cropped to a square and
    resized (LANCZOS); transparency is composited over white. UserError for a missing, unreadable or
    too small (shorter side under resolution / 2) image."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such target image: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            image = ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserError(f"{path.name} is not an image Pillow can read ({type(e).__name__})") from None
    if min(image.size) * 2 < resolution:
        raise UserError(f"{path.name} is {image.size[0]}x{image.size[1]}: too small for a {resolution}² network "
                        f"(the shorter side must be at least {math.ceil(resolution / 2)})")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    side = min(image.size)
    left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
    tensor = image_to_tensor(image.crop((left, top, left + side, top + side)), resolution)
    if channels == 1:  # ITU-R 601 luma, as Pillow's "L" mode
        tensor = (tensor * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    return tensor
