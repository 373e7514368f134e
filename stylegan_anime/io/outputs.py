"""Checks on the paths a command is about to write, made before any work is done.

One helper serves every command: a path that cannot be written (a file where a folder should
be, a folder that is not writable) and an existing output that would be replaced (unless the
user says ``force``) are one-line ``UserError``s naming the path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import UserError


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (what creating ``path`` starts from)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(path: str | os.PathLike, target: str | os.PathLike | None = None) -> Path:
    """``path`` is a folder, or can be created as one, and files can be written in it;
    ``target`` (default: ``path``) is what the message names as not writable."""
    path = Path(path)
    target = Path(target) if target is not None else path
    base = _nearest_existing(path)
    if not base.is_dir():
        where = "it" if base == Path(os.path.abspath(target)) else str(base)
        raise UserError(f"cannot write {target}: {where} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {target}: {base} is not writable")
    return path


def _occupied(path: Path, folder: bool) -> bool:
    """Whether writing ``path`` would replace something (an empty folder holds nothing to lose)."""
    if folder and path.is_dir():
        return any(path.iterdir())
    if not folder and path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    if folder and path.exists():
        raise UserError(f"cannot write {path}: it is a file, not a folder")
    return path.exists()


def check_outputs(paths: Iterable[str | os.PathLike], force: bool = False, folder: bool = False) -> list[Path]:
    """Every path in ``paths`` (files, or folders with ``folder``) can be written and, unless
    ``force``, replaces nothing. Returns them as Paths."""
    paths = [Path(p) for p in paths]
    for p in paths:
        check_folder(p.parent, target=p)
    existing = [p for p in paths if _occupied(p, folder)]
    if existing and not force:
        if len(existing) == 1:
            raise UserError(f"{existing[0]} already exists: add --force to replace it")
        raise UserError(f"{existing[0]} and {len(existing) - 1} more already exist: add --force to replace them")
    return paths
