"""Registry of known models: name → weights file (bundled in ``weights/``)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"


@dataclass(frozen=True)
class ModelEntry:
    """One known model. ``file`` is relative to ``weights/`` for bundled models."""

    name: str
    file: str
    resolution: int
    format: str
    licence: str
    source: str
    description: str = ""


def registry() -> dict[str, ModelEntry]:
    if not REGISTRY_FILE.exists():
        return {}
    entries = json.loads(REGISTRY_FILE.read_text())["models"]
    return {e["name"]: ModelEntry(**e) for e in entries}


def fetch(name: str) -> Path:
    """The local path of a registry model."""
    models = registry()
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise UserError(f"{name!r} is neither a file nor a known model (known: {known})")
    path = WEIGHTS_DIR / models[name].file
    if not path.exists():
        raise UserError(f"model {name!r} is registered but its file {path} is missing")
    return path
