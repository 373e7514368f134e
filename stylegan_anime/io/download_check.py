"""Is a downloaded file the weights it should be? Checked before it is renamed into the cache.

A server can answer 200 with an HTML error page, a JSON API error, or (without Content-Length) a body
cut off half way that looks complete to HTTP. So the bytes are sniffed with the readers' own sniff
functions (the registry's ``format`` must match when it names one) and the container is checked for
its end: a safetensors file is as long as its header says, a pickle ends with STOP, a zip has its
end-of-central-directory record. Whether the networks inside are sound is the readers' business.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..errors import UserError
from . import formats

# registry ``format`` → the name of the reader in formats.READERS that sniffs it
FORMAT_READERS = {
    "safetensors": ("stylegan-anime safetensors",),
    # a generic pickle is read by the same loader; the marker may lie beyond the sniffed head
    "tf-pickle": ("NVlabs TensorFlow pickle", "Python pickle"),
    "ada-pickle": ("stylegan2-ada-pytorch pickle", "Python pickle"),
    "rosinality": ("rosinality torch checkpoint",),
}
PICKLE_STOP = b"."


def check_weights(path: Path, url: str, expected: str | None = None) -> None:
    """UserError (one line, naming ``url``) unless ``path`` holds a complete weights file of ``expected``."""
    with open(path, "rb") as f:
        head = f.read(formats.HEAD_BYTES)
    if not head:
        raise UserError(f"{url} sent an empty body; nothing was cached")
    reader = next((r for r in formats.READERS if r.sniff(head)), None)
    if reader is None:
        raise UserError(f"{url} sent {formats.describe_head(head)}, not a weights file; nothing was cached")
    if expected is not None and reader.name not in FORMAT_READERS.get(expected, (reader.name,)):
        raise UserError(f"{url} sent a {reader.name}, but the registry says {expected}; nothing was cached")
    problem = _incomplete(path, reader.name, head)
    if problem:
        raise UserError(f"{url} sent an incomplete {reader.name} ({problem}); nothing was cached")


def _incomplete(path: Path, reader: str, head: bytes) -> str | None:
    """Why the file is cut short, or None when its container looks whole."""
    size = path.stat().st_size
    if reader == "stylegan-anime safetensors":
        return _safetensors_short(path, head, size)
    if reader == "rosinality torch checkpoint":
        if head[:4] == b"PK\x03\x04" and not zipfile.is_zipfile(path):
            return "the zip directory at its end is missing"
        return None  # the legacy torch format has no end marker to check
    with open(path, "rb") as f:  # every pickle ends with the STOP opcode
        f.seek(size - 1)
        if f.read(1) != PICKLE_STOP:
            return "the pickle does not end with STOP"
    return None


def _safetensors_short(path: Path, head: bytes, size: int) -> str | None:
    n = int.from_bytes(head[:8], "little")  # is_native bounds it to < 100 MB
    if 8 + n > size:
        return f"{size} bytes, shorter than its {n}-byte header"
    with open(path, "rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return "its header is not valid JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    ends = [v.get("data_offsets") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    end = max((e[1] for e in ends if isinstance(e, list) and len(e) == 2 and isinstance(e[1], int)), default=0)
    if 8 + n + end > size:
        return f"{size} bytes of the {8 + n + end} its header describes"
    return None
