"""Known models and the download cache: a registry name or a URL → a verified file on disk.

The registry is ``weights/registry.json`` (bundled with the package), plus the JSON file named by
``$STYLEGAN_ANIME_REGISTRY`` if set (its entries add to, or replace, the bundled ones). An entry is
either bundled (``file``, relative to its registry file), downloadable (``url``), or obtainable only
by hand (``manual_url``: a page such as a mega.nz link; ``download NAME --from FILE`` then files it).

Downloads land in ``$STYLEGAN_ANIME_CACHE`` (default ``~/.cache/stylegan_anime``) under
``models/<key>/`` where ``key`` is derived from the URL, so one URL is fetched once. Beside each
file, ``<file>.sha256.json`` records its sha256; every later fetch checks the file against it. A
download is sniffed for a (complete) weights file before it enters the cache (``download_check``).
When the registry publishes no sha256, the record stays unpinned until the file first loads
(``checked_load``); then its hash is pinned (trust on first use) and the user is told so in one line.
A cached file that fails to load says how to fetch it again (``--force``).
"""
from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import unquote, urlparse

from .atomic import atomic_path
from ..ops.bundled import bundled_dir
from .download import DownloadPolicy, download, partial_path, say, sha256_file, verify
from .download_check import FORMAT_READERS, check_weights
from ..errors import UserError
from .file_lock import file_lock

WEIGHTS_DIR = bundled_dir("weights")
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"
CACHE_ENV = "STYLEGAN_ANIME_CACHE"
REGISTRY_ENV = "STYLEGAN_ANIME_REGISTRY"
COMPRESSIONS = (None, "xz")
FORMATS = ("safetensors", "tf-pickle", "ada-pickle", "rosinality")   # the readers in formats/
T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFile:
    """Bytes at a URL. ``sha256`` / ``size`` describe the bytes as downloaded (None: not published)."""

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    compression: str | None = None   # "xz": the cache keeps the decompressed file
    manual_url: str | None = None    # no direct download: where to get it by hand (url is then "manual:NAME")
    format: str | None = None        # one of FORMATS when the registry says; a download must sniff as it

    @property
    def cached_name(self) -> str:
        return self.filename.removesuffix(".xz") if self.compression == "xz" else self.filename


@dataclass(frozen=True)
class ModelEntry:
    """One known model. Exactly one of ``file`` (bundled) / ``url`` / ``manual_url`` says where it is."""

    name: str
    resolution: int
    format: str          # one of FORMATS; readers sniff the bytes, tests/test_registry_models.py checks it
    licence: str
    source: str          # the page that documents the model and these facts
    description: str = ""
    file: str | None = None
    url: str | None = None
    manual_url: str | None = None
    filename: str | None = None
    sha256: str | None = None
    size: int | None = None
    compression: str | None = None

    def __post_init__(self):
        where = [k for k in ("file", "url", "manual_url") if getattr(self, k)]
        if len(where) != 1:
            raise UserError(f"registry entry {self.name!r} needs exactly one of file, url, manual_url (has {where})")
        if self.format not in FORMATS:
            raise UserError(f"registry entry {self.name!r}: format must be one of {', '.join(FORMATS)}")
        if not isinstance(self.resolution, int) or self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise UserError(f"registry entry {self.name!r}: resolution must be a power of two >= 4")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise UserError(f"registry entry {self.name!r}: sha256 must be 64 hex digits")
        if self.compression not in COMPRESSIONS:
            raise UserError(f"registry entry {self.name!r}: compression must be one of {COMPRESSIONS}")
        if self.manual_url and not self.filename:
            raise UserError(f"registry entry {self.name!r}: a manual_url entry needs a filename")

    @property
    def bundled(self) -> bool:
        return self.file is not None

    def remote(self) -> RemoteFile:
        """What to fetch; for manual entries the key is the name (there is no direct URL)."""
        return RemoteFile(url=self.url or f"manual:{self.name}", filename=self.filename or url_filename(self.url),
                          sha256=self.sha256, size=self.size, compression=self.compression,
                          manual_url=self.manual_url, format=self.format)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "stylegan_anime").expanduser()


def is_url(text: str | os.PathLike) -> bool:
    return str(text).startswith(("http://", "https://"))


def url_filename(url: str) -> str:
    name = unquote(Path(urlparse(url).path).name)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "download"


def _key(remote: RemoteFile) -> str:
    return hashlib.sha256(remote.url.encode()).hexdigest()[:16]


