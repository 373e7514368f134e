"""Tag prompts ("blonde hair, blue eyes, twintails, glasses") → label vectors in a network's label order.

A network's label entries are either vocabulary entries (``"hair_color=blonde"``, ``"glasses"``, see
``data/attributes.py``) or free tags (``"blonde hair"``, from a CSV of tags). Each entry answers to its
prompt tag, its own name and the synonyms below, compared case-, ``_``/``-``- and spacing-insensitively.

Groups a prompt does not mention: a categorical group (one-hot, e.g. hair colour) is sampled from the
seed (deterministically, independent of z) when a seed is given, otherwise it gets uniform soft labels
(1/width each); a binary entry (glasses) is 0, since a prompt lists what is there. ``"no glasses"``
sets a binary entry to 0 explicitly (and, for directions, means "move away from").
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..data.attributes import ATTRIBUTES
from ..errors import UserError
from ..metrics.classifier import LabelGroup, label_groups

# Whole-word spellings → the vocabulary's; applied to the network's tags and to prompts alike.
WORD_SYNONYMS = {"blond": "blonde", "grey": "silver", "gray": "silver", "white": "silver", "eye": "eyes",
                 "twintail": "twintails", "pigtails": "twintails", "smiling": "smile", "blushing": "blush",
                 "eyeglasses": "glasses", "spectacles": "glasses", "cap": "hat", "violet": "purple",
                 "golden": "blonde", "gold": "blonde", "orange": "red", "ginger": "red"}
PHRASE_SYNONYMS = {"twin tails": "twintails", "pony tail": "ponytail", "ribbon": "hair ribbon",
                   "bow": "hair ribbon", "hair bow": "hair ribbon", "fringe": "bangs", "twintails hair": "twintails",
                   "ponytail hair": "ponytail", "closed mouth": "closed mouth", "mouth open": "open mouth"}
NEGATIONS = ("no ", "without ", "not ")
LABEL_NAMES_KEY = "label_names"  # GeneratorConfig.extra key: the label entry names, as a JSON list
LABEL_PRIOR_KEY = "label_prior"  # GeneratorConfig.extra key: each entry's mean over the training labels, JSON


def canonical(tag: str) -> str:
    """Lower case, ``_``/``-`` as spaces, single spaces, synonyms replaced: ``"Blond_Hair"`` → ``"blonde hair"``."""
    words = " ".join(tag.lower().replace("_", " ").replace("-", " ").split())
    words = PHRASE_SYNONYMS.get(words, words)
    words = " ".join(WORD_SYNONYMS.get(w, w) for w in words.split())
    return PHRASE_SYNONYMS.get(words, words)


def network_label_names(G) -> list[str]:
    """The label entry names of a conditional network ``[c_dim]``.

    Read from ``G.cfg.extra["label_names"]`` (training writes it); networks saved without it
    are assumed to use the default vocabulary when their c_dim matches it."""
    if G.c_dim == 0:
        raise UserError("this network is unconditional: tags steer it through attribute directions "
                        "(stylegan-anime directions / edit), not labels")
    stored = G.cfg.extra.get(LABEL_NAMES_KEY)
    if stored:
        names = json.loads(stored)
        if len(names) != G.c_dim:
            raise UserError(f"the network stores {len(names)} label names but takes c_dim = {G.c_dim}")
        return names
    from ..data.attributes import label_names
    default = label_names()
    if len(default) != G.c_dim:
        raise UserError(f"this network has {G.c_dim} unnamed labels: tags need a network trained on a labelled "
                        f"data set (its label names are saved with it), or use --labels")
    return default


def with_label_names(extra: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    """``extra`` with the label names stored (what training saves with a conditional network)."""
    return {**extra, LABEL_NAMES_KEY: json.dumps(list(names))}


def has_label_names(G) -> bool:
    """Whether a conditional network's labels have names (stored, or the default vocabulary's layout)."""
    try:
        network_label_names(G)
    except UserError:
        return False
    return True


def stores_label_names(G_or_cfg) -> bool:
    """Whether a conditional generator (or its config) stores its label names: what drawing labels
    for pictures or targets that come without them (fine-tuning, projection) relies on."""
    cfg = getattr(G_or_cfg, "cfg", G_or_cfg)
    return bool(cfg.c_dim) and LABEL_NAMES_KEY in cfg.extra


def with_label_prior(extra: dict[str, str], labels: np.ndarray) -> dict[str, str]:
    """``extra`` with the training labels' per-entry means stored (``labels``: [N, c_dim] in [0, 1]),
    so that seeds without labels are drawn as the data set is."""
    prior = np.asarray(labels, np.float64).mean(axis=0)
    return {**extra, LABEL_PRIOR_KEY: json.dumps([round(float(v), 6) for v in prior])}


def network_label_prior(G) -> list[float] | None:
    """The stored per-entry label means [c_dim] in [0, 1], or None for networks saved without them."""
    stored = G.cfg.extra.get(LABEL_PRIOR_KEY)
    if not stored:
        return None
    prior = [float(v) for v in json.loads(stored)]
    if len(prior) != G.c_dim:
        raise UserError(f"the network stores {len(prior)} label frequencies but takes c_dim = {G.c_dim}")
    return prior


def seed_labels(G, seeds: Sequence[int]) -> torch.Tensor:
    """Each seed's own labels [N, c_dim], for a conditional ``G`` asked for no particular character:
    categorical groups drawn with the training data's frequencies and binary entries switched on with
    theirs (uniform and 1/2 for networks saved without them). The same seed always gives the same labels."""
    return chosen_labels({}, network_label_names(G), seeds, prior=network_label_prior(G) or "uniform")


def _entry_tags(entry: str) -> list[str]:
    attr, _, value = entry.partition("=")
    out = [entry, value or attr]
    if value:
        out.append(f"{value} {attr.split('_')[0]}")  # "hair_color=blonde" → "blonde hair"
    for a in ATTRIBUTES:  # the vocabulary's own tag last: it is the one error messages list
        if a.name == attr and (a.binary or value in a.values):
            out.append(a.tags[0] if a.binary else a.tags[a.values.index(value)])
    return out


@dataclass(frozen=True)
class Vocabulary:
    """Tags of one label layout: ``index[tag]`` → entry position in ``label_names``."""

    label_names: tuple[str, ...]
    index: dict[str, int]

    @classmethod
    def of(cls, label_names: Sequence[str]) -> "Vocabulary":
        index: dict[str, int] = {}
        for i, entry in enumerate(label_names):
            for t in _entry_tags(entry):
                index.setdefault(canonical(t), i)
        # A bare value ("blonde") names an entry only when no other entry shares it ("blue" hair or eyes?).
        values = [canonical(e.partition("=")[2]) for e in label_names]
        for v in {v for v in values if v and values.count(v) > 1}:
            index.pop(v, None)
        return cls(tuple(label_names), index)

    @property
    def groups(self) -> list[LabelGroup]:
        return label_groups(list(self.label_names))

    def lookup(self, tag: str) -> int:
        key = canonical(tag)
        if key in self.index:
            return self.index[key]
        close = difflib.get_close_matches(key, sorted(self.index), n=4, cutoff=0.6)
        if close:
            raise UserError(f"unknown tag {tag.strip()!r}; did you mean {', '.join(repr(c) for c in close)}?")
        raise UserError(f"unknown tag {tag.strip()!r} (known: {', '.join(self._prompt_tags())})")

    def _prompt_tags(self) -> list[str]:
        return [canonical(_entry_tags(e)[-1]) for e in self.label_names]


def split_prompt(prompt: str | Sequence[str]) -> list[str]:
    """``"blonde hair, blue eyes"`` (or a list of tags) → ``["blonde hair", "blue eyes"]``."""
    parts = prompt.split(",") if isinstance(prompt, str) else list(prompt)
    return [p.strip() for p in parts if p.strip()]


def parse_tags(prompt: str | Sequence[str], label_names: Sequence[str]) -> dict[int, float]:
    """Tags → {entry index: 1.0 (present) or 0.0 ("no glasses")}; order does not matter.

    Two values of one categorical group ("blonde hair, red hair") are a UserError."""
    vocab = Vocabulary.of(label_names)
    chosen: dict[int, float] = {}
    group_of = {i: g for g in vocab.groups for i in range(g.start, g.start + g.width)}
    taken: dict[str, str] = {}
    for tag in split_prompt(prompt):
        low = canonical(tag)
        negated = low.startswith(NEGATIONS)
        i = vocab.lookup(low.split(" ", 1)[1] if negated else tag)
        g = group_of[i]
        if not g.binary:
            if negated:
                raise UserError(f"{tag!r}: only on/off attributes can be negated, {g.name} is one of several values")
            if g.name in taken and taken[g.name] != tag:
                raise UserError(f"tags {taken[g.name]!r} and {tag!r} both set {g.name}")
            taken[g.name] = tag
        chosen[i] = 0.0 if negated else 1.0
    return chosen


def tag_labels(prompt: str | Sequence[str], label_names: Sequence[str], seeds: Sequence[int] | None = None
               ) -> torch.Tensor:
    """Tags → label vectors [N, c_dim] in ``label_names`` order (N = len(seeds), or 1 without seeds).

    Unmentioned categorical groups: one value sampled per seed, or uniform 1/width without seeds;
    unmentioned binary entries: 0."""
    return chosen_labels(parse_tags(prompt, label_names), label_names, seeds)


def unchosen_labels(label_names: Sequence[str]) -> torch.Tensor:
    """[1, c_dim]: the labels when no attribute is asked for and no seed draws them: each categorical
    group uniform (1/width), binary entries off. What a picture's projection maps with."""
    return chosen_labels({}, label_names)


