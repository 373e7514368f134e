"""Where source images come from: a folder (recursive) or a zip, listed in a stable order.

Every entry of the source ends up in exactly one place: ``names`` (files to try as images) or
``skipped`` (a count by reason: symlink loop, dangling symlink, a FIFO or device, a folder named like
an image, a hidden file, ...). Nothing is dropped silently, and nothing is opened that could block
(a FIFO) or never end (``/dev/zero`` behind a symlink) or that is far larger than an image may be.
"""
from __future__ import annotations

import errno
import os
import stat
import zipfile
from collections import Counter
from pathlib import Path
from typing import Iterator

from ..errors import UserError

# Files that describe a source rather than being images of it.
METADATA_NAMES = ("dataset.json",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".qoi", ".jp2")
_STAT_REASONS = {errno.ELOOP: "symlink_loop", errno.ENOENT: "dangling_symlink", errno.ENOTDIR: "dangling_symlink"}


class Skip(Exception):
    """A source entry that cannot go into the set; ``reason`` names why (a report key)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def printable_name(name: str) -> str:
    """A name as it can be stored in JSON and shown: bytes that are not UTF-8 (which Python keeps
    as lone surrogates) become ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace") if not is_utf8(name) else name


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Source:
    """The files of a folder or zip: ``names`` (sorted, '/'-separated), ``read(name, max_bytes)``,
    and ``skipped``: entries that are not files to read, counted by reason."""

    def __init__(self, path: str | Path, exclude: str | Path | None = None):
        """``exclude``: a path inside a source folder to leave out (the output, when written there)."""
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"source {self.path} does not exist")
        self._zip: zipfile.ZipFile | None = None
        self.skipped: Counter[str] = Counter()
        if self.path.is_file():
            if not zipfile.is_zipfile(self.path):
                raise UserError(f"source {self.path} is neither a folder nor a zip file")
            try:
                self._zip = zipfile.ZipFile(self.path)
                all_names = self._zip_names()
            except Exception as e:   # garbage directories raise BadZipFile, NotImplementedError, ValueError, ...
                raise UserError(f"cannot read zip {self.path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                    from None
        elif self.path.is_dir():
            skip = os.path.realpath(exclude) if exclude is not None else None
            all_names = self._walk(os.path.realpath(self.path), skip)
        else:   # a FIFO or device: never opened (a FIFO would wait for a writer)
            raise UserError(f"source {self.path} is neither a folder nor a zip file")
        self.all_names = sorted(all_names)
        # Hidden files (.DS_Store, ._resource forks, __MACOSX) are not part of the data: counted, not read.
        hidden = [n for n in self.all_names if _hidden(n)]
        self.skipped["hidden"] += len(hidden)
        self.skipped = +self.skipped   # no zero counts in the report
        self.names = [n for n in self.all_names if n not in METADATA_NAMES and not _hidden(n)]

    def _zip_names(self) -> list[str]:
        assert self._zip is not None
        names = []
        for info in self._zip.infolist():
            kind = (info.external_attr >> 16) & 0o170000
            if info.is_dir():
                if info.filename.rstrip("/").lower().endswith(IMAGE_SUFFIXES):
                    self.skipped["folder_named_like_an_image"] += 1
            elif kind == stat.S_IFLNK:
                self.skipped["symlink_in_zip"] += 1   # its data is the target's name, never an image
            elif kind not in (0, stat.S_IFREG):
                self.skipped["not_regular_file"] += 1
            else:
                names.append(info.filename)
        unique = set(names)
        # A repeated member name can only ever be read as its last copy: the others are counted.
        self.skipped["duplicate_name"] += len(names) - len(unique)
        return list(unique)

    def _walk(self, root: str, exclude: str | None) -> list[str]:
        """Every entry under root, without following symlinked folders (they may loop or leave the
        source); an explicit stack, so any depth works."""
        names: list[str] = []
        stack = [(root, "")]
        while stack:
            folder, rel = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                self.skipped["unreadable_folder"] += 1
                continue
            for entry in entries:
                if entry.path == exclude:
                    continue
                kind = _entry_kind(entry)
                if kind == "folder":
                    if entry.name.lower().endswith(IMAGE_SUFFIXES):
                        self.skipped["folder_named_like_an_image"] += 1
                    stack.append((entry.path, rel + entry.name + "/"))
                elif kind == "file":
                    names.append(rel + entry.name)
                else:
                    self.skipped[kind] += 1
        return names

    def size(self, name: str) -> int:
        """The size the source declares for ``name`` (a zip's directory, or the file's stat)."""
        if self._zip is not None:
            return self._zip.getinfo(name).file_size
        return os.stat(self.path / name).st_size

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """The bytes of ``name``; Skip when it is not a regular file or is larger than ``max_bytes``
        (decided from the declared size, before anything is read)."""
        if self._zip is not None:
            info = self._zip.getinfo(name)
            if max_bytes is not None and info.file_size > max_bytes:
                raise Skip("file_too_large")
            return self._zip.read(name)   # zipfile stops at the declared size and checks the CRC
        try:
            # O_NONBLOCK: a FIFO put in place after the listing must not wait for a writer.
            fd = os.open(self.path / name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            raise Skip(_STAT_REASONS.get(e.errno, "unreadable")) from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Skip("not_regular_file")
            if max_bytes is not None and st.st_size > max_bytes:
                raise Skip("file_too_large")
            data = f.read(max_bytes + 1 if max_bytes is not None else -1)
        if max_bytes is not None and len(data) > max_bytes:   # it grew since the stat
            raise Skip("file_too_large")
        return data

    def has(self, name: str) -> bool:
        return name in self.all_names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _entry_kind(entry: os.DirEntry) -> str:
    """'folder', 'file' (a regular file, or a symlink to one) or the reason the entry is skipped."""
    try:
        if entry.is_symlink():
            try:
                mode = os.stat(entry.path).st_mode
            except OSError as e:
                return _STAT_REASONS.get(e.errno, "unreadable")
            if stat.S_ISDIR(mode):
                return "symlink_to_folder"
            return "file" if stat.S_ISREG(mode) else "not_regular_file"
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        if entry.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        return "unreadable"
    return "not_regular_file"   # FIFO, socket, device


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))
