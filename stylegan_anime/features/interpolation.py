"""Latent paths: lerp / slerp between keyframes, easing, frame schedules, and the frames of an
interpolation video (one path per grid cell), generated lazily in batches.

Positions along a path are floats u in [0, T], T = number of transitions: keyframe k sits at
u = k. An open path through K keyframes has T = K - 1; a closed loop has T = K and ends where
it began.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..latents.keyframes import Keyframe, keyframe_c, keyframe_ws, keyframe_z, parse_keyframe_groups, parse_keyframes
from ..networks.modulated_conv import NOISE_MODES
from .generation import synthesize_with_plan
from .render import make_grid, to_pil
from .video import output_size, write_video

SPACES = ("w", "z", "slerp")
EASINGS = ("linear", "ease-in-out")
CELL_SEED_STRIDE = 1000  # grid cell i, when not given its own keyframes, walks the seeds + i * this


def _ends_exact(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # Arithmetic rounds a little even at t = 0 or 1; keyframes must be hit bit-exactly.
    return torch.where(t == 0, a, torch.where(t == 1, b, out))


def _as_t(t, a: torch.Tensor) -> torch.Tensor:
    """t: scalar or [B] → broadcastable against a: [B, ...D]."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    return t.reshape(t.shape + (1,) * (a.ndim - t.ndim))


def lerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """Straight line: a, b: [B, ...]; t: scalar or [B] in [0, 1] → [B, ...]."""
    t = _as_t(t, a)
    return _ends_exact(a + (b - a) * t, a, b, t)


