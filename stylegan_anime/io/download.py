"""Resumable, verified HTTP downloads: ``url`` → ``dest``, never a partial file under ``dest``.

Bytes stream into ``dest.part``; after a dropped connection the next attempt asks for the rest
with ``Range: bytes=N-`` (a server that answers 200 instead of 206 ignored the range, so the
part restarts from zero). The finished part is checked against the expected size and sha256
before the rename onto ``dest``; a mismatch deletes it.

Hostile servers are bounded: redirects are followed by hand, at most ``max_redirects``, to http(s)
only; a body is never longer than the published size (else ``max_bytes``), counted after any
gzip/deflate decoding, which is itself done in bounded steps; every failure is one line.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import lazy_loader
from tqdm import tqdm

from ..errors import UserError

# Loaded on first use: loading a cached model, or generating, never needs them.
requests = lazy_loader.load("requests")
urllib3 = lazy_loader.load("urllib3")


@dataclass(frozen=True)
class DownloadPolicy:
    """How hard to try. ``retries`` counts attempts after the first; waits double from ``backoff``."""

    retries: int = 4
    backoff: float = 1.0      # seconds before the first retry
    timeout: float = 30.0     # seconds to connect, and between two reads
    chunk_size: int = 1 << 20
    max_redirects: int = 5
    max_bytes: int = 4 << 30  # bodies without a published size: the largest known model is ~1.1 GB


REDIRECTS = (301, 302, 303, 307, 308)


class ChecksumError(UserError):
    """The downloaded bytes are not the expected ones (size or sha256)."""


class _Retry(Exception):
    """A transient failure: the part file is kept and the transfer resumed."""


class _Refused(Exception):
    """A permanent failure (the server's answer is wrong, not flaky): one line, no retry."""


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
             policy: DownloadPolicy = DownloadPolicy(), progress: bool = True,
             check: Callable[[Path], None] | None = None) -> str:
    """Fetch ``url`` into ``dest`` (atomically); returns the sha256 of the bytes.

    ``sha256`` / ``size`` (if given) must match or ChecksumError is raised and nothing is kept.
    Connection failures are retried ``policy.retries`` times, resuming where they stopped;
    after that a one-line UserError names the URL and the cause (the ``.part`` file stays, so
    the next call resumes). ``check(part)`` (e.g. a format sniff) runs on the complete bytes
    before the rename; whatever it raises deletes them. The caller holds any inter-process lock.
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
                    kept = _drop_if_empty(part)
                    tail = f"; {kept} bytes kept, the next try resumes" if kept else ""
                    raise UserError(f"cannot download {url}: {describe(cause, policy)}{tail}") from None
                time.sleep(policy.backoff * 2 ** attempt)
            except _Refused as e:
                _drop_if_empty(part)
                raise UserError(f"cannot download {url}: {e}") from None
    digest = verify(part, url, sha256, size)
    if check is not None:
        try:
            check(part)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    os.replace(part, dest)
    return digest


def _drop_if_empty(part: Path) -> int:
    """The bytes kept in ``part``; an empty one (nothing to resume from) is removed."""
    kept = part.stat().st_size if part.exists() else 0
    if not kept:
        part.unlink(missing_ok=True)
    return kept


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
    """One attempt: append the missing bytes to ``part``. Raises _Retry (transient) or _Refused."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset >= size:
        if offset == size:
            return
        part.unlink()
        offset = 0
    limit = size if size is not None else policy.max_bytes
    # identity: a compressed transfer would make byte ranges and Content-Length refer to other bytes
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        with _open(session, url, headers, policy) as r:
            offset = _check_response(r, part, offset)
            if offset is None:
                return
            encoding = _content_encoding(r)
            if encoding is not None and offset:  # an encoded range cannot be appended to plain bytes
                part.unlink()
                raise _Retry(ConnectionResetError("the server compressed a resumed range; restarting"))
            length = _content_length(r) if encoding is None else None
            if length is not None and offset + length > limit:
                raise _Refused(f"the server announces {offset + length} bytes, more than {_limit_text(size, limit)}")
            total = offset + length if length is not None else size
            _write_body(r, part, offset, total, limit, size, encoding, policy, progress)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError, http.client.HTTPException,
            ConnectionError, TimeoutError) as e:
        raise _Retry(e) from e
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as e:
        raise _Refused(describe(e, policy)) from None
    received = part.stat().st_size if part.exists() else 0
    if total is not None and received < total:
        raise _Retry(ConnectionAbortedError(f"connection closed after {received} of {total} bytes"))


def _open(session: requests.Session, url: str, headers: dict, policy: DownloadPolicy) -> requests.Response:
    """The response at the end of at most ``max_redirects`` http(s) redirects, followed by hand."""
    seen = {url}
    for _ in range(policy.max_redirects + 1):
        try:
            r = session.get(url, headers=headers, stream=True, timeout=policy.timeout, allow_redirects=False)
        except ValueError as e:  # requests parses a redirect's Location even when it does not follow it
            if isinstance(e, requests.exceptions.InvalidHeader):
                raise
            raise _Refused(f"malformed URL or redirect Location at {_short(url)} ({_first_line(e)})") from None
        if r.status_code not in REDIRECTS:
            return r
        location = r.headers.get("Location")
        r.close()
        url = redirect_target(url, location)
        if url in seen:
            raise _Refused(f"redirect loop (back to {_short(url)})")
        seen.add(url)
    raise _Refused(f"more than {policy.max_redirects} redirects")


