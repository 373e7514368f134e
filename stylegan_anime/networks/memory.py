"""Keep freed memory inside the process on glibc, so that the next forward reuses it.

glibc serves big blocks (a 512² activation is tens to hundreds of MiB) with mmap and
returns them to the kernel on free; the next forward then page-faults every page in again
and the kernel zero-fills it, which costs a large share of a CPU forward. Turning off mmap
for malloc and raising the trim threshold keeps those pages (the same effect as
``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=...``), so our speed
does not depend on the user's environment. Peak memory is unchanged; the process simply
holds on to its peak. Set ``STYLEGAN_ANIME_KEEP_MEMORY=0`` to leave malloc alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ENV_KEEP_MEMORY = "STYLEGAN_ANIME_KEEP_MEMORY"
# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2 ** 31 - 1  # mallopt takes an int: 2 GiB, far above a forward's free tail


class _State:
    done = False
    applied = False


def keep_freed_memory() -> bool:
    """Set malloc to keep freed memory, once per process; True if it is in effect.

    A no-op (False) off Linux/glibc or with ``STYLEGAN_ANIME_KEEP_MEMORY=0``.
    """
    if _State.done:
        return _State.applied
    _State.done = True
    if os.environ.get(ENV_KEEP_MEMORY, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it (musl's mallopt is a stub)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _State.applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _State.applied
