"""Where source images come from: a folder (recursive) or a zip, listed in a stable order."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator

from ..errors import UserError

# Files that describe a source rather than being images of it.
METADATA_NAMES = ("dataset.json",)


class Source:
    """The files of a folder or zip: ``names`` (sorted, '/'-separated) and ``read(name) -> bytes``."""

    def __init__(self, path: str | Path, exclude: str | Path | None = None):
        """``exclude``: a path inside a source folder to leave out (the output, when written there)."""
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"source {self.path} does not exist")
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_file():
            if not zipfile.is_zipfile(self.path):
                raise UserError(f"source {self.path} is neither a folder nor a zip file")
            try:
                self._zip = zipfile.ZipFile(self.path)
                all_names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                raise UserError(f"cannot read zip {self.path}: {e}") from None
        else:
            skip = Path(exclude).resolve() if exclude is not None else None
            all_names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*")
                         if p.is_file() and not _inside(p, skip)]
        self.all_names = sorted(all_names)
        # Hidden files (.DS_Store, ._resource forks, __MACOSX) are not part of the data.
        self.names = [n for n in self.all_names if n not in METADATA_NAMES and not _hidden(n)]

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def has(self, name: str) -> bool:
        return name in self.all_names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _inside(path: Path, other: Path | None) -> bool:
    if other is None:
        return False
    resolved = path.resolve()
    return resolved == other or other in resolved.parents
