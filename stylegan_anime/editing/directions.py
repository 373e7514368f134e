"""Attribute axes in w space (TL-GAN style): label sampled images with a classifier, fit one direction per label.

A direction is a unit vector in w space with ``std``, the spread of the sampled ws along it, so that
strength 1 moves a w by one standard deviation of the data along the axis. Saved as ``.npz`` with
``names`` [K], ``vectors`` [K, w_dim], ``std`` [K] and ``method`` ("regression" here, "sefa" from
``editing.sefa``); optionally ``layers`` (the ws an edit moves; absent: all), ``r2`` [K] (held-out fit
quality of a regression) and ``eigenvalues`` [K] (SeFa). Files without ``method`` are regression ones.

The axis of a label is cov(w, label) (``fit_directions`` says why not the least-squares weight).
Fit quality: each label's score is predicted from w by a ridge regression, fitted on 4/5 of
the samples and scored on the other 1/5 (5 folds): R² = 1 − SSE / SST on held-out samples. A label
w cannot predict (R² < ``MIN_R2`` = 0.1: w explains under a tenth of its variance) gives an axis that
mostly moves other things; `directions` refuses to write it, and warns below ``WEAK_R2`` = 0.3.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..io.atomic import save_npz
from ..errors import UserError
from ..latents import seeds_to_z
from .tags import parse_tags, seed_labels

METHODS = ("regression", "sefa")
MIN_R2 = 0.1   # below: refused (the label is not a linear function of w to speak of)
WEAK_R2 = 0.3  # below: kept with a warning
FOLDS = 5


@dataclass
class Directions:
    """names: K label entries; vectors: [K, w_dim] unit rows; std: [K] w spread along each row.

    method: "regression" | "sefa"; layers: ws indices an edit of ws [N, num_ws, w_dim] moves (None:
    all); r2: [K] held-out R² of each label from w (regression); eigenvalues: [K] (SeFa)."""

    names: list[str]
    vectors: torch.Tensor
    std: torch.Tensor
    method: str = "regression"
    layers: tuple[int, ...] | None = None
    r2: torch.Tensor | None = None
    eigenvalues: torch.Tensor | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown direction method {self.method!r} (known: {', '.join(METHODS)})")

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

    Conditional networks get labels sampled per seed (see ``tags.seed_labels``)."""
    ws, probs = [], []
    for i in tqdm(range(0, samples, batch_size), desc="label samples", unit="batch", disable=not progress):
        seeds = list(range(seed + i, seed + min(i + batch_size, samples)))
        z = seeds_to_z(seeds, G.z_dim).to(G.device)
        c = None
        if G.c_dim:
            c = seed_labels(G, seeds).to(G.device)
        w = G.mapping(z, c)
        img = G.synthesis(w)
        ws.append(w[:, 0].float().cpu())
        probs.append(classifier.predict(img).float().cpu())
    return torch.cat(ws), torch.cat(probs)


def _ridge_beta(wc: torch.Tensor, yc: torch.Tensor, ridge: float) -> torch.Tensor:
    """Centred w [N, D], centred labels [N, K] (float64) → ridge regression weights [D, K]."""
    gram = wc.T @ wc / len(wc)
    lam = ridge * gram.diagonal().mean()
    return torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), wc.T @ yc / len(wc))


def held_out_r2(w: torch.Tensor, labels: torch.Tensor, folds: int = FOLDS, ridge: float = 1e-3) -> torch.Tensor:
    """w: [N, w_dim], labels: [N, K] → [K] R² of each label predicted from w on samples the fit did not see.

    K-fold (samples split in order): each fold is predicted by the regression of the others; R² =
    1 − Σ(y − ŷ)² / Σ(y − ȳ)² over all held-out predictions. 1: w predicts the label exactly; ≤ 0: no
    better than the mean. A label that never varies gets R² 0."""
    n = w.shape[0]
    if n < 2 * folds:
        raise UserError(f"measuring fit quality needs at least {2 * folds} samples, got {n}")
    w64, y64 = w.double(), labels.double()
    pred = torch.empty_like(y64)
    bounds = torch.linspace(0, n, folds + 1).round().long().tolist()
    for lo, hi in zip(bounds, bounds[1:]):
        train = torch.cat([torch.arange(0, lo), torch.arange(hi, n)])
        wm, ym = w64[train].mean(0), y64[train].mean(0)
        beta = _ridge_beta(w64[train] - wm, y64[train] - ym, ridge)
        pred[lo:hi] = (w64[lo:hi] - wm) @ beta + ym
    sst = ((y64 - y64.mean(0)) ** 2).sum(0)
    r2 = 1 - ((y64 - pred) ** 2).sum(0) / sst.clamp_min(1e-300)
    return torch.where(sst > 0, r2, torch.zeros_like(r2)).float()


