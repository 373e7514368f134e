"""Writing a data set: ``img00000000.png`` … plus ``dataset.json``, as a folder or a .zip, atomically.

The layout (the data set contract shared with ``training.dataset.ImageDataset``)::

    img00000000.png, img00000001.png, …   RGB, square, all one resolution
    dataset.json  {"resolution": R, "label_names": [...], "labels": [[name, vector], ...],
                   "attributes": [[name, {attribute: value}], ...], "skipped": {reason: count}, ...}

Nothing appears at the destination until the whole set is written (temp folder/zip, then rename).
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from ..io.atomic import atomic_dir, atomic_path
from ..errors import UserError

METADATA = "dataset.json"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)   # fixed so the same images give the same zip bytes


def image_name(index: int) -> str:
    return f"img{index:08d}.png"


def is_zip(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".zip"


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


class DatasetWriter:
    """Context manager that collects images and labels, then publishes the set atomically.

    ``label_names`` (optional) fixes the label vector layout; each ``add`` may then pass a ``label``
    of that length. ``skipped`` / ``converted`` count problems by reason for the report; ``extra``
    holds further JSON-able entries for dataset.json. An exception inside the block leaves the
    destination untouched.
    """

    def __init__(self, out: str | Path, resolution: int, label_names: Sequence[str] | None = None):
        if resolution < 1:
            raise UserError(f"resolution must be positive, got {resolution}")
        self.out, self.resolution = Path(out), resolution
        self.label_names = list(label_names) if label_names is not None else None
        self.labels: list[list[Any]] = []
        self.attributes: list[list[Any]] = []
        self.skipped: Counter[str] = Counter()
        self.converted: Counter[str] = Counter()
        self.extra: dict[str, Any] = {}
        self.count = 0
        self._stack = contextlib.ExitStack()
        self._zip: zipfile.ZipFile | None = None
        self._dir: Path | None = None

    def _check_replaceable(self) -> None:
        """Only ever replace an earlier data set: never a user's folder or some other file."""
        out = self.out
        if not out.exists():
            return
        if is_zip(out):
            if not out.is_file() or not zipfile.is_zipfile(out):
                raise UserError(f"{out} exists and is not a zip file; choose another output path")
        elif not out.is_dir():
            raise UserError(f"{out} exists and is not a folder; choose another output path")
        elif any(out.iterdir()) and not (out / METADATA).is_file():
            raise UserError(f"{out} is a folder that is not a data set (no {METADATA}); it would be replaced, "
                            f"so choose another output path")

    def __enter__(self) -> "DatasetWriter":
        self._check_replaceable()
        if is_zip(self.out):
            tmp = self._stack.enter_context(atomic_path(self.out))
            self._zip = self._stack.enter_context(zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED))
        else:
            self._dir = self._stack.enter_context(atomic_dir(self.out))
        return self

    def _write(self, name: str, data: bytes) -> None:
        if self._zip is not None:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16   # rw-r--r-- when unpacked
            self._zip.writestr(info, data)
        else:
            assert self._dir is not None
            (self._dir / name).write_bytes(data)

    def add(self, image: Image.Image, label: Sequence[float] | None = None,
            attributes: Mapping[str, Any] | None = None) -> str:
        """Append one RGB image of the set's resolution; returns its file name."""
        if image.mode != "RGB" or image.size != (self.resolution, self.resolution):
            raise ValueError(f"expected an RGB {self.resolution}² image, got {image.mode} {image.size}")
        if label is not None and self.label_names is not None and len(label) != len(self.label_names):
            raise ValueError(f"label has {len(label)} entries, label_names has {len(self.label_names)}")
        name = image_name(self.count)
        self._write(name, png_bytes(image))
        if label is not None:
            self.labels.append([name, list(label)])
        if attributes is not None:
            self.attributes.append([name, dict(attributes)])
        self.count += 1
        return name

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"resolution": self.resolution, "count": self.count}
        if self.labels:
            if self.label_names is not None:
                meta["label_names"] = self.label_names
            meta["labels"] = self.labels
        if self.attributes:
            meta["attributes"] = self.attributes
        meta["skipped"] = dict(sorted(self.skipped.items()))
        meta["converted"] = dict(sorted(self.converted.items()))
        meta.update(self.extra)
        return meta

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._write(METADATA, json.dumps(self.metadata(), indent=1).encode())
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return bool(self._stack.__exit__(exc_type, exc, tb))