def slerp(a: torch.Tensor, b: torch.Tensor, t, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation over the last dim: a, b: [..., D]; t: scalar or [...] in [0, 1].

    The direction turns along the great circle from a to b while the length goes linearly from
    |a| to |b|, so unit vectors stay unit and Gaussian z keep the norm the mapping network was
    trained on (a straight line through the middle of the sphere does not). Nearly parallel
    vectors fall back to lerp.
    """
    t = _as_t(t, a[..., 0]).unsqueeze(-1)
    a64, b64, t64 = a.double(), b.double(), t.double()
    na, nb = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)
    ua, ub = a64 / na.clamp_min(eps), b64 / nb.clamp_min(eps)
    theta = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1).acos()
    s = theta.sin()
    safe_s = torch.where(s < eps, torch.ones_like(s), s)
    direction = torch.where(s < eps, ua + (ub - ua) * t64,
                            ((1 - t64) * theta).sin() / safe_s * ua + (t64 * theta).sin() / safe_s * ub)
    out = (direction * (na + (nb - na) * t64)).to(a.dtype)
    return _ends_exact(out, a, b, t)


def ease(t: np.ndarray, easing: str = "linear") -> np.ndarray:
    """t in [0, 1] → eased t in [0, 1]; 'ease-in-out' (smoothstep) slows down at each keyframe."""
    if easing == "linear":
        return t
    if easing == "ease-in-out":
        return t * t * (3 - 2 * t)
    raise UserError(f"easing must be one of {', '.join(EASINGS)}, got {easing!r}")


@dataclass(frozen=True)
class FrameSchedule:
    """Which path position each video frame shows.

    An open path's frames run from the first keyframe to the last, both included. A loop's
    frames stop one step short of the end, which is the first keyframe again: the video
    repeats without showing that frame twice.
    """

    num_keys: int
    frames: int
    loop: bool = False
    easing: str = "linear"

    def __post_init__(self) -> None:
        if self.num_keys < 2:
            raise UserError(f"a path needs at least 2 keyframes, got {self.num_keys}")
        if self.frames < 2:
            raise UserError(f"a video needs at least 2 frames, got {self.frames}")
        ease(np.zeros(1), self.easing)

    @property
    def transitions(self) -> int:
        return self.num_keys if self.loop else self.num_keys - 1

    def raw_positions(self, start: int, stop: int) -> np.ndarray:
        """Uneased positions u in [0, transitions] of frames [start, stop): float64 [stop - start]."""
        i = np.arange(start, stop, dtype=np.float64)
        steps = self.frames if self.loop else self.frames - 1
        return i * self.transitions / steps

    def segments(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(transition index k, eased t in [0, 1]) per frame: the frame lies between keyframes k and k + 1."""
        u = self.raw_positions(start, stop)
        k = np.minimum(np.floor(u).astype(np.int64), self.transitions - 1)
        return k, ease(u - k, self.easing)


def make_schedule(num_keys: int, frames: int | None = None, frames_per_transition: int | None = None,
                  duration: float | None = None, fps: float = 30, loop: bool = False,
                  easing: str = "linear") -> FrameSchedule:
    """Give exactly one of: total ``frames``, ``frames_per_transition``, or ``duration`` seconds at ``fps``."""
    given = [v is not None for v in (frames, frames_per_transition, duration)]
    if sum(given) != 1:
        raise UserError("give exactly one of frames, frames per transition or duration")
    transitions = num_keys if loop else num_keys - 1
    if frames_per_transition is not None:
        if frames_per_transition < 1:
            raise UserError(f"frames per transition must be at least 1, got {frames_per_transition}")
        frames = transitions * frames_per_transition + (0 if loop else 1)
    elif duration is not None:
        if duration <= 0 or fps <= 0:
            raise UserError("duration and fps must be positive")
        frames = max(2, round(duration * fps))
    return FrameSchedule(num_keys, int(frames), loop, easing)


class KeyframePath:
    """One cell's path: keyframes in z (space 'z' / 'slerp') or in ws (space 'w').

    Only the K keyframes are held; ``ws(k, t)`` computes the ws of any batch of positions.
    """

    def __init__(self, G, keys: Sequence[Keyframe], space: str = "w", psi: float = 1.0,
                 cutoff: int | None = None, c: torch.Tensor | None = None):
        if space not in SPACES:
            raise UserError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
        self.G, self.space, self.psi, self.cutoff, self.c = G, space, psi, cutoff, c
        self.key_c: torch.Tensor | None = None
        if space == "w":
            self.keys = torch.stack([keyframe_ws(G, k, psi, cutoff, c) for k in keys])  # [K, num_ws, w_dim]
        else:
            self.keys = torch.stack([keyframe_z(G, k) for k in keys])  # [K, z_dim]
            if G.c_dim and c is None:   # each keyframe's own labels, blended along with z
                self.key_c = torch.cat([keyframe_c(G, k) for k in keys])  # [K, c_dim]

    def __len__(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def ws(self, k: np.ndarray, t: np.ndarray) -> torch.Tensor:
        """k: [B] transition indices, t: [B] in [0, 1] → ws: [B, num_ws, w_dim] (truncated with psi)."""
        ka = torch.as_tensor(k, device=self.keys.device)
        a, b = self.keys[ka], self.keys[(ka + 1) % len(self)]
        tt = torch.as_tensor(t, dtype=torch.float32, device=self.keys.device)
        if self.space == "w":
            return lerp(a, b, tt)
        z = slerp(a, b, tt) if self.space == "slerp" else lerp(a, b, tt)
        c = self.c.expand(z.shape[0], -1) if self.c is not None else None
        if self.key_c is not None:
            c = lerp(self.key_c[ka], self.key_c[(ka + 1) % len(self)], tt)
        return self.G.mapping(z, c, psi=self.psi, cutoff=self.cutoff)


def cell_keyframes(groups: Sequence[Sequence[Keyframe]], cells: int) -> list[list[Keyframe]]:
    """One keyframe list per grid cell. Given one group for several cells, cell i walks the same
    seeds + i * CELL_SEED_STRIDE (saved latents stay as they are); given one group per cell, each
    cell walks its own."""
    groups = [list(g) for g in groups]
    if len(groups) == 1 and cells > 1:
        return [[(k + i * CELL_SEED_STRIDE) % 2 ** 32 if isinstance(k, int) else k for k in groups[0]]
                for i in range(cells)]
    if len(groups) != cells:
        raise UserError(f"{len(groups)} keyframe groups for {cells} grid cells: give one group, or one per cell")
    if len({len(g) for g in groups}) != 1:
        raise UserError("every grid cell's path needs the same number of keyframes")
    return groups


def _resize(image: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    return image if size is None or image.size == size else image.resize(size, Image.LANCZOS)


@torch.no_grad()
def interpolation_frames(G, paths: Sequence[KeyframePath], schedule: FrameSchedule, cols: int = 1,
                         noise_mode: str = "const", batch_size: int = 8,
                         size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Yield the video's frames one by one: uint8 [H, W, 3], cells of ``paths`` tiled row by row.

    Frames are drawn in batches of about ``batch_size`` images; nothing is kept between batches,
    so memory does not grow with the number of frames.
    """
    if noise_mode not in NOISE_MODES:
        raise UserError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    if any(len(p) != schedule.num_keys for p in paths):
        raise UserError("every path must have the schedule's number of keyframes")
    frames_per_batch = max(1, batch_size // len(paths))
    plan = None
    for start in range(0, schedule.frames, frames_per_batch):
        stop = min(start + frames_per_batch, schedule.frames)
        k, t = schedule.segments(start, stop)
        ws = torch.stack([p.ws(k, t) for p in paths], dim=1).flatten(0, 1)  # [frames * cells, num_ws, w_dim]
        # Kept across the yields, rebuilt if the caller's code changed the weights in between.
        plan = G.plan(G.device, max(1, batch_size)) if plan is None else plan.refreshed()
        images = synthesize_with_plan(plan, ws, noise_mode)
        tiles = to_pil(images)
        for f in range(stop - start):
            cell_tiles = tiles[f * len(paths): (f + 1) * len(paths)]
            yield np.asarray(_resize(make_grid(cell_tiles, cols=cols), size))


def interpolation_video(G, seeds, path: str | Path, frames: int | None = None,
                        frames_per_transition: int | None = None, duration: float | None = None,
                        fps: float = 30, space: str = "slerp", loop: bool = False, easing: str = "linear",
                        grid: tuple[int, int] = (1, 1), psi: float = 1.0, cutoff: int | None = None,
                        c: torch.Tensor | None = None, noise_mode: str = "const", size=None,
                        gif_loop: int | None = 0, batch_size: int = 8, progress: bool = True) -> Path:
    """Write an interpolation video (.gif or .mp4) through ``seeds``; returns the path.

    seeds: '0,5,9' or '0,5,a.npz' (or a list of keyframes): one path, or a list of such paths,
    one per grid cell.
    grid: (cols, rows), each cell its own path (see ``cell_keyframes``). Without frames,
    frames_per_transition and duration: 60 frames per transition. space: w | z | slerp.
    size: output (width, height), or an int for the longer side. c: [1, c_dim] labels.
    """
    if isinstance(seeds, str):
        groups = parse_keyframe_groups(seeds)
    elif seeds and isinstance(seeds[0], (list, tuple)):
        groups = [parse_keyframes(g) for g in seeds]
    else:
        groups = [parse_keyframes(seeds)]
    cols, rows = grid
    cells = cell_keyframes(groups, cols * rows)
    if frames is None and frames_per_transition is None and duration is None:
        frames_per_transition = 60
    schedule = make_schedule(len(cells[0]), frames, frames_per_transition, duration, fps, loop, easing)
    paths = [KeyframePath(G, keys, space, psi, cutoff, c) for keys in cells]
    frame_size = output_size((cols * G.img_resolution, rows * G.img_resolution), size, Path(path).suffix)
    return write_video(interpolation_frames(G, paths, schedule, cols, noise_mode, batch_size, frame_size), path,
                       fps=fps, gif_loop=gif_loop, total=schedule.frames, progress=progress)
