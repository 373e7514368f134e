"""Inter-process locks on files, released by the kernel when their holder dies (``flock`` on POSIX,
``msvcrt.locking`` on Windows), so no lock can go stale and no pid bookkeeping is needed. The native
build, its background builder and the download cache all lock through here. Standard library only:
``native_build.py`` also runs stand-alone."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the caller would wait."""


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@contextlib.contextmanager
def held(path: str | os.PathLike, timeout: float, on_wait: Callable[[], None] | None = None,
         poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block. Waits up to ``timeout``
    seconds (0: do not wait), calling ``on_wait`` once when it starts waiting; then LockTimeout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise LockTimeout(f"{path} is held by another process")
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            time.sleep(poll)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def is_held(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock on ``path`` now (False if the file does not exist)."""
    if not Path(path).exists():
        return False
    try:
        with held(path, timeout=0):
            return False
    except LockTimeout:
        return True