def fit_directions(w: torch.Tensor, labels: torch.Tensor, names: Sequence[str]) -> Directions:
    """One axis per label: the covariance of the centred label with centred w, cov(w, y).

    w: [N, w_dim]; labels: [N, K] (probabilities or 0/1) → K unit directions. For 0/1 labels this is
    the difference of the class means of w, the direction along which the samples themselves change
    from one value to the other. It is the limit of ridge regression for a large ridge, and equals
    the least-squares axis when w is isotropic (TL-GAN's z); in w, which is not, the least-squares
    axis is a discriminative one with little spread that moves images hardly at all (on the bundled
    default: cosine 0.19 with the blonde mean difference, +20 std → judged blonde 11 % → 17 %,
    where 1.5 × the mean difference gives 97 %). The fit quality (``held_out_r2``) is a ridge fit's."""
    if w.ndim != 2 or labels.ndim != 2 or w.shape[0] != labels.shape[0]:
        raise UserError(f"need w [N, w_dim] and labels [N, K], got {list(w.shape)} and {list(labels.shape)}")
    if labels.shape[1] != len(names):
        raise UserError(f"{len(names)} names for {labels.shape[1]} labels")
    if w.shape[0] < 2:
        raise UserError("fitting directions needs at least 2 samples")
    w64, y64 = w.double(), labels.double()
    wc, yc = w64 - w64.mean(0), y64 - y64.mean(0)
    beta = wc.T @ yc / len(wc)   # [D, K]
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
        return replace(directions, names=[], vectors=directions.vectors[:0], std=directions.std[:0], r2=None,
                       eigenvalues=None)
    # Fit quality and eigenvalues belong to the original axes, not the orthogonalised ones.
    return replace(directions, names=list(names), vectors=torch.stack(out), std=torch.tensor(stds), r2=None,
                   eigenvalues=None)


def edit(w: torch.Tensor, directions: Directions, strengths: Mapping[str, float]) -> torch.Tensor:
    """w: [..., w_dim] (a w, or ws [N, num_ws, w_dim]) → w + Σ s · std · direction.

    Strength s is in standard deviations of the sampled ws along the direction. Of ws, only the
    ``directions.layers`` move (all when None); a single w [N, w_dim] always moves as a whole."""
    step = torch.zeros(w.shape[-1], dtype=w.dtype, device=w.device)
    for name, s in strengths.items():
        step = step + float(s) * directions.scale(name) * directions[name].to(w.device, w.dtype)
    if directions.layers is None or w.ndim != 3:
        return w + step
    if max(directions.layers) >= w.shape[1]:
        raise UserError(f"these directions edit ws {max(directions.layers)} but the network has {w.shape[1]} ws")
    mask = torch.zeros(w.shape[1], 1, dtype=w.dtype, device=w.device)
    mask[list(directions.layers)] = 1
    return w + mask * step


def tag_strengths(prompt: str | Sequence[str], directions: Directions, strength: float = 1.0) -> dict[str, float]:
    """``"blonde hair, no glasses"`` → {"hair_color=blonde": +strength, "glasses": -strength}."""
    return {directions.names[i]: strength if on else -strength
            for i, on in parse_tags(prompt, directions.names).items()}


def save_directions(directions: Directions, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"directions are saved as .npz, got {path.name}")
    arrays = dict(names=np.array(directions.names), vectors=directions.vectors.numpy(),
                  std=directions.std.numpy(), method=np.array(directions.method))
    if directions.layers is not None:
        arrays["layers"] = np.array(directions.layers, dtype=np.int64)
    for key in ("r2", "eigenvalues"):
        if getattr(directions, key) is not None:
            arrays[key] = getattr(directions, key).numpy()
    return save_npz(path, arrays)


def load_directions(path: str | Path) -> Directions:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as d:
            optional = {k: torch.from_numpy(d[k]).float() for k in ("r2", "eigenvalues") if k in d.files}
            return Directions([str(n) for n in d["names"]], torch.from_numpy(d["vectors"]).float(),
                              torch.from_numpy(d["std"]).float(),
                              method=str(d["method"]) if "method" in d.files else "regression",
                              layers=tuple(int(i) for i in d["layers"]) if "layers" in d.files else None, **optional)
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"{path} is not a directions file (names, vectors, std): {e}") from None


def weak_directions(directions: Directions, below: float = WEAK_R2) -> dict[str, float]:
    """{name: held-out R²} of the regression directions whose R² is under ``below`` (none for SeFa)."""
    if directions.r2 is None:
        return {}
    return {n: float(r) for n, r in zip(directions.names, directions.r2) if float(r) < below}


def drop_weak(directions: Directions, min_r2: float = MIN_R2) -> tuple[Directions, dict[str, float]]:
    """(the directions with held-out R² ≥ min_r2, {refused name: R²})."""
    refused = weak_directions(directions, min_r2)
    keep = [i for i, n in enumerate(directions.names) if n not in refused]
    if not keep:
        raise UserError(f"no direction fits: every label's held-out R² from w is below {min_r2} "
                        f"({', '.join(f'{n} {r:.2f}' for n, r in refused.items())})")
    r2 = directions.r2[keep] if directions.r2 is not None else None
    return replace(directions, names=[directions.names[i] for i in keep], vectors=directions.vectors[keep],
                   std=directions.std[keep], r2=r2), refused


def find_directions(G, classifier, samples: int = 2000, seed: int = 0, progress: bool = False) -> Directions:
    """Sample, label and fit: one direction per classifier label entry (``classifier.cfg.label_names``),
    fitted on all samples, with each label's held-out R² (``held_out_r2``; needs ≥ 10 samples)."""
    w, probs = sample_labelled_w(G, classifier, samples, seed=seed, progress=progress)
    names = list(classifier.cfg.label_names)
    keep = [i for i in range(len(names)) if float(probs[:, i].std()) > 1e-6]
    if not keep:
        raise UserError("the classifier gives the same scores to every sample: no direction to fit")
    dirs = fit_directions(w, probs[:, keep], [names[i] for i in keep])
    return replace(dirs, r2=held_out_r2(w, probs[:, keep]))


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
        c = seed_labels(G, list(seeds)).to(G.device)
    ws = G.mapping(z, c, psi=psi)
    out = []
    plan = G.plan(G.device, 1)
    for w in ws:
        for t in torch.linspace(-1, 1, steps).tolist():
            out.append(plan.synthesize(edit(w[None], ortho, {n: t * s for n, s in strengths.items()})).cpu())
    return torch.cat(out)
