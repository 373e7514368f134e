"""Free-text prompts → label vectors ("a girl with long blonde hair in twintails, blue eyes, glasses, no hat").

No language model: the prompt is cut into clauses at commas, semicolons and full stops, and each clause
is read left to right against the network's tag vocabulary (``tags.Vocabulary``: entry names, prompt
tags and synonyms, matched case-, ``_``/``-``- and spacing-insensitively):

- the longest run of words that is a tag wins ("hair ribbon", "open mouth", "twin tails");
- a word in front of a group noun (hair, eyes, mouth: the last word shared by several tags) is read
  as "<word> <noun>", so "long blonde hair" is long hair + blonde hair and "blonde and black hair" is
  two hair colours (an error: one group, two values);
- "no" / "without" / "not" negate the next tag (and tags joined to it by "or" / "nor");
- filler words (articles, "girl", "with", "in", ...) are skipped; any other word nobody understood is
  returned in ``unknown``, for the caller to list in one line.

A word in front of a group noun that names no value ("teal hair") and a word within typo distance of
a tag ("glases") are UserErrors suggesting the close matches: they are values the user meant.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import UserError
from .tags import NEGATIONS, Vocabulary, canonical, chosen_labels

NEGATION_WORDS = frozenset(n.strip() for n in NEGATIONS)
CONNECTORS = frozenset({"and", "or", "nor", "&"})
# Words that carry no attribute: skipped without being reported as not understood.
FILLER = frozenset({"a", "an", "the", "girl", "boy", "woman", "man", "lady", "person", "character", "portrait",
                    "picture", "image", "face", "anime", "of", "with", "in", "her", "his", "their", "she", "he",
                    "has", "have", "having", "wearing", "wears", "is", "are", "who", "that", "some", "also", "on"})
# A more specific value contains a more general one of the same group: "long hair in twintails" is
# twintails (the synthetic set draws twintails and ponytails as long hair), not a conflict.
SUBSUMES = {"hair_style=twintails": ("hair_style=long",), "hair_style=ponytail": ("hair_style=long",)}
# Compound adjectives: "silver-haired" → "silver hair", "blue-eyed" → "blue eyes".
PROMPT_WORDS = {"haired": "hair", "eyed": "eyes"}
MAX_TAG_WORDS = 4
TYPO_CUTOFF = 0.75  # difflib ratio above which an unknown word is taken for a misspelt tag


@dataclass(frozen=True)
class ParsedPrompt:
    """chosen: {label entry index: 1.0 present / 0.0 negated}; tags: what was understood, in prompt
    order ("blonde hair", "no hat"); unknown: words neither matched nor filler, in prompt order."""

    chosen: dict[int, float]
    tags: tuple[str, ...]
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class PromptLabels:
    """labels: [N, c_dim] in the network's label order (N = len(seeds), or 1); tags / unknown as in
    ``ParsedPrompt``."""

    labels: torch.Tensor
    tags: tuple[str, ...]
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class _Match:
    index: int
    negated: bool
    text: str


def _clauses(prompt: str) -> list[list[str]]:
    """Lower-cased clauses of words; ``_`` and ``-`` are spaces, other punctuation cuts or is dropped."""
    out = []
    for clause in re.split(r"[,;.!?\n]+", prompt.lower().replace("_", " ").replace("-", " ")):
        words = [PROMPT_WORDS.get(w, w) for w in re.sub(r"[^a-z0-9=&' ]+", " ", clause).replace("'", "").split()]
        if words:
            out.append(words)
    return out


def _group_nouns(vocab: Vocabulary) -> frozenset[str]:
    """Last words shared by several two-word tags: "hair" (blonde hair, long hair), "eyes", "mouth"."""
    last = [k.split()[-1] for k in vocab.index if len(k.split()) == 2]
    return frozenset(w for w in last if last.count(w) > 1)


class _ClauseReader:
    """Reads one clause's words into matches and unknown words (see the module docstring)."""

    def __init__(self, words: list[str], vocab: Vocabulary, nouns: frozenset[str]):
        self.words, self.vocab, self.nouns = words, vocab, nouns
        self.matches: list[_Match] = []
        self.unknown: list[str] = []
        self.used_nouns: set[int] = set()

    def key(self, text: str) -> str | None:
        k = canonical(text)
        return k if k in self.vocab.index else None

    def attached_noun(self, i: int) -> int | None:
        """Position of the group noun word i modifies: the next noun, with only connectors or other
        "<word> <noun>" values in between ("blonde and black hair"), else None."""
        for k in range(i + 1, len(self.words)):
            if self.words[k] in self.nouns:
                return k
            if self.words[k] not in CONNECTORS and self.key(f"{self.words[k]} {self._noun_after(k)}") is None:
                return None
        return None

    def _noun_after(self, i: int) -> str:
        return next((w for w in self.words[i + 1:] if w in self.nouns), "")

    def read(self) -> None:
        i, negate = 0, False
        while i < len(self.words):
            word = self.words[i]
            if word in NEGATION_WORDS:
                i, negate = i + 1, True
                continue
            end, key = self._longest(i)
            if key is None:
                noun = self.attached_noun(i) if word not in self.nouns else None
                if noun is not None and word not in FILLER and word not in CONNECTORS:
                    key = self.key(f"{word} {self.words[noun]}")
                    if key is None:
                        raise UserError(self._unknown_value(f"{word} {self.words[noun]}", self.words[noun]))
                    self.used_nouns.add(noun)
                    end = i + 1
            if key is None:
                key, end = self.key(word), i + 1
            if key is not None:
                self.matches.append(_Match(self.vocab.index[key], negate, key))
                negate = negate and end < len(self.words) and self.words[end] in ("or", "nor")
            elif not (word in FILLER or word in CONNECTORS or (word in self.nouns and i in self.used_nouns)):
                self._typo_check(word)
                self.unknown.append(word)
            i = end

    def _longest(self, i: int) -> tuple[int, str | None]:
        """The longest tag of two or more words starting at word i: (end, key) or (i + 1, None)."""
        for j in range(min(len(self.words), i + MAX_TAG_WORDS), i + 1, -1):
            key = self.key(" ".join(self.words[i:j]))
            if key is not None:
                self.used_nouns.update(k for k in range(i, j) if self.words[k] in self.nouns)
                return j, key
        return i + 1, None

    def _unknown_value(self, phrase: str, noun: str) -> str:
        values = [t for t in self.vocab._prompt_tags() if t.endswith(f" {noun}")]
        close = difflib.get_close_matches(phrase, values, n=3, cutoff=0.6)
        if close:
            return f"the prompt's {phrase!r} names no value; did you mean {', '.join(repr(c) for c in close)}?"
        return f"the prompt's {phrase!r} names no value (known: {', '.join(values)})"

    def _typo_check(self, word: str) -> None:
        singles = sorted(k for k in self.vocab.index if " " not in k and "=" not in k)
        close = difflib.get_close_matches(word, singles, n=3, cutoff=TYPO_CUTOFF)
        if close:
            raise UserError(f"the prompt's {word!r} is not a tag; did you mean {', '.join(repr(c) for c in close)}?")


