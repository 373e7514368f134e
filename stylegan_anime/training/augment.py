"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): a differentiable augmentation pipeline and the controller of its
probability p.

Every augmentation is applied to each image independently with probability ``p × multiplier``
and is differentiable in the image, so when D sees augmented fakes the gradient reaches G.
Three stages, each skipped for images that drew no augmentation (so p = 0 is exactly the identity):

* blit: x-flip, 90° rotations, integer translation: an exact pixel gather with mirror padding;
* geometric: isotropic scaling, rotation, anisotropic scaling, rotation, fractional translation,
  composed into one affine matrix and resampled once (bilinear, optionally supersampled, mirror padding);
* colour: brightness, contrast, luma flip, hue rotation, saturation, composed into one 4×4 matrix
  acting on homogeneous RGB in [-1, 1], about the luma axis (1, 1, 1)/√3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError


@dataclass(frozen=True)
class AugmentConfig:
    """Probability multipliers (0 switches an augmentation off) and strengths (the paper's defaults)."""

    xflip: float = 1.0
    rotate90: float = 1.0
    xint: float = 1.0
    scale: float = 1.0
    rotate: float = 1.0
    aniso: float = 1.0
    xfrac: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    lumaflip: float = 1.0
    hue: float = 1.0
    saturation: float = 1.0
    xint_max: float = 0.125       # integer translation: uniform in ±this × image size
    scale_std: float = 0.2        # isotropic scale 2^N(0, std²)
    rotate_max: float = 1.0       # rotation angle uniform in ±this × π
    aniso_std: float = 0.2        # x scaled by 2^N(0, std²), y by its inverse
    xfrac_std: float = 0.125      # fractional translation N(0, std²) × image size
    brightness_std: float = 0.2   # added b ~ N(0, std²)
    contrast_std: float = 0.5     # multiplied by 2^N(0, std²)
    hue_max: float = 1.0          # rotation about the luma axis uniform in ±this × π
    saturation_std: float = 1.0   # chroma scaled by 2^N(0, std²)
    supersample: int = 1          # geometric resampling on a k× grid (2: less aliasing, ~8× the CPU time)

    BLIT = ("xflip", "rotate90", "xint")
    GEOM = ("scale", "rotate", "aniso", "xfrac")
    COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

    @classmethod
    def preset(cls, name: str) -> "AugmentConfig":
        """'bgc' (all twelve), 'bg', 'b', 'g', 'c', or one augmentation's name alone."""
        groups = {"b": cls.BLIT, "g": cls.GEOM, "c": cls.COLOR}
        on = set(cls.BLIT + cls.GEOM + cls.COLOR)
        if name in on:
            keep = {name}
        elif name and set(name) <= set(groups):
            keep = {a for g in name for a in groups[g]}
        else:
            raise UserError(f"unknown augmentation preset {name!r}: use bgc, bg, b, g, c or one of {sorted(on)}")
        return cls(**{a: float(a in keep) for a in on})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- the three stages


