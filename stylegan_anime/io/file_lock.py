"""The download cache's inter-process lock: ``ops/locks.py``'s lock, whose timeout the user is told
about in one line."""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

from ..errors import UserError
from ..ops.locks import LockTimeout, held


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout: float = 3600.0,
              on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Waits up to ``timeout`` seconds for another holder, calling ``on_wait`` once when it
    starts waiting (to tell the user why nothing happens); then UserError.
    """
    try:
        with held(path, timeout, on_wait):
            yield
    except LockTimeout:
        raise UserError(f"gave up after {timeout:.0f} s waiting for the lock {path} held by another process") from None
