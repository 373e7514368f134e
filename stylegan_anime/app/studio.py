"""The studio's actions as a Python API: roll, keep, morph, merge and animate characters.

Every image is [3, R, R] in [-1, 1]; every w is [num_ws, w_dim], already truncated (what synthesis
draws). The UI calls only these methods; there is no model logic above this module.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from ..editing.directions import Directions, edit
from ..editing.projection import ProjectionConfig, load_target, project
from ..editing.prompts import parse_prompt
from ..editing.tags import chosen_labels, network_label_names, seed_labels, unchosen_labels
from ..errors import UserError
from ..features.generation import synthesize
from ..features.interpolation import interpolation_video
from ..features.render import to_pil
from ..latents import seeds_to_z
from ..latents.style_layers import named_layers
from ..metrics.classifier import label_groups
from .favourites import Favourite, FavouritesStore, network_id, read_zip

GROUPS = ("coarse", "middle", "fine")


def read_prompt(prompt: str, label_names: Sequence[str]) -> dict[int, float]:
    """The prompt box's free text (``sa.prompt_labels``' reading: synonyms, negation, "attr=value")
    → {label entry index: 0/1}. A word it cannot read is a UserError naming it: the page shows the
    message instead of rolling characters that silently ignore part of what was asked."""
    parsed = parse_prompt(prompt, label_names)
    if parsed.unknown:
        read = ", ".join(parsed.tags) or "nothing"
        raise UserError(f"not understood: {', '.join(repr(w) for w in parsed.unknown)} (read: {read}); "
                        f"rephrase or remove it")
    return parsed.chosen


@dataclass
class Character:
    """One drawn character: image [3, R, R] in [-1, 1], w [num_ws, w_dim], z [z_dim] or None,
    labels [c_dim] or None, and the caption the UI shows under it."""

    image: torch.Tensor
    w: torch.Tensor
    psi: float
    seed: int | None = None
    z: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    caption: str = ""


class Studio:
    """The actions for one network ``G``; favourites go to ``store`` (default: the data home's)."""

    def __init__(self, G, store: FavouritesStore | None = None, directions: Directions | None = None):
        self.G, self.directions = G, directions
        self.store = store if store is not None else FavouritesStore()
        self.network = network_id(G)
        self.label_names = network_label_names(G) if G.c_dim else []

    def _draw(self, ws: torch.Tensor) -> torch.Tensor:
        return synthesize(self.G, ws)

    def caption(self, seed: int | None, labels: torch.Tensor | None) -> str:
        """'seed 5 · hair_color=blonde, glasses' (the entries that are on)."""
        on = [n for n, v in zip(self.label_names, labels.tolist()) if v >= 0.5] if labels is not None else []
        return " · ".join(p for p in (f"seed {seed}" if seed is not None else "", ", ".join(on)) if p)

    @torch.no_grad()
    def roll(self, seeds: Sequence[int], psi: float = 0.7, prompt: str = "") -> list[Character]:
        """One character per seed, with the prompt's attributes (unmentioned groups drawn per seed).
        Without a prompt, each seed is the character ``generate --seeds`` draws."""
        seeds = [int(s) for s in seeds]
        c = None
        if self.G.c_dim:
            # As `generate --prompt` draws them: the groups the prompt does not name drawn per seed.
            c = (chosen_labels(read_prompt(prompt, self.label_names), self.label_names, seeds) if prompt.strip()
                 else seed_labels(self.G, seeds))
        elif prompt.strip():
            raise UserError("this network is unconditional: it takes no prompt (morph a favourite along "
                            "attribute directions instead)")
        z = seeds_to_z(seeds, self.G.z_dim, self.G.device)
        ws = self.G.mapping(z, c.to(self.G.device) if c is not None else None, psi=psi)
        images = self._draw(ws)
        return [Character(images[i], ws[i].cpu(), psi, s, z[i].cpu(), c[i] if c is not None else None,
                          self.caption(s, c[i] if c is not None else None)) for i, s in enumerate(seeds)]

    def keep(self, ch: Character, name: str = "") -> int:
        """Store ``ch`` as a favourite of this network; returns its id."""
        buf = io.BytesIO()
        to_pil(ch.image[None])[0].resize((128, 128)).save(buf, format="PNG")
        return self.store.add(self.network, name or ch.caption or "character", ch.w.numpy(), ch.psi,
                              buf.getvalue(), seed=ch.seed,
                              labels=ch.labels.tolist() if ch.labels is not None else None,
                              z=ch.z.numpy() if ch.z is not None else None)

    def favourites(self) -> list[Favourite]:
        return self.store.list(self.network)

    def favourite(self, fav_id: int) -> Favourite:
        fav = self.store.get(fav_id)
        if fav.network != self.network:
            raise UserError(f"favourite {fav_id} belongs to another network ({fav.network})")
        return fav

    def character(self, fav: Favourite) -> Character:
        w = torch.from_numpy(fav.w)
        labels = torch.tensor(fav.labels) if fav.labels is not None else None
        return Character(self._draw(w[None])[0], w, fav.psi, fav.seed,
                         torch.from_numpy(fav.z) if fav.z is not None else None, labels, fav.name)

    @torch.no_grad()
    def morph(self, fav_id: int, prompt: str = "", strengths: Mapping[str, float] | None = None,
              steps: int = 5) -> list[Character]:
        """The strip from favourite ``fav_id`` to its changed self, ``steps`` >= 2 characters.

        Conditional network: the prompt's labels replace the favourite's (z kept; groups the
        prompt does not name stay as they were), labels blended linearly along the strip.
        Unconditional: w moves along ``self.directions`` by ``strengths`` (in std units)."""
        if steps < 2:
            raise UserError("a morph strip needs at least 2 steps")
        fav = self.favourite(fav_id)
        t = torch.linspace(0, 1, steps)
        if self.G.c_dim:
            ws, labels = self._morph_labels(fav, prompt, t)
        else:
            if self.directions is None:
                raise UserError("morphing an unconditional network needs attribute directions "
                                "(stylegan-anime directions, then --directions)")
            w = torch.from_numpy(fav.w)
            ws = torch.stack([edit(w, self.directions, {k: float(s) * float(ti) for k, s in (strengths or {}).items()})
                              for ti in t])
            labels = [None] * steps
        images = self._draw(ws)
        return [Character(images[i], ws[i].cpu(), fav.psi, fav.seed, torch.from_numpy(fav.z) if fav.z is not None
                          else None, labels[i], self.caption(fav.seed, labels[i])) for i in range(steps)]

    def _morph_labels(self, fav: Favourite, prompt: str, t: torch.Tensor):
        if fav.z is None or fav.labels is None:
            raise UserError("this favourite has no z and labels (a projected one): morph it with directions")
        old = torch.tensor(fav.labels, dtype=torch.float32)
        hit = read_prompt(prompt, self.label_names)
        chosen = chosen_labels(hit, self.label_names, [fav.seed or 0])[0]
        named = torch.zeros_like(old, dtype=torch.bool)
        for g in label_groups(self.label_names):  # the groups the prompt names replace the old ones
            named[g.start:g.start + g.width] |= any(g.start <= i < g.start + g.width for i in hit)
        new = torch.where(named, chosen, old)
        labels = [old + (new - old) * ti for ti in t]
        z = torch.from_numpy(fav.z)[None].expand(len(t), -1).to(self.G.device)
        ws = self.G.mapping(z, torch.stack(labels).to(self.G.device), psi=fav.psi)
        return ws, labels

    @torch.no_grad()
    def merge(self, a_id: int, b_id: int, mix: Mapping[str, float]) -> Character:
        """A and B → one: for each layer group (coarse / middle / fine) its ws go from A's (0) to B's (1)."""
        a, b = self.favourite(a_id), self.favourite(b_id)
        wa, wb = torch.from_numpy(a.w), torch.from_numpy(b.w)
        out = wa.clone()
        for group, amount in mix.items():
            if group not in GROUPS:
                raise UserError(f"unknown layer group {group!r}: use {', '.join(GROUPS)}")
            if not 0 <= amount <= 1:
                raise UserError(f"{group} mix must be between 0 (A) and 1 (B), got {amount}")
            idx = named_layers(self.G.synthesis, group)
            out[idx] = wa[idx] + (wb[idx] - wa[idx]) * float(amount)
        return Character(self._draw(out[None])[0], out, a.psi, caption=f"{a.name} × {b.name}")

    def animate(self, fav_ids: Sequence[int], path: str | Path, frames_per_transition: int = 24,
                fps: float = 24, loop: bool = True, progress: bool = False) -> Path:
        """An interpolation video (.gif / .mp4) in w through the favourites, in order."""
        if len(fav_ids) < 2:
            raise UserError("pick at least two favourites to animate between")
        keys = [self.favourite(i).latent() for i in fav_ids]
        return interpolation_video(self.G, keys, path, frames_per_transition=frames_per_transition, fps=fps,
                                   space="w", loop=loop, progress=progress)

    def import_zip(self, path: str | Path) -> list[int]:
        """Keep every latent in a zip of ``.npz`` files (as ``export_zip`` writes) as a favourite; their ids."""
        ids = []
        for name, latent in read_zip(path):
            w = latent.ws(self.G)[0].cpu()  # a saved w as it is; a saved z mapped (psi 1)
            ids.append(self.keep(Character(self._draw(w[None])[0], w, 1.0, z=latent.z, labels=latent.c), name))
        return ids

    def project(self, image_path: str | Path, steps: int = 200, cfg: ProjectionConfig | None = None,
                progress: bool = False) -> Character:
        """A picture → the character whose image is nearest it (one w, the network's own noise kept,
        so the w alone redraws it). cfg overrides the defaults (``steps``, w mode, noise not optimised)."""
        cfg = cfg or ProjectionConfig(steps=int(steps), optimize_noise=False)
        target = load_target(image_path, self.G.img_resolution, self.G.img_channels)
        c = unchosen_labels(self.label_names) if self.G.c_dim else None
        result = project(self.G, target, cfg, c=c, progress=progress)
        w = result.latent.w
        return Character(self._draw(w[None])[0], w, 1.0, labels=c[0] if c is not None else None,
                         caption=f"projected · PSNR {result.psnr:.1f} dB")