def _resolve(matches: list[_Match], vocab: Vocabulary) -> dict[int, float]:
    """Matches → {entry: 0/1}; two values of one group (or a tag and its negation) are a UserError."""
    names = vocab.label_names
    group_of = {i: g for g in vocab.groups for i in range(g.start, g.start + g.width)}
    chosen: dict[int, float] = {}
    said: dict[str, _Match] = {}  # group name → the match that set it
    for m in matches:
        g = group_of[m.index]
        if m.negated and not g.binary:
            raise UserError(f"'no {m.text}': only on/off attributes can be negated, {g.name} is one of several values")
        prev = said.get(g.name)
        if prev is not None and (prev.index, prev.negated) != (m.index, m.negated):
            if names[prev.index] in SUBSUMES.get(names[m.index], ()):
                chosen.pop(prev.index)
            elif names[m.index] in SUBSUMES.get(names[prev.index], ()):
                continue
            else:
                both = [("no " if x.negated else "") + x.text for x in (prev, m)]
                raise UserError(f"the prompt sets {g.name} twice: {both[0]!r} and {both[1]!r}")
        said[g.name] = m
        chosen[m.index] = 0.0 if m.negated else 1.0
    return chosen


def parse_prompt(prompt: str, label_names: Sequence[str]) -> ParsedPrompt:
    """A free-text prompt → which label entries it sets, what it understood and what it did not."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("the prompt is empty")
    vocab = Vocabulary.of(label_names)
    nouns = _group_nouns(vocab)
    matches: list[_Match] = []
    unknown: list[str] = []
    for words in _clauses(prompt):
        reader = _ClauseReader(words, vocab, nouns)
        reader.read()
        matches += reader.matches
        unknown += reader.unknown
    chosen = _resolve(matches, vocab)
    shown = vocab._prompt_tags()
    tags = tuple(("no " if v == 0.0 else "") + shown[i] for i, v in chosen.items())
    return ParsedPrompt(chosen, tags, tuple(unknown))


def prompt_labels(prompt: str, label_names: Sequence[str], seeds: Sequence[int] | None = None) -> PromptLabels:
    """A free-text prompt → label vectors [N, c_dim] (N = len(seeds), or 1 without seeds).

    Groups the prompt does not set are filled in as ``tag_labels`` does (drawn per seed, or uniform)."""
    parsed = parse_prompt(prompt, label_names)
    return PromptLabels(chosen_labels(parsed.chosen, label_names, seeds), parsed.tags, parsed.unknown)