def _mirror(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflect integer indices into [0, n-1] about the outer pixel edges (the edge pixel repeats),
    the same padding grid_sample's 'reflection' uses with align_corners=False."""
    i = i.remainder(2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def blit(x: torch.Tensor, flip: torch.Tensor, quarter_turns: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Exact pixel moves per image: x-flip, then rotate 90° × k (clockwise on screen), then shift.

    x: [N, C, H, W]; flip: [N] in {0, 1}; quarter_turns: [N] integers; shift: [N, 2] integer
    pixels (x right, y down). Pixels shifted in from outside are mirrored. Rotation needs H == W.
    """
    n, c, h, w = x.shape
    if h != w and bool((quarter_turns % 2 != 0).any()):
        raise ValueError("90° rotations need square images")
    # Doubled centred coordinates are integers for even and odd sizes alike.
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    u = (2 * xs - (w - 1)).flatten()[None].expand(n, -1)
    v = (2 * ys - (h - 1)).flatten()[None].expand(n, -1)
    # Undo the moves in reverse order: output pixel → source pixel.
    u = u - 2 * shift[:, :1].long()
    v = v - 2 * shift[:, 1:].long()
    k = quarter_turns.long().remainder(4)[:, None]
    for turn in range(1, 4):   # inverse of a clockwise turn on screen (y points down): (u, v) → (v, -u)
        sel = k >= turn
        u, v = torch.where(sel, v, u), torch.where(sel, -u, v)
    u = torch.where(flip.bool()[:, None], -u, u)
    src_x, src_y = _mirror((u + (w - 1)) >> 1, w), _mirror((v + (h - 1)) >> 1, h)   # exact halving
    index = (src_y * w + src_x)[:, None, :].expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)


def geometric(x: torch.Tensor, matrix: torch.Tensor, supersample: int = 2) -> torch.Tensor:
    """Resample each image through an affine map given in centred pixel coordinates.

    x: [N, C, H, W]; matrix: [N, 3, 3] maps a source point (x right, y down, origin at the image
    centre, pixel units) to where it lands in the output. Bilinear sampling with mirror padding,
    optionally on a ``supersample``× grid that is box-filtered back down (less aliasing).
    Every output pixel is a convex combination of input pixels, so the value range is kept.
    """
    n, c, h, w = x.shape
    to_norm = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], dtype=matrix.dtype, device=matrix.device))
    from_norm = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], dtype=matrix.dtype, device=matrix.device))
    theta = (to_norm @ torch.linalg.inv(matrix) @ from_norm)[:, :2, :].to(x.dtype)
    if supersample > 1:
        x = F.interpolate(x, scale_factor=supersample, mode="bilinear", align_corners=False)
    grid = _affine_grid(theta, x.shape[2], x.shape[3])
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if supersample > 1:   # box filter back down (a reshape: avg_pool2d is slow on contended CPUs)
        s = supersample
        x = x.reshape(n, c, x.shape[2] // s, s, x.shape[3] // s, s).mean((3, 5))
    return x


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """F.affine_grid (align_corners=False) for [N, 2, 3] theta, built directly: the library op
    takes milliseconds even for tiny grids on a busy CPU."""
    xs = (torch.arange(w, dtype=theta.dtype, device=theta.device) * 2 + 1) / w - 1
    ys = (torch.arange(h, dtype=theta.dtype, device=theta.device) * 2 + 1) / h - 1
    base = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, dtype=theta.dtype,
                                                                                     device=theta.device)], -1)
    return torch.einsum("hwk,nik->nhwi", base, theta)


def colour(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply a 4×4 matrix to homogeneous RGB: x: [N, 3, H, W]; matrix: [N, 4, 4]."""
    m = matrix.to(x.dtype)
    return torch.einsum("nij,njhw->nihw", m[:, :3, :3], x) + m[:, :3, 3, None, None]


# --------------------------------------------------------------------------- matrices


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, dtype=tx.dtype, device=tx.device).repeat(len(tx), 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, dtype=sx.dtype, device=sx.device).repeat(len(sx), 1, 1)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta (radians; positive turns +x towards +y, i.e. clockwise on screen)."""
    m = torch.eye(3, dtype=theta.dtype, device=theta.device).repeat(len(theta), 1, 1)
    m[:, 0, 0], m[:, 0, 1] = theta.cos(), -theta.sin()
    m[:, 1, 0], m[:, 1, 1] = theta.sin(), theta.cos()
    return m


def luma_axis(dtype=torch.float32, device=None) -> torch.Tensor:
    """[4] homogeneous unit vector (1, 1, 1, 0)/√3: the grey axis the colour transforms turn about."""
    return torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=dtype, device=device) / math.sqrt(3)


def translate3d(b: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, dtype=b.dtype, device=b.device).repeat(len(b), 1, 1)
    m[:, :3, 3] = b[:, None]
    return m


def scale3d(s: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, dtype=s.dtype, device=s.device).repeat(len(s), 1, 1)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def luma_flip3d(i: torch.Tensor) -> torch.Tensor:
    """Householder reflection across the plane orthogonal to the luma axis where i = 1 (I where i = 0)."""
    v = luma_axis(i.dtype, i.device)
    return torch.eye(4, dtype=i.dtype, device=i.device) - 2 * torch.outer(v, v) * i[:, None, None]


def hue_rotate3d(theta: torch.Tensor) -> torch.Tensor:
    """Rodrigues rotation by theta about the luma axis."""
    v = luma_axis(theta.dtype, theta.device)[:3]
    cross = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]], dtype=theta.dtype,
                         device=theta.device)
    c, s = theta.cos()[:, None, None], theta.sin()[:, None, None]
    eye3 = torch.eye(3, dtype=theta.dtype, device=theta.device)
    m = torch.eye(4, dtype=theta.dtype, device=theta.device).repeat(len(theta), 1, 1)
    m[:, :3, :3] = c * eye3 + s * cross + (1 - c) * torch.outer(v, v)
    return m


def saturation3d(s: torch.Tensor) -> torch.Tensor:
    """Keep the luma component, scale the chroma (orthogonal to the luma axis) by s."""
    v = luma_axis(s.dtype, s.device)
    vv = torch.outer(v, v)
    eye = torch.eye(4, dtype=s.dtype, device=s.device)
    m = vv + (eye - vv) * s[:, None, None]
    m[:, 3, 3] = 1.0
    return m


# --------------------------------------------------------------------------- the pipeline


def _on_subset(x: torch.Tensor, mask: torch.Tensor, fn) -> torch.Tensor:
    """fn(indices) → new values for x[indices]; only the masked images are computed, the rest
    pass through bit-exactly (and the result stays differentiable in x)."""
    if not bool(mask.any()):
        return x
    index = mask.nonzero().squeeze(1)
    if len(index) == len(x):
        return fn(index)
    return x.index_copy(0, index, fn(index))


class AugmentPipe(nn.Module):
    """x: [N, 3, H, W] float in [-1, 1] → augmented x, same shape (differentiable in x).

    ``p`` (a buffer, so it is saved with the module) is the base probability; augmentation a is
    applied to an image with probability min(p × config.a, 1). The two rotations each use
    1 - √(1 - that) so that "some rotation" has the stated probability.
    """

    def __init__(self, config: AugmentConfig | None = None, p: float = 0.0):
        super().__init__()
        self.config = config or AugmentConfig()
        self.register_buffer("p", torch.tensor(float(p)))

    def _chance(self, name: str, n: int, device) -> torch.Tensor:
        prob = (self.p * getattr(self.config, name)).clamp(0, 1)
        if name == "rotate":
            prob = 1 - torch.sqrt(1 - prob)
        return torch.rand(n, device=device) < prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"AugmentPipe expects [N, C, H, W] images, got shape {tuple(x.shape)}")
        if float(self.p) <= 0:
            return x
        x = self._blit(x)
        x = self._geometric(x)
        return self._colour(x)

    def _enabled(self, group: tuple[str, ...]) -> bool:
        return any(getattr(self.config, name) > 0 for name in group)

    def _blit(self, x: torch.Tensor) -> torch.Tensor:
        if not self._enabled(AugmentConfig.BLIT):
            return x
        n, _, h, w = x.shape
        cfg, dev = self.config, x.device
        flip = self._chance("xflip", n, dev) & (torch.rand(n, device=dev) < 0.5)
        turns = self._chance("rotate90", n, dev).long() * torch.randint(0, 4, (n,), device=dev)
        if h != w:
            turns = turns * 0
        on = self._chance("xint", n, dev)[:, None]
        shift = ((torch.rand(n, 2, device=dev) * 2 - 1) * cfg.xint_max * torch.tensor([w, h], device=dev)).round()
        shift = (shift * on).long()
        moved = flip | (turns % 4 != 0) | (shift != 0).any(1)
        return _on_subset(x, moved, lambda i: blit(x[i], flip[i], turns[i], shift[i]))

    def _geometric(self, x: torch.Tensor) -> torch.Tensor:
        if not self._enabled(AugmentConfig.GEOM):
            return x
        n, _, h, w = x.shape
        cfg, dev = self.config, x.device
        ones, m = torch.ones(n, device=dev), torch.eye(3, device=dev).repeat(n, 1, 1)
        applied = torch.zeros(n, dtype=torch.bool, device=dev)

        def step(name: str, make) -> None:
            nonlocal m, applied
            on = self._chance(name, n, dev)
            m = torch.where(on[:, None, None], make(), torch.eye(3, device=dev)) @ m
            applied = applied | on

        s = torch.exp2(torch.randn(n, device=dev) * cfg.scale_std)
        step("scale", lambda: scale2d(s, s))
        step("rotate", lambda: rotate2d((torch.rand(n, device=dev) * 2 - 1) * math.pi * cfg.rotate_max))
        a = torch.exp2(torch.randn(n, device=dev) * cfg.aniso_std)
        step("aniso", lambda: scale2d(a, 1 / a))
        step("rotate", lambda: rotate2d((torch.rand(n, device=dev) * 2 - 1) * math.pi * cfg.rotate_max))
        t = torch.randn(n, 2, device=dev) * cfg.xfrac_std
        step("xfrac", lambda: translate2d(t[:, 0] * w * ones, t[:, 1] * h * ones))
        return _on_subset(x, applied, lambda i: geometric(x[i], m[i], cfg.supersample))

    def _colour(self, x: torch.Tensor) -> torch.Tensor:
        if not self._enabled(AugmentConfig.COLOR):
            return x
        n, dev, cfg = x.shape[0], x.device, self.config
        m = torch.eye(4, device=dev).repeat(n, 1, 1)
        applied = torch.zeros(n, dtype=torch.bool, device=dev)
        steps = (("brightness", lambda: translate3d(torch.randn(n, device=dev) * cfg.brightness_std)),
                 ("contrast", lambda: scale3d(torch.exp2(torch.randn(n, device=dev) * cfg.contrast_std))),
                 ("lumaflip", lambda: luma_flip3d(torch.randint(0, 2, (n,), device=dev).float())),
                 ("hue", lambda: hue_rotate3d((torch.rand(n, device=dev) * 2 - 1) * math.pi * cfg.hue_max)),
                 ("saturation", lambda: saturation3d(torch.exp2(torch.randn(n, device=dev) * cfg.saturation_std))))
        for name, make in steps:
            on = self._chance(name, n, dev)
            m = torch.where(on[:, None, None], make(), torch.eye(4, device=dev)) @ m
            applied = applied | on
        if bool(applied.any()) and x.shape[1] != 3:
            raise ValueError(f"colour augmentations need RGB images, got {x.shape[1]} channels")
        return _on_subset(x, applied, lambda i: colour(x[i], m[i]))

    def extra_repr(self) -> str:
        on = [k for k in AugmentConfig.BLIT + AugmentConfig.GEOM + AugmentConfig.COLOR if getattr(self.config, k)]
        return f"p={float(self.p):.3f}, augment={','.join(on)}"


# --------------------------------------------------------------------------- adaptive p


ADA_MODES = ("adaptive", "fixed", "off")


@dataclass(frozen=True)
class AdaConfig:
    """mode: 'adaptive' (p follows the overfitting heuristic), 'fixed' (p stays at ``p``), 'off' (p = 0).

    target: the value of r_t = E[sign(D(real))] that adaptive mode steers towards; interval: D steps
    between adjustments; kimg: thousands of real images over which p can move from 0 to 1.
    """

    mode: str = "adaptive"
    target: float = 0.6
    interval: int = 4
    kimg: float = 500.0
    p: float = 0.0

    def __post_init__(self):
        if self.mode not in ADA_MODES:
            raise UserError(f"ADA mode must be one of {', '.join(ADA_MODES)}, got {self.mode!r}")
        if not 0 <= self.p <= 1:
            raise UserError(f"ADA p must be in [0, 1], got {self.p}")
        if self.interval < 1 or self.kimg <= 0:
            raise UserError("ADA interval must be ≥ 1 and kimg > 0")


class AdaptiveP:
    """Sets ``pipe.p`` from D's outputs on real images.

    Call ``update(real_logits)`` after each discriminator step. Every ``interval`` calls, with
    r_t the mean sign of the logits seen since the last adjustment and n their number,
    p ← clip(p + sign(r_t − target) · n / (kimg · 1000), 0, 1). In distributed training pass every
    rank the logits of all ranks (all_gather), so that all ranks compute the same p.
    """

    def __init__(self, pipe: AugmentPipe, config: AdaConfig | None = None):
        self.pipe, self.config = pipe, config or AdaConfig()
        self.r_t: float | None = None
        self._sign_sum, self._count, self._calls = 0.0, 0, 0
        start = 0.0 if self.config.mode == "off" else self.config.p
        with torch.no_grad():
            self.pipe.p.fill_(start)

    @property
    def p(self) -> float:
        return float(self.pipe.p)

    def state(self) -> dict[str, float]:
        """The pending statistics, for snapshots (p itself is the pipe's buffer)."""
        return {"sign_sum": self._sign_sum, "count": float(self._count), "calls": float(self._calls)}

    def load_state(self, state: dict[str, float]) -> None:
        self._sign_sum, self._count, self._calls = float(state["sign_sum"]), int(state["count"]), int(state["calls"])

    def update(self, real_logits: torch.Tensor) -> float:
        """Record one step's D(real) logits ([N] or [N, 1]); returns the current p."""
        if self.config.mode != "adaptive":
            return self.p
        logits = real_logits.detach()
        self._sign_sum += float(torch.sign(logits).sum())
        self._count += logits.numel()
        self._calls += 1
        if self._calls % self.config.interval == 0 and self._count:
            self.r_t = self._sign_sum / self._count
            direction = (self.r_t > self.config.target) - (self.r_t < self.config.target)
            delta = direction * self._count / (self.config.kimg * 1000)
            with torch.no_grad():
                self.pipe.p.copy_((self.pipe.p + delta).clamp(0, 1))
            self._sign_sum, self._count = 0.0, 0
        return self.p