def cached_file(remote: RemoteFile) -> Path:
    return cache_dir() / "models" / _key(remote) / remote.cached_name


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _lock_path(remote: RemoteFile) -> Path:
    # outside models/ so that a failed download leaves nothing beside the cached files
    return cache_dir() / "locks" / f"{_key(remote)}.lock"


# ---------------------------------------------------------------------------------------- registry

def _read_registry(path: Path) -> dict[str, ModelEntry]:
    data = _parse_json(path)
    items = data.get("models") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UserError(f"registry file {path} must hold {{\"models\": [ {{entry}}, ... ]}}")
    known = {f.name for f in fields(ModelEntry)}
    entries = {}
    for item in items:
        unknown = set(item) - known
        if unknown:
            raise UserError(f"registry file {path}: unknown field(s) {sorted(unknown)} in {item.get('name')!r}")
        try:
            entry = ModelEntry(**item)
        except TypeError as e:
            raise UserError(f"registry file {path}: bad entry {item.get('name')!r}: {e}") from None
        if entry.file:  # resolved here so that a user registry can bundle files beside itself
            entry = ModelEntry(**{**asdict(entry), "file": str((path.parent / entry.file).resolve())})
        entries[entry.name] = entry
    return entries


def _parse_json(path: Path):
    """The file's JSON; a syntax error names the file and the line (people edit these by hand)."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"registry file {path} does not exist") from None
    except OSError as e:
        raise UserError(f"registry file {path} cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"registry file {path} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"registry file {path}, line {e.lineno} column {e.colno}: not valid JSON ({e.msg})") from None


def registry(path: str | os.PathLike | None = None) -> dict[str, ModelEntry]:
    """Name → entry: the bundled registry, then ``path`` (or ``$STYLEGAN_ANIME_REGISTRY``) over it."""
    models = _read_registry(REGISTRY_FILE) if REGISTRY_FILE.exists() else {}
    extra = path or os.environ.get(REGISTRY_ENV)
    if extra:
        models.update(_read_registry(Path(extra)))
    return models


def find(name: str, registry_path: str | os.PathLike | None = None) -> ModelEntry:
    models = registry(registry_path)
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise UserError(f"{name!r} is neither a file nor a known model (known: {known})")
    return models[name]


def entry_for_url(url: str, registry_path: str | os.PathLike | None = None) -> RemoteFile:
    """A URL's registry facts (sha256, size) when the registry knows it, else a bare RemoteFile."""
    for entry in registry(registry_path).values():
        if entry.url == url:
            return entry.remote()
    return RemoteFile(url=url, filename=url_filename(url))


def is_cached(entry: ModelEntry) -> bool:
    return Path(entry.file).exists() if entry.bundled else cached_file(entry.remote()).exists()


# ---------------------------------------------------------------------------------------- fetching

def fetch(source: str, *, force: bool = False, progress: bool = True, policy: DownloadPolicy = DownloadPolicy(),
          registry_path: str | os.PathLike | None = None) -> Path:
    """A registry name or an http(s) URL → the local path of its verified file (downloaded once)."""
    if is_url(source):
        return fetch_remote(entry_for_url(source, registry_path), force=force, progress=progress, policy=policy)
    entry = find(source, registry_path)
    if entry.bundled:
        path = Path(entry.file)
        if not path.exists():
            raise UserError(f"model {entry.name!r} is registered but its file {path} is missing")
        return path
    return fetch_remote(entry.remote(), force=force, progress=progress, policy=policy)


def fetch_remote(remote: RemoteFile, *, force: bool = False, progress: bool = True,
                 policy: DownloadPolicy = DownloadPolicy()) -> Path:
    """Download ``remote`` into the cache unless a verified copy is there; returns its path.

    The bytes are sniffed for a complete weights file (of ``remote.format``) before they are renamed
    into the cache; anything refused leaves nothing behind."""
    dest = cached_file(remote)
    with file_lock(_lock_path(remote), on_wait=lambda: say(f"waiting for another process fetching {remote.url}")):
        if dest.exists() and not force and _still_valid(remote, dest):
            return dest
        if remote.manual_url:
            raise UserError(f"{remote.filename} has no direct download: get it from {remote.manual_url} and run: "
                            f"stylegan-anime download {remote.url.removeprefix('manual:')} --from FILE")
        _discard(remote, dest, keep_part=not force)
        landing = dest.with_name(remote.filename)

        def check(path: Path) -> None:  # the bytes as cached: an .xz is checked again once unpacked
            check_weights(path, remote.url, remote.format)

        digest = download(remote.url, landing, sha256=remote.sha256, size=remote.size, policy=policy,
                          progress=progress, check=_check_xz(remote.url) if remote.compression == "xz" else check)
        _finish(remote, landing, dest, digest, check=check, limit=policy.max_bytes)
    return dest


