"""Writing into a run folder whose disk may be full.

A full disk is not a bug in the run: the user needs one line that names the folder, how much the
write needs and how much is free, and the promise that nothing already written was lost (every
write is atomic, so earlier snapshots stay intact and ``--resume-run`` continues from the newest).
The check runs before a write (from the size it will take) and again on the error itself, since
the disk can fill while writing (another process, or a size that was only an estimate).
"""
from __future__ import annotations

import contextlib
import errno
import re
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import UserError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# safetensors reports I/O errors as SafetensorError("... I/O error: No space left on device (os error 28)").
_OS_ERROR = re.compile(r"os error (\d+)")


def free_bytes(folder: str | Path) -> int:
    """Bytes a normal user may still write in ``folder``'s file system."""
    return shutil.disk_usage(folder).free


def error_number(exc: BaseException) -> int | None:
    """The errno behind an exception: an OSError's own, or the one a library put in its message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    found = _OS_ERROR.search(str(exc))
    return int(found.group(1)) if found else None


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MiB"


def no_space(folder: str | Path, what: str, needed: int) -> UserError:
    folder = Path(folder)
    try:
        free = _mib(free_bytes(folder))
    except OSError:
        free = "unknown"
    return UserError(f"no space left in {folder} to write {what}: it needs about {_mib(needed)}, {free} free; "
                     f"earlier snapshots are intact: free some space, then continue with --resume-run {folder}")


def ensure_space(folder: str | Path, what: str, needed: int) -> None:
    """Refuse before writing ``needed`` bytes into ``folder`` when they do not fit."""
    if free_bytes(folder) < needed:
        raise no_space(folder, what, needed)


@contextlib.contextmanager
def disk_full_is_a_user_error(folder: str | Path, what: str, needed: int) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) raised inside the block into the one-line ``no_space``."""
    try:
        yield
    except Exception as e:
        if error_number(e) in NO_SPACE:
            raise no_space(folder, what, needed) from None
        raise
