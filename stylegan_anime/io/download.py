"""Resumable, verified HTTP downloads: ``url`` → ``dest``, never a partial file under ``dest``.

Bytes stream into ``dest.part``; after a dropped connection the next attempt asks for the rest
with ``Range: bytes=N-`` (a server that answers 200 instead of 206 ignored the range, so the
part restarts from zero). The finished part is checked against the expected size and sha256
before the rename onto ``dest``; a mismatch deletes it.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from ..errors import UserError


@dataclass(frozen=True)
class DownloadPolicy:
    """How hard to try. ``retries`` counts attempts after the first; waits double from ``backoff``."""

    retries: int = 4
    backoff: float = 1.0      # seconds before the first retry
    timeout: float = 30.0     # seconds to connect, and between two reads
    chunk_size: int = 1 << 20


class ChecksumError(UserError):
    """The downloaded bytes are not the expected ones (size or sha256)."""


class _Retry(Exception):
    """A transient failure: the part file is kept and the transfer resumed."""


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def say(message: str) -> None:
    """One line for the user on stderr that does not break a running progress bar."""
    tqdm.write(message, file=sys.stderr)


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
             policy: DownloadPolicy = DownloadPolicy(), progress: bool = True) -> str:
    """Fetch ``url`` into ``dest`` (atomically); returns the sha256 of the bytes.

    ``sha256`` / ``size`` (if given) must match or ChecksumError is raised and nothing is kept.
    Connection failures are retried ``policy.retries`` times, resuming where they stopped;
    after that a one-line UserError names the URL and the cause (the ``.part`` file stays, so
    the next call resumes). The caller holds any inter-process lock.
    """
    dest = Path(dest)
    part = partial_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with requests.Session() as session:
        for attempt in range(policy.retries + 1):
            try:
                _transfer(session, url, part, size, policy, progress)
                break
            except _Retry as e:
                cause = e.args[0]
                if attempt == policy.retries or _is_permanent(cause):
                    kept = part.stat().st_size if part.exists() else 0
                    tail = f"; {kept} bytes kept, the next try resumes" if kept else ""
                    raise UserError(f"cannot download {url}: {describe(cause, policy)}{tail}") from None
                time.sleep(policy.backoff * 2 ** attempt)
    digest = verify(part, url, sha256, size)
    os.replace(part, dest)
    return digest


def verify(part: Path, url: str, sha256: str | None, size: int | None) -> str:
    """The sha256 of ``part`` after checking size and hash; on a mismatch ``part`` is deleted."""
    actual = part.stat().st_size
    if size is not None and actual != size:
        part.unlink()
        raise ChecksumError(f"{url} gave {actual} bytes, expected {size}; the download was deleted")
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise ChecksumError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {digest}; "
                            "the download was deleted")
    return digest


def _transfer(session: requests.Session, url: str, part: Path, size: int | None, policy: DownloadPolicy,
              progress: bool) -> None:
    """One attempt: append the missing bytes to ``part``. Raises _Retry on transient failures."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset >= size:
        if offset == size:
            return
        part.unlink()
        offset = 0
    # identity: a compressed transfer would make byte ranges and Content-Length refer to other bytes
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        with session.get(url, headers=headers, stream=True, timeout=policy.timeout) as r:
            offset = _check_response(r, url, part, offset)
            if offset is None:
                return
            length = r.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else size
            _write_body(r, part, offset, total, policy, progress)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
        raise _Retry(e) from e
    received = part.stat().st_size if part.exists() else 0
    if total is not None and received < total:
        raise _Retry(ConnectionAbortedError(f"connection closed after {received} of {total} bytes"))


def _check_response(r: requests.Response, url: str, part: Path, offset: int) -> int | None:
    """The offset the body starts at (0 = restart), or None when ``part`` is already complete."""
    if r.status_code == 416 and offset:
        m = re.match(r"bytes \*/(\d+)", r.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == offset:
            return None
        part.unlink()
        raise _Retry(ConnectionResetError("the server refused to resume; restarting"))
    if r.status_code in (408, 429) or r.status_code >= 500:
        raise _Retry(ConnectionError(f"HTTP {r.status_code} {r.reason}"))
    if r.status_code >= 400:
        raise UserError(f"cannot download {url}: HTTP {r.status_code} {r.reason}")
    if r.status_code == 206:
        m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == offset:
            return offset
        part.unlink(missing_ok=True)
        raise _Retry(ConnectionResetError("the server sent another byte range; restarting"))
    return 0  # 200: the whole file (a server that ignores Range also lands here)


def _write_body(r: requests.Response, part: Path, offset: int, total: int | None, policy: DownloadPolicy,
                progress: bool) -> None:
    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
               desc=part.name.removesuffix(".part"), leave=False)
    with open(part, "ab" if offset else "wb") as f, bar:
        for chunk in r.iter_content(policy.chunk_size):
            f.write(chunk)
            bar.update(len(chunk))


def _is_permanent(cause: BaseException) -> bool:
    """A host name that does not resolve will not resolve a second later: do not retry."""
    return _find(cause, socket.gaierror) is not None


def _find(e: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of ``kind`` in e's cause chain (requests wraps urllib3 wraps socket)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, kind):
            return e
        seen.add(id(e))
        inner = getattr(e, "reason", None)
        if not isinstance(inner, BaseException) and e.args and isinstance(e.args[0], BaseException):
            inner = e.args[0]
        e = inner if isinstance(inner, BaseException) else (e.__cause__ or e.__context__)
    return None


def describe(cause: BaseException, policy: DownloadPolicy = DownloadPolicy()) -> str:
    """A short, one-line reason for a failed transfer."""
    if _find(cause, socket.gaierror):
        return "the host name does not resolve (offline?)"
    if _find(cause, ConnectionRefusedError):
        return "connection refused (offline, or the server is down?)"
    if _find(cause, requests.Timeout) or _find(cause, TimeoutError):
        return f"no answer within {policy.timeout:g} s"
    if not isinstance(cause, requests.RequestException):  # our own messages (HTTP 503, short read)
        return str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return "the connection broke off"
