"""Labels for a source: a ``dataset.json`` (vectors or class indices) or a CSV of tags.

Both become a ``LabelTable``: label names, one vector per source file, and optional
human-readable attributes, looked up by the file's path in the source (or its base name).
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import UserError

HEADER_NAMES = {"file", "filename", "file_name", "image", "name", "path"}


@dataclass
class LabelTable:
    label_names: list[str]
    vectors: dict[str, list[float]]
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        counts = Counter(PurePosixPath(n).name for n in self.vectors)
        self._by_base = {PurePosixPath(n).name: n for n in self.vectors if counts[PurePosixPath(n).name] == 1}

    def _key(self, name: str) -> str | None:
        if name in self.vectors:
            return name
        return self._by_base.get(PurePosixPath(name).name)

    def lookup(self, name: str) -> tuple[list[float] | None, dict[str, Any] | None]:
        """(vector, attributes) of a source file, (None, None) when it has no label."""
        key = self._key(name)
        if key is None:
            return None, None
        return self.vectors[key], self.attributes.get(key)


def load_label_file(path: str | Path) -> LabelTable:
    """A dataset.json or a .csv of tags → LabelTable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read labels {path}: {e.strerror or e}") from None
    if path.suffix.lower() == ".csv":
        return parse_tag_csv(data, str(path))
    return parse_dataset_json(data, str(path))


def parse_dataset_json(data: bytes, where: str) -> LabelTable:
    """NVlabs-style labels: ``[[name, vector | class index], ...]`` (or a {name: ...} object)."""
    try:
        meta = json.loads(data)
        labels = meta.get("labels") if isinstance(meta, dict) else None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{where} is not valid JSON: {e}") from None
    if not labels:
        raise UserError(f"{where} has no 'labels'")
    pairs = list(labels.items()) if isinstance(labels, dict) else labels
    try:
        table = {str(name): value for name, value in pairs}
    except (TypeError, ValueError):
        raise UserError(f"{where}: 'labels' must be [[file name, label], ...]") from None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in table.values()):
        # Class indices: one-hot over max + 1 classes, as the official tools read them.
        width = max(table.values()) + 1
        vectors = {n: [float(i == v) for i in range(width)] for n, v in table.items()}
        names = meta.get("label_names") or [f"class={i}" for i in range(width)]
    else:
        try:
            vectors = {n: [float(x) for x in v] for n, v in table.items()}
        except (TypeError, ValueError):
            raise UserError(f"{where}: each label must be a class index or a list of numbers") from None
        widths = {len(v) for v in vectors.values()}
        if len(widths) != 1:
            raise UserError(f"{where}: label vectors have different lengths {sorted(widths)}")
        names = meta.get("label_names") or [f"c{i}" for i in range(widths.pop())]
    attributes = {str(n): a for n, a in meta.get("attributes", [])} if isinstance(meta.get("attributes"), list) else {}
    if len(names) != len(next(iter(vectors.values()))):
        raise UserError(f"{where}: label_names has {len(names)} entries, the labels {len(next(iter(vectors.values())))}")
    return LabelTable(list(names), vectors, attributes)


def _split_tags(text: str, commas: bool) -> list[str]:
    parts = text.split(",") if commas else text.split()
    return [" ".join(t.lower().replace("_", " ").split()) for t in parts if t.strip()]


def parse_tag_csv(data: bytes, where: str, min_count: int = 1) -> LabelTable:
    """Rows ``file,tags`` (tags comma- or space-separated, ``blonde_hair`` = ``blonde hair``) → multi-hot.

    The label names are the tags used at least ``min_count`` times, most frequent first.
    """
    try:
        rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if r and r[0].strip()]
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{where} is not a UTF-8 CSV file: {e}") from None
    if rows and rows[0][0].strip().lower() in HEADER_NAMES:
        rows = rows[1:]
    if not rows:
        raise UserError(f"{where} has no rows (expected: file,tags)")
    cells = {r[0].strip(): ",".join(r[1:]) for r in rows}
    # One rule per file: comma-separated tags ("blonde hair, blue eyes") if any row has a comma,
    # else booru style, space-separated with underscores ("blonde_hair blue_eyes").
    commas = any("," in c for c in cells.values())
    tags = {name: sorted(set(_split_tags(c, commas))) for name, c in cells.items()}
    counts = Counter(t for ts in tags.values() for t in ts)
    names = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    index = {t: i for i, t in enumerate(names)}
    vectors = {}
    for name, ts in tags.items():
        vec = [0.0] * len(names)
        for t in ts:
            if t in index:
                vec[index[t]] = 1.0
        vectors[name] = vec
    return LabelTable(names, vectors, {n: {"tags": ts} for n, ts in tags.items()})
