"""Distances between a synthesised image and a target, for projection.

All images are [N, C, H, W] in [-1, 1]. Every distance here works offline:

- ``pixel_distance``: mean L2 (squared error) or L1 over pixels;
- ``pyramid_distance``: the same at every coarser level of an image pyramid (FIR downsampling
  with the generator's [1, 3, 3, 1] filter), so that errors in the layout weigh as much as
  errors in fine detail;
- ``DiscriminatorFeatures``: squared error between the activations after each block of our
  ``Discriminator`` (when the weights file has one), a perceptual distance trained on the
  same pictures;
- ``PerceptualFeatures``: a user-supplied TorchScript feature extractor, e.g. the public
  ``vgg16.pt`` of the StyleGAN2-ADA metrics, called with ``return_lpips=True`` (its output is
  then the LPIPS feature vector, whose squared distance is LPIPS).

``noise_regularization`` is the StyleGAN2 paper's penalty that keeps optimised noise maps
white: squared autocorrelation at 1-pixel shifts, at every scale down to 8×8.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..ops import kernels
from ..errors import UserError
from ..networks import Discriminator

PIXEL_KINDS = ("l2", "l1")


def pixel_distance(x: torch.Tensor, y: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Mean squared (l2) or absolute (l1) difference: a scalar."""
    if kind == "l2":
        return (x - y).square().mean()
    if kind == "l1":
        return (x - y).abs().mean()
    raise UserError(f"pixel loss must be one of {', '.join(PIXEL_KINDS)}, got {kind!r}")


def image_pyramid(img: torch.Tensor, min_size: int = 8) -> list[torch.Tensor]:
    """[img, img/2, img/4, ...]: halved with the [1, 3, 3, 1] FIR filter while both sides stay >= min_size."""
    f = kernels.setup_filter([1, 3, 3, 1]).to(img.device)
    levels = [img]
    while min(levels[-1].shape[2:]) // 2 >= min_size:
        levels.append(kernels.downsample2d(levels[-1], f))
    return levels


def pyramid_distance(x: torch.Tensor, y_levels: list[torch.Tensor], kind: str = "l2",
                     min_size: int = 8) -> torch.Tensor:
    """Mean of ``pixel_distance`` over the coarser levels (full resolution excluded: the pixel
    term covers it). ``y_levels``: ``image_pyramid(target)``, computed once. 0 when there is no
    coarser level."""
    x_levels = image_pyramid(x, min_size)
    terms = [pixel_distance(a, b, kind) for a, b in zip(x_levels[1:], y_levels[1:])]
    return torch.stack(terms).mean() if terms else x.new_zeros([])


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (x clamped to that range), on the
    [0, 1] scale that photo tools use."""
    mse = ((x.detach().clamp(-1, 1) - y.detach()) / 2).square().mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


class DiscriminatorFeatures:
    """Activations of a ``Discriminator`` after each of its blocks: img → list of [N, C_i, R_i, R_i].

    The distance is the mean over blocks of each block's squared error divided by the target's
    mean square there, so that no block dominates by its scale.
    """

    def __init__(self, D: Discriminator):
        self.D = D

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        x, rgb, out = None, img, []
        for res in self.D.block_resolutions:
            x, rgb = getattr(self.D, f"b{res}")(x, rgb)
            out.append(x)
        return out

    def distance(self, feats: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        terms = [(a - b).square().mean() / (b.square().mean() + 1e-8) for a, b in zip(feats, target)]
        return torch.stack(terms).mean()


class PerceptualFeatures:
    """A TorchScript feature extractor from a file: images in [0, 255] → a tensor or a list/tuple of
    tensors. Images larger than ``size`` are area-downsampled to it first.

    A module whose ``forward`` takes ``return_lpips`` (the ADA metrics' ``vgg16.pt``) is called
    with ``resize_images=False, return_lpips=True`` and its distance is the summed squared
    difference (LPIPS); any other module's distance is the mean squared difference per output.
    """

    def __init__(self, module: torch.jit.ScriptModule, size: int = 256):
        self.module, self.size = module, size
        names = {a.name for a in module.forward.schema.arguments}
        self.lpips = "return_lpips" in names
        self.kwargs = {"return_lpips": True} | ({"resize_images": False} if "resize_images" in names else {})

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        x = (img + 1) * 127.5
        if x.shape[2] > self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="area")
        out = self.module(x, **self.kwargs) if self.lpips else self.module(x)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def distance(self, feats: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        if self.lpips:
            return sum((a - b).square().sum() for a, b in zip(feats, target)) / feats[0].shape[0]
        return torch.stack([(a - b).square().mean() for a, b in zip(feats, target)]).sum()


def load_perceptual(path: str | Path, device: torch.device | str = "cpu", size: int = 256) -> PerceptualFeatures:
    """Read a TorchScript feature extractor (``torch.jit.save`` / ``torch.jit.load`` file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such perceptual-loss file: {path}")
    try:
        module = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"{path.name} is not a TorchScript feature extractor "
                        f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from None
    return PerceptualFeatures(module.eval(), size)


def noise_regularization(noise: list[torch.Tensor]) -> torch.Tensor:
    """Sum over noise maps [1, 1, r, r] and over scales (r, r/2, ... down to 8, or the map itself when
    smaller) of the squared mean product with the map shifted by one pixel, along x and along y.
    0 for white noise in expectation (up to sampling error ~1/r²); large for smooth maps."""
    total = noise[0].new_zeros([])
    for n in noise:
        while True:
            total = total + (n * n.roll(1, dims=3)).mean().square() + (n * n.roll(1, dims=2)).mean().square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, 2) * 2  # the mean of 4 unit-variance values has variance 1/4
    return total