def redirect_target(current: str, location: str | None) -> str:
    """The absolute URL a ``Location`` header points to; _Refused unless it is a valid http(s) URL."""
    if not location or not location.strip():
        raise _Refused("a redirect without a Location")
    try:
        target = urljoin(current, location.strip())
        parts = urlsplit(target)
        parts.port  # noqa: B018 - parsing the port is the check (ValueError when out of range)
    except ValueError as e:
        raise _Refused(f"malformed redirect Location {_short(location)!r} ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise _Refused(f"redirect to {_short(target)!r} refused: only http and https are followed")
    if not parts.hostname:
        raise _Refused(f"malformed redirect Location {_short(location)!r} (no host)")
    return target


def _short(text: str, n: int = 120) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= n else text[:n] + "..."


def _check_response(r: requests.Response, part: Path, offset: int) -> int | None:
    """The offset the body starts at (0 = restart), or None when ``part`` is already complete."""
    if r.status_code == 416 and offset:
        m = re.match(r"bytes \*/(\d+)", r.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == offset:
            return None
        part.unlink()
        raise _Retry(ConnectionResetError("the server refused to resume; restarting"))
    if r.status_code in (408, 429) or r.status_code >= 500:
        raise _Retry(ConnectionError(f"HTTP {r.status_code} {_short(r.reason or '', 60)}"))
    if r.status_code == 206:
        m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == offset:
            return offset
        part.unlink(missing_ok=True)
        raise _Retry(ConnectionResetError("the server sent another byte range; restarting"))
    if r.status_code != 200:  # 4xx, a 3xx that is no redirect (304, 300), 1xx / 204: no file here
        raise _Refused(f"HTTP {r.status_code} {_short(r.reason or '', 60)}".rstrip())
    return 0  # 200: the whole file (a server that ignores Range also lands here)


def _content_encoding(r: requests.Response) -> str | None:
    """None for plain bytes; 'gzip' / 'deflate' (asked for identity, but some servers compress anyway)."""
    encoding = (r.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return encoding
    raise _Refused(f"unsupported Content-Encoding {_short(encoding, 40)!r}")


def _content_length(r: requests.Response) -> int | None:
    length = (r.headers.get("Content-Length") or "").strip()
    return int(length) if length.isdigit() and len(length) < 20 else None


def _limit_text(size: int | None, limit: int) -> str:
    if size is not None:
        return f"the published size ({size} bytes)"
    return f"the limit for files of unpublished size ({limit} bytes)"


def _write_body(r: requests.Response, part: Path, offset: int, total: int | None, limit: int, size: int | None,
                encoding: str | None, policy: DownloadPolicy, progress: bool) -> None:
    """Stream the body into ``part``; more than ``limit`` bytes, or a broken encoding, deletes it.

    An encoded body cannot be resumed (ranges count encoded bytes), so any failure deletes it too."""
    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
               desc=part.name.removesuffix(".part"), leave=False)
    written = offset
    try:
        with open(part, "ab" if offset else "wb") as f, bar:
            for chunk in _body_chunks(r, encoding, policy.chunk_size):
                written += len(chunk)
                if written > limit:
                    raise _Refused(f"the body is longer than {_limit_text(size, limit)}")
                f.write(chunk)
                bar.update(len(chunk))
    except BaseException as e:
        if encoding is not None or isinstance(e, _Refused):
            part.unlink(missing_ok=True)
        raise


def _body_chunks(r: requests.Response, encoding: str | None, chunk_size: int) -> Iterator[bytes]:
    """The body's bytes, decoded; never more than ``chunk_size`` bytes at a time (a gzip bomb stays small)."""
    raw = r.raw.stream(chunk_size, decode_content=False)
    if encoding is None:
        yield from raw
        return
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: a gzip or zlib header, detected
    try:
        for data in raw:
            while data:
                yield inflate.decompress(data, chunk_size)
                data = inflate.unconsumed_tail
        if not inflate.eof:
            raise _Refused(f"the {encoding} body ends before its end marker")
    except zlib.error as e:
        raise _Refused(f"the {encoding} body is broken ({e})") from None


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
        if not isinstance(inner, BaseException):  # urllib3 puts the cause second: ('Connection aborted.', exc)
            inner = next((a for a in e.args if isinstance(a, BaseException)), None)
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
    if isinstance(cause, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                          requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader, ValueError)):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    if _find(cause, urllib3.exceptions.InvalidChunkLength):
        return "the server's chunked transfer encoding is broken"
    bad_http = _find(cause, http.client.HTTPException)
    if bad_http is not None and not isinstance(bad_http, http.client.IncompleteRead):
        if isinstance(bad_http, http.client.RemoteDisconnected):
            return "the server hung up without an answer"
        return f"the server's answer is not valid HTTP ({type(bad_http).__name__}: {_first_line(bad_http)[:80]})"
    if isinstance(cause, (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException)):
        return "the connection broke off"
    return _first_line(cause)  # our own messages (HTTP 503, short read)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return _short(text.splitlines()[0], 200) if text else type(e).__name__
