"""Attribute axes in w space (TL-GAN style): label sampled images with a classifier, fit one direction per label.

A direction is a unit vector in w space with ``std``, the spread of the sampled ws along it, so that
strength 1 moves a w by one standard deviation of the data along the axis. Saved as ``.npz`` with
``names`` [K], ``vectors`` [K, w_dim] and ``std`` [K].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..io.atomic import atomic_path
from ..errors import UserError
from ..latents import seeds_to_z
from .tags import parse_tags, tag_labels


@dataclass
class Directions:
    """names: K label entries; vectors: [K, w_dim] unit rows; std: [K] w spread along each row."""

    names: list[str]
    vectors: torch.Tensor
    std: torch.Tensor

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.names:
            raise UserError(f"no direction {name!r} (have: {', '.join(self.names)})")
        return self.vectors[self.names.index(name)]

    def scale(self, name: str) -> float:
        return float(self.std[self.names.index(name)])


@torch.no_grad()
def sample_labelled_w(G, classifier, samples: int, seed: int = 0, batch_size: int = 16, progress: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeds seed..seed+samples-1 → (w [N, w_dim] untruncated, classifier probabilities [N, c_dim]).

    Conditional networks get labels sampled per seed (see ``tags.tag_labels``)."""
    ws, probs = [], []
    for i in tqdm(range(0, samples, batch_size), desc="label samples", unit="batch", disable=not progress):
        seeds = list(range(seed + i, seed + min(i + batch_size, samples)))
        z = seeds_to_z(seeds, G.z_dim).to(G.device)
        c = None
        if G.c_dim:
            from .tags import network_label_names
            c = tag_labels([], network_label_names(G), seeds).to(G.device)
        w = G.mapping(z, c)
        img = G.synthesis(w)
        ws.append(w[:, 0].float().cpu())
        probs.append(classifier.predict(img).float().cpu())
    return torch.cat(ws), torch.cat(probs)


def fit_directions(w: torch.Tensor, labels: torch.Tensor, names: Sequence[str], ridge: float = 1e-3) -> Directions:
    """Least squares of each centred label on centred w (closed form, ridge-regularised).

    w: [N, w_dim]; labels: [N, K] (probabilities or 0/1) → K unit directions: the regression
    weight of each label, i.e. the w axis along which that label's score grows fastest."""
    if w.ndim != 2 or labels.ndim != 2 or w.shape[0] != labels.shape[0]:
        raise UserError(f"need w [N, w_dim] and labels [N, K], got {list(w.shape)} and {list(labels.shape)}")
    if labels.shape[1] != len(names):
        raise UserError(f"{len(names)} names for {labels.shape[1]} labels")
    if w.shape[0] < 2:
        raise UserError("fitting directions needs at least 2 samples")
    w64, y64 = w.double(), labels.double()
    wc, yc = w64 - w64.mean(0), y64 - y64.mean(0)
    gram = wc.T @ wc / len(wc)
    lam = ridge * gram.diagonal().mean()
    beta = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), wc.T @ yc / len(wc))
    norms = beta.norm(dim=0)
    if bool((norms == 0).any()):
        flat = [n for n, v in zip(names, norms) if v == 0]
        raise UserError(f"labels {', '.join(flat)} do not vary over the samples: no direction to fit")
    vectors = (beta / norms).T
    std = (wc @ vectors.T).std(dim=0)
    return Directions(list(names), vectors.float(), std.float())


def orthogonalize(directions: Directions, names: Sequence[str], against: Sequence[str] = ()) -> Directions:
    """Gram–Schmidt: each of ``names`` (in order) loses its components along ``against`` and along the
    earlier ``names``, so moving along one leaves the others' scores alone (to first order).

    Returns the chosen directions only, unit length, with their std re-measured as the old std
    times the surviving share of the vector."""
    basis: list[torch.Tensor] = []
    for n in against:
        v = directions[n].double()
        for b in basis:
            v = v - (v @ b) * b
        if v.norm() > 1e-6:
            basis.append(v / v.norm())
    out, stds = [], []
    for n in names:
        v = directions[n].double()
        for b in basis:
            v = v - (v @ b) * b
        if v.norm() < 1e-6:
            raise UserError(f"direction {n!r} lies in the span of {', '.join(list(against) + list(names))}")
        out.append((v / v.norm()).float())
        stds.append(directions.scale(n) * float(v.norm()))
        basis.append(v / v.norm())
    if not out:
        return Directions([], directions.vectors[:0], directions.std[:0])
    return Directions(list(names), torch.stack(out), torch.tensor(stds))


def edit(w: torch.Tensor, directions: Directions, strengths: Mapping[str, float]) -> torch.Tensor:
    """w: [..., w_dim] (a w, or ws [N, num_ws, w_dim]: every layer moves) → w + Σ s · std · direction.

    Strength s is in standard deviations of the sampled ws along the direction."""
    out = w.clone()
    for name, s in strengths.items():
        out = out + float(s) * directions.scale(name) * directions[name].to(w.device, w.dtype)
    return out


def tag_strengths(prompt: str | Sequence[str], directions: Directions, strength: float = 1.0) -> dict[str, float]:
    """``"blonde hair, no glasses"`` → {"hair_color=blonde": +strength, "glasses": -strength}."""
    return {directions.names[i]: strength if on else -strength
            for i, on in parse_tags(prompt, directions.names).items()}


def save_directions(directions: Directions, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"directions are saved as .npz, got {path.name}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, names=np.array(directions.names), vectors=directions.vectors.numpy(),
                     std=directions.std.numpy())
    return path


def load_directions(path: str | Path) -> Directions:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as d:
            return Directions([str(n) for n in d["names"]], torch.from_numpy(d["vectors"]).float(),
                              torch.from_numpy(d["std"]).float())
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"{path} is not a directions file (names, vectors, std): {e}") from None


def find_directions(G, classifier, samples: int = 2000, seed: int = 0, progress: bool = False) -> Directions:
    """Sample, label and fit: one direction per classifier label entry (``classifier.cfg.label_names``)."""
    w, probs = sample_labelled_w(G, classifier, samples, seed=seed, progress=progress)
    names = list(classifier.cfg.label_names)
    keep = [i for i in range(len(names)) if float(probs[:, i].std()) > 1e-6]
    if not keep:
        raise UserError("the classifier gives the same scores to every sample: no direction to fit")
    return fit_directions(w, probs[:, keep], [names[i] for i in keep])


@torch.no_grad()
def edit_grid(G, seeds: Sequence[int], directions: Directions, strengths: Mapping[str, float],
              steps: int = 5, psi: float = 1.0, keep: Sequence[str] = ()) -> torch.Tensor:
    """Rows = seeds, columns = the edit scaled from -1 to +1 in ``steps`` steps → images [rows*steps, C, R, R].

    The edited directions are first made orthogonal to each other and to ``keep``."""
    if steps < 2:
        raise UserError("an edit grid needs at least 2 steps")
    ortho = orthogonalize(directions, list(strengths), [k for k in keep if k not in strengths])
    z = seeds_to_z(list(seeds), G.z_dim).to(G.device)
    c = None
    if G.c_dim:
        from .tags import network_label_names
        c = tag_labels([], network_label_names(G), list(seeds)).to(G.device)
    ws = G.mapping(z, c, psi=psi)
    out = []
    plan = G.plan(G.device, 1)
    for w in ws:
        for t in torch.linspace(-1, 1, steps).tolist():
            out.append(plan.synthesize(edit(w[None], ortho, {n: t * s for n, s in strengths.items()})).cpu())
    return torch.cat(out)
