"""Seeds and labels → network inputs, exactly as the official NVlabs scripts make them."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from ..errors import UserError

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(text: str | int | Sequence[int]) -> list[int]:
    """'0-8' → [0..8]; '1,2,5-10' → [1, 2, 5, ..., 10]; ints pass through. Seeds are in [0, 2**32)."""
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        return [int(s) for s in text]
    seeds: list[int] = []
    for part in text.split(","):
        m = _RANGE.match(part)
        if not m:
            raise UserError(f"bad seed list {text!r}: use numbers and ranges like '0-8' or '1,2,5-10'")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise UserError(f"bad seed range {part.strip()!r}: the end is before the start")
        if hi >= 2 ** 32:
            raise UserError(f"seed {hi} is too large: seeds are in [0, 2**32)")
        seeds.extend(range(lo, hi + 1))
    return seeds


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The z NVlabs' generate.py draws for ``seed``: RandomState(seed).randn(z_dim), float64."""
    return np.random.RandomState(seed).randn(z_dim)


def seeds_to_z(seeds: Sequence[int] | str, z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """seeds → z: [N, z_dim] float32, one NVlabs-compatible row per seed."""
    seeds = parse_seeds(seeds)
    z = np.stack([seed_to_z(s, z_dim) for s in seeds]) if seeds else np.zeros([0, z_dim])
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)


def tf_seed_inputs(seed: int, z_dim: int, noise_resolutions: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """What the official TF ``run_generator.py`` feeds for ``seed``: one RandomState draws z
    ([z_dim]) and then every noise input ([1, 1, r, r]) in the synthesis network's variable
    order (noise0 at 4×4, then each resolution's Conv0_up and Conv1), float64."""
    rnd = np.random.RandomState(seed)
    z = rnd.randn(1, z_dim)[0]
    return z, [rnd.randn(1, 1, r, r) for r in noise_resolutions]


def seeds_to_tf_inputs(seeds: Sequence[int] | str, z_dim: int, noise_resolutions: Sequence[int],
                       device: torch.device | str = "cpu") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """seeds → (z: [N, z_dim], noise: one [N, 1, r, r] float32 tensor per noise input), TF-exact."""
    seeds = parse_seeds(seeds)
    draws = [tf_seed_inputs(s, z_dim, noise_resolutions) for s in seeds]
    z = torch.from_numpy(np.stack([d[0] for d in draws]).reshape(len(seeds), z_dim))
    noise = [torch.from_numpy(np.concatenate([d[1][i] for d in draws]) if draws else np.zeros([0, 1, r, r]))
             for i, r in enumerate(noise_resolutions)]
    return z.to(device=device, dtype=torch.float32), [n.to(device=device, dtype=torch.float32) for n in noise]


def class_labels(class_idx: int | None, c_dim: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """One-hot labels [n, c_dim] for class ``class_idx`` (None when the network is unconditional)."""
    if c_dim == 0:
        if class_idx is not None:
            raise UserError("this network is unconditional: --class/--labels do not apply")
        return None
    if class_idx is None:
        raise UserError(f"this network is conditional ({c_dim} labels): give --class K or --labels")
    if not 0 <= class_idx < c_dim:
        raise UserError(f"class {class_idx} is out of range: this network has classes 0..{c_dim - 1}")
    c = torch.zeros([n, c_dim], device=device)
    c[:, class_idx] = 1
    return c


def label_vector(values: Sequence[float], c_dim: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """An explicit label vector (multi-hot or soft), repeated: [n, c_dim]."""
    if len(values) != c_dim:
        raise UserError(f"--labels has {len(values)} values, this network takes {c_dim}")
    return torch.tensor([list(values)] * n, dtype=torch.float32, device=device)