def chosen_labels(chosen: dict[int, float], label_names: Sequence[str], seeds: Sequence[int] | None = None,
                  prior: Sequence[float] | str | None = None) -> torch.Tensor:
    """{entry index: 0/1} (from ``parse_tags`` or ``prompts.parse_prompt``) → label vectors [N, c_dim],
    the groups nobody chose filled in as ``tag_labels`` describes; with a ``prior`` (per-entry
    frequencies [c_dim], or "uniform") per seed instead: categorical values drawn with its weights,
    binary entries on with its probability (1/2 for "uniform")."""
    groups = label_groups(list(label_names))
    rows = []
    for seed in (seeds if seeds is not None else [None]):
        # Own stream per seed (not RandomState(seed), which draws z): the same seed, the same labels.
        rng = np.random.default_rng([int(seed), 0x7A65]) if seed is not None else None
        vec = np.zeros(len(label_names), np.float32)
        for g in groups:
            span = range(g.start, g.start + g.width)
            if any(i in chosen for i in span):
                for i in span:
                    vec[i] = chosen.get(i, 0.0)
            elif rng is not None and prior is not None:
                vec[g.start:g.start + g.width] = _draw_group(g, rng, prior)
            elif not g.binary:
                if rng is None:
                    vec[g.start:g.start + g.width] = 1.0 / g.width
                else:
                    vec[g.start + int(rng.integers(g.width))] = 1.0
        rows.append(vec)
    return torch.from_numpy(np.stack(rows))


def with_group_value(c: torch.Tensor, group: LabelGroup, value: int) -> torch.Tensor:
    """Labels ``c`` [N, c_dim] with one group set for every row: its ``value``-th entry (binary
    groups: 0 off, 1 on). The rest of each row, who the character is, stays."""
    c = c.clone()
    c[:, group.start:group.start + group.width] = 0
    c[:, group.start + (0 if group.binary else value)] = float(value) if group.binary else 1.0
    return c


def _draw_group(g: LabelGroup, rng: np.random.Generator, prior: Sequence[float] | str) -> np.ndarray:
    """One group's entries [width], drawn with the prior's frequencies."""
    out = np.zeros(g.width, np.float32)
    if g.binary:
        p = 0.5 if isinstance(prior, str) else float(prior[g.start])
        out[0] = float(rng.random() < p)
        return out
    if isinstance(prior, str):
        out[int(rng.integers(g.width))] = 1.0
        return out
    weights = np.clip(np.asarray(prior[g.start:g.start + g.width], np.float64), 0.0, None)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(g.width, 1.0 / g.width)
    out[int(rng.choice(g.width, p=weights))] = 1.0
    return out
