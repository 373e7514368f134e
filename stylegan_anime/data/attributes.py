"""The attribute vocabulary: one table that labels, the conditional label head and tag prompts share.

A label vector is the concatenation, in table order, of one group per categorical attribute (one-hot
within the group) and one 0/1 entry per binary attribute. Its entry names are ``"hair_color=blonde"``
for categorical values and the bare attribute name (``"blush"``) for binary ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, Union

from ..errors import UserError

Value = Union[str, bool]


@dataclass(frozen=True)
class Attribute:
    """One labelled attribute.

    ``values`` lists the categories of a categorical attribute (empty for a binary one);
    ``tags`` gives the prompt tag of each category (``"blonde hair"``) or, for a binary
    attribute, the single tag that stands for True (``"glasses"``).
    """

    name: str
    values: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def binary(self) -> bool:
        return not self.values

    @property
    def width(self) -> int:
        """Entries this attribute takes in a label vector."""
        return 1 if self.binary else len(self.values)

    def entry_names(self) -> list[str]:
        return [self.name] if self.binary else [f"{self.name}={v}" for v in self.values]


def _categorical(name: str, values: Sequence[str], tag_format: str = "{}") -> Attribute:
    return Attribute(name, tuple(values), tuple(tag_format.format(v) for v in values))


def _binary(name: str, tag: str) -> Attribute:
    return Attribute(name, (), (tag,))


HAIR_COLORS = ("black", "brown", "blonde", "red", "blue", "pink", "purple", "silver")
EYE_COLORS = ("blue", "green", "red", "purple", "brown", "yellow")
HAIR_STYLES = ("short", "long", "twintails", "ponytail")
MOUTHS = ("smile", "open", "closed")

ATTRIBUTES: tuple[Attribute, ...] = (
    _categorical("hair_color", HAIR_COLORS, "{} hair"),
    _categorical("eye_color", EYE_COLORS, "{} eyes"),
    Attribute("hair_style", HAIR_STYLES, ("short hair", "long hair", "twintails", "ponytail")),
    Attribute("mouth", MOUTHS, ("smile", "open mouth", "closed mouth")),
    _binary("bangs", "bangs"),
    _binary("blush", "blush"),
    _binary("ribbon", "hair ribbon"),
    _binary("glasses", "glasses"),
    _binary("hat", "hat"),
)


def label_names(attributes: Sequence[Attribute] = ATTRIBUTES) -> list[str]:
    """Names of the label vector's entries, in order: c_dim = len(label_names())."""
    return [n for a in attributes for n in a.entry_names()]


def encode(values: Mapping[str, Value], attributes: Sequence[Attribute] = ATTRIBUTES) -> list[int]:
    """Attribute values (``{"hair_color": "blonde", "glasses": True, ...}``) → 0/1 label vector.

    Every attribute of the table must be present; an unknown category is a UserError.
    """
    vec: list[int] = []
    for a in attributes:
        if a.name not in values:
            raise UserError(f"attribute {a.name!r} is missing from {dict(values)}")
        v = values[a.name]
        if a.binary:
            vec.append(int(bool(v)))
        else:
            if v not in a.values:
                raise UserError(f"unknown {a.name} {v!r}: expected one of {', '.join(a.values)}")
            vec.extend(int(v == c) for c in a.values)
    return vec


def decode(vector: Sequence[float], attributes: Sequence[Attribute] = ATTRIBUTES) -> dict[str, Value]:
    """Label vector → attribute values (argmax within each group, > 0.5 for binary entries)."""
    expected = sum(a.width for a in attributes)
    if len(vector) != expected:
        raise UserError(f"label vector has {len(vector)} entries, the vocabulary needs {expected}")
    out: dict[str, Value] = {}
    i = 0
    for a in attributes:
        group = list(vector[i:i + a.width])
        out[a.name] = group[0] > 0.5 if a.binary else a.values[max(range(a.width), key=group.__getitem__)]
        i += a.width
    return out


def tags(values: Mapping[str, Value], attributes: Sequence[Attribute] = ATTRIBUTES) -> list[str]:
    """Attribute values → prompt tags, e.g. ``["blonde hair", "blue eyes", "twintails", "glasses"]``."""
    out = []
    for a in attributes:
        v = values.get(a.name)
        if a.binary:
            if v:
                out.append(a.tags[0])
        elif v in a.values:
            out.append(a.tags[a.values.index(v)])
    return out
