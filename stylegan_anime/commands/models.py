"""`stylegan-anime models`: the registry as a table, with what is already on this machine."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..io import hub


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list known models and which are cached")
    p.set_defaults(run=run)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _known_size(entry: hub.ModelEntry) -> int | None:
    """A bundled model's size is its file's (the registry need not repeat it); else the registry's."""
    if entry.bundled and Path(entry.file).is_file():
        return Path(entry.file).stat().st_size
    return entry.size


def _state(entry: hub.ModelEntry) -> str:
    if entry.bundled:
        return "bundled" if hub.is_cached(entry) else "missing"
    if hub.is_cached(entry):
        return "cached"
    return "by hand" if entry.manual_url else "no"


def table(entries: list[hub.ModelEntry]) -> str:
    header = ("NAME", "RES", "FORMAT", "SIZE", "LICENCE", "CACHED")
    rows = [header] + [(e.name, str(e.resolution), e.format, _size(_known_size(e)), e.licence, _state(e))
                       for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args: argparse.Namespace) -> int:
    entries = sorted(hub.registry().values(), key=lambda e: e.name)
    if not entries:
        print("no models registered")
        return 0
    print(table(entries))
    print(f"cache: {hub.cache_dir()}")
    return 0
