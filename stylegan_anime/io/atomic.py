"""Atomic file writing: a temp file beside the target, then a rename.

Readers never see a half-written file, and an interrupted write leaves the
previous version (if any) untouched.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import UserError


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _cannot_write(path: Path) -> Iterator[None]:
    """A folder that cannot be made or written in → one line naming ``path`` (stylegan_anime.io.outputs
    checks this before the work; this is for callers of the API, and for what no check foresees)."""
    try:
        yield
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temp file keeps the target's suffix (or ``suffix``) so that writers which
    pick a format from the extension (Pillow, imageio) still do the right thing.
    On an exception the temp file is removed and the target is not touched.
    """
    path = Path(path)
    with _cannot_write(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp (and writers that swap in a temp file of their own, like safetensors) make the
        # file private (0600); what we write is for people to open, like any new file.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; rename it onto ``path`` on success.

    An existing ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    with _cannot_write(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_npz(path: str | os.PathLike, arrays: dict) -> Path:
    """``np.savez`` of ``arrays`` (name → numpy array) to ``path``, atomically (latent and direction files)."""
    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path