def import_file(remote: RemoteFile, path: str | os.PathLike, entry: ModelEntry | None = None,
                force: bool = False) -> Path:
    """File a by-hand download (``path``) into the cache, verified exactly like a download.

    The file must be weights a reader takes, of ``entry``'s format and resolution when given; a
    verified cached copy is replaced only by a file checked against a published sha256 (or with
    ``force``). Whatever is refused, the cache is left as it was."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    if remote.compression == "xz" and not _is_xz(path):
        # already unpacked by hand: the published hash (of the .xz) cannot check it; trust on first use
        remote = replace(remote, filename=remote.cached_name, compression=None, sha256=None, size=None)
    dest = cached_file(remote)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path(remote)), tempfile.TemporaryDirectory(prefix=".import.", dir=dest.parent) as tmp:
        staged, digest, final_digest = _stage(remote, path, Path(tmp))
        _check_weights(staged, path, entry)
        if not _may_replace(remote, dest, final_digest, path, force):
            return dest
        _discard(remote, dest, keep_part=False)
        os.replace(staged, dest)
        _write_record(remote, dest, final_digest, digest)
        _note_trust(remote, digest)
    return dest


def _stage(remote: RemoteFile, path: Path, tmp: Path) -> tuple[Path, str, str]:
    """Copy ``path`` into the folder ``tmp``, check it like a download and unpack it if need be:
    (the file as it will be cached, sha256 of the bytes given, sha256 of the cached bytes)."""
    landing = tmp / remote.filename
    shutil.copyfile(path, landing)
    digest = verify(landing, str(path), remote.sha256, remote.size)
    if remote.compression != "xz":
        return landing, digest, digest
    staged = tmp / remote.cached_name
    return staged, digest, _decompress_xz(landing, staged)


def _check_weights(staged: Path, given: Path, entry: ModelEntry | None) -> None:
    """``staged`` (the bytes of the user's file ``given``) holds weights of ``entry``'s format and
    resolution; a one-line UserError naming ``given`` otherwise."""
    from . import formats  # formats → networks is heavy; only filing a file needs it
    try:
        reader = formats.detect(staged)
        expected = FORMAT_READERS.get(entry.format) if entry else None
        if expected and reader.name not in expected:
            raise UserError(f"it is a {reader.name}, but {entry.name} is a {expected[0]} file")
        G = reader.load(staged, "cpu").G_ema
    except UserError as e:
        raise UserError(f"{given} was not filed: {str(e).replace(staged.name, given.name)}") from None
    if entry and G.img_resolution != entry.resolution:
        raise UserError(f"{given} was not filed: it holds a {G.img_resolution}² generator, but {entry.name} "
                        f"is {entry.resolution}²")


def _may_replace(remote: RemoteFile, dest: Path, digest: str, given: Path, force: bool) -> bool:
    """Whether the checked file with sha256 ``digest`` should take the place of the cached ``dest``:
    False when it is the same file; a UserError when only an unverified file would replace a
    verified one (a copy that matches its record or the published sha256)."""
    if not dest.exists() or not _still_valid(remote, dest):
        return True
    if _read_record(dest)["sha256"] == digest:  # _still_valid has recorded it if it was not
        return False
    if remote.sha256 is None and not force:
        raise UserError(f"{given} was not filed: the cache holds a verified, different copy ({dest}) and "
                        f"{given.name} cannot be verified (no published sha256); add --force to replace it")
    return True


def _finish(remote: RemoteFile, landing: Path, dest: Path, digest: str,
            check: Callable[[Path], None] | None = None, limit: int = DownloadPolicy.max_bytes) -> None:
    """Decompress if needed (``check`` runs on the result before its rename), and record the sha256.

    The record is pinned when the registry published the hash; otherwise it stays unpinned until
    the file loads (``checked_load``), so that a broken or foreign file is never trusted."""
    final_digest = digest
    if remote.compression == "xz":
        final_digest = _decompress_xz(landing, dest, check, limit)
        landing.unlink()
    _write_record(remote, dest, final_digest, digest, pinned=remote.sha256 is not None)


def _check_xz(url: str) -> Callable[[Path], None]:
    def check(part: Path) -> None:
        if not _is_xz(part):
            raise UserError(f"{url} did not send an .xz file; nothing was cached")
    return check


def _note_trust(remote: RemoteFile, digest: str) -> None:
    if remote.sha256 is None:
        say(f"note: {remote.filename} has no published sha256, so it could not be verified; recorded sha256 "
            f"{digest} (trust on first use: later loads are checked against it)")


def _is_xz(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"\xfd7zXZ\x00"


def _decompress_xz(src: Path, dest: Path, check: Callable[[Path], None] | None = None,
                    limit: int = DownloadPolicy.max_bytes) -> str:
    """Unpack ``src`` onto ``dest`` (atomically), at most ``limit`` bytes (an xz bomb is cut off)."""
    h = hashlib.sha256()
    written = 0
    try:
        with atomic_path(dest) as tmp:
            with lzma.open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    written += len(chunk)
                    if written > limit:
                        raise UserError(f"{src.name} unpacks to more than {limit} bytes; it was deleted")
                    h.update(chunk)
                    fout.write(chunk)
            if check is not None:
                check(tmp)
    except lzma.LZMAError as e:
        src.unlink()
        raise UserError(f"{src.name} is not a valid .xz file ({e}); it was deleted") from None
    except UserError:
        src.unlink()
        raise
    return h.hexdigest()


def _write_record(remote: RemoteFile, dest: Path, digest: str, download_digest: str | None,
                  pinned: bool = True) -> None:
    """``sha256`` is the pinned hash (None until an unpublished file has loaded: ``unverified_sha256``)."""
    record = {"url": remote.url, "sha256": digest if pinned else None, "download_sha256": download_digest,
              "published": remote.sha256 is not None, "size": dest.stat().st_size}
    if not pinned:
        record["unverified_sha256"] = digest
    _save_record(dest, record)


def _save_record(dest: Path, record: dict) -> None:
    with atomic_path(_record_path(dest)) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


def _read_record(dest: Path) -> dict | None:
    """The record beside a cached file: pinned (``sha256``) or unpinned (``unverified_sha256``)."""
    try:
        record = json.loads(_record_path(dest).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("url"), str):
        return None
    if isinstance(record.get("sha256"), str) or isinstance(record.get("unverified_sha256"), str):
        return record
    return None


def _still_valid(remote: RemoteFile, dest: Path) -> bool:
    """Check a cached file against its recorded sha256; a corrupted one is reported and refetched.

    A file without a record (placed by hand) is checked against the published sha256 if there
    is one, else recorded unpinned: it is pinned when it first loads."""
    record = _read_record(dest)
    actual = sha256_file(dest)
    if record:
        expected = record.get("sha256") or record["unverified_sha256"]
    else:
        expected = remote.sha256 if remote.compression is None else None
    if expected is None or actual == expected.lower():
        if record is None:
            _write_record(remote, dest, actual, None, pinned=expected is not None)
        return True
    say(f"warning: the cached {dest} does not match its recorded sha256 (corrupted?); discarding it")
    return False


def checked_load(path: Path, read: Callable[[Path], T]) -> T:
    """``read(path)``; for a cached download, a failure names the URL and ``--force``, and the first
    success pins the hash of a file whose sha256 was not published (trust on first use)."""
    record = _cached_record(path)
    if record is None:
        return read(path)
    try:
        result = read(path)
    except UserError as e:
        url = record["url"]
        how = (f"stylegan-anime download {url} --force" if is_url(url)
               else f"stylegan-anime download {url.removeprefix('manual:')} --from FILE")
        raise UserError(f"{e} (the cached copy of {url}: run `{how}` to fetch it again)") from None
    if record.get("sha256") is None:
        digest = record["unverified_sha256"]
        with file_lock(_lock_path(RemoteFile(url=record["url"], filename=path.name))):  # the fetch's lock
            _save_record(path, {**record, "sha256": digest, "unverified_sha256": None})
        say(f"note: {path.name} has no published sha256; it loaded, so its sha256 {digest} is now recorded "
            "(trust on first use: later loads are checked against it)")
    return result


def _cached_record(path: Path) -> dict | None:
    """The record of ``path`` if it is a file in the download cache."""
    try:
        inside = Path(path).resolve().is_relative_to((cache_dir() / "models").resolve())
    except OSError:
        return None
    return _read_record(Path(path)) if inside else None


def _discard(remote: RemoteFile, dest: Path, keep_part: bool) -> None:
    """Remove a cached copy (and, unless resuming, any partial download)."""
    landing = dest.with_name(remote.filename)
    for p in {dest, _record_path(dest), landing}:
        p.unlink(missing_ok=True)
    if not keep_part:
        partial_path(landing).unlink(missing_ok=True)
