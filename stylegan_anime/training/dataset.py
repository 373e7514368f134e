"""Reading a data set (folder or .zip of ``img*.png`` + ``dataset.json``) for training.

See ``stylegan_anime.data.writer`` for the layout. Images are decoded lazily, one per
``__getitem__``; a zip is opened on first use in each process (so DataLoader workers each get
their own handle and nothing unpicklable is sent to them).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
METADATA = "dataset.json"


class ImageDataset(torch.utils.data.Dataset):
    """A square RGB image data set with optional label vectors.

    ``ds[i]`` → (image: uint8 [3, R, R], label: float32 [c_dim], or [0] without labels).
    With ``xflip`` the set is twice as long: items n..2n-1 are the mirror images of 0..n-1.
    """

    def __init__(self, path: str | os.PathLike, use_labels: bool = True, xflip: bool = False):
        self.path = Path(path)
        self.xflip = xflip
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if not self.path.exists():
            raise UserError(f"data set {self.path} does not exist")
        if self.path.is_file() and not zipfile.is_zipfile(self.path):
            raise UserError(f"data set {self.path} is neither a folder nor a zip file")
        names = self._list_files()
        self.image_names = sorted(n for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
        if not self.image_names:
            raise UserError(f"data set {self.path} holds no images")
        self.meta: dict[str, Any] = self._read_metadata() if METADATA in names else {}
        self._labels = self._load_labels() if use_labels else None
        self._attributes: dict[str, dict[str, Any]] | None = None
        self._resolution = int(self.meta.get("resolution") or self._read_image(0).shape[1])

    # ------------------------------------------------------------------ files

    def _is_zip(self) -> bool:
        return self.path.is_file()

    def _open_zip(self) -> zipfile.ZipFile:
        # A zip handle shared across fork() would share its file offset: reopen in each process.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _list_files(self) -> list[str]:
        if self._is_zip():
            return [n for n in self._open_zip().namelist() if not n.endswith("/")]
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]

    def _read_bytes(self, name: str) -> bytes:
        if self._is_zip():
            return self._open_zip().read(name)
        return (self.path / name).read_bytes()

    def _read_metadata(self) -> dict[str, Any]:
        try:
            meta = json.loads(self._read_bytes(METADATA))
        except (ValueError, UnicodeDecodeError) as e:
            raise UserError(f"{self.path}/{METADATA} is not valid JSON: {e}") from None
        if not isinstance(meta, dict):
            raise UserError(f"{self.path}/{METADATA} must hold a JSON object")
        return meta

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"], state["_zip_pid"] = None, None
        return state

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    # ------------------------------------------------------------------ labels

    def _load_labels(self) -> np.ndarray | None:
        entries = self.meta.get("labels")
        if not entries:
            return None
        table = {name: vec for name, vec in entries}
        missing = [n for n in self.image_names if n not in table]
        if missing:
            raise UserError(f"{len(missing)} images have no label in {METADATA} (e.g. {missing[0]})")
        labels = np.array([table[n] for n in self.image_names], dtype=np.float32)
        if labels.ndim == 1:   # class indices (the official format for class-conditional sets) → one-hot
            if not np.all(labels == np.round(labels)) or labels.min() < 0:
                raise UserError(f"labels in {METADATA} must be vectors or class indices")
            labels = np.eye(int(labels.max()) + 1, dtype=np.float32)[labels.astype(np.int64)]
        if labels.ndim != 2:
            raise UserError(f"labels in {METADATA} must be vectors of one length")
        names = self.meta.get("label_names")
        if names is not None and len(names) != labels.shape[1]:
            raise UserError(f"{METADATA} has {len(names)} label_names but label vectors of {labels.shape[1]}")
        return labels

    @property
    def c_dim(self) -> int:
        return 0 if self._labels is None else int(self._labels.shape[1])

    @property
    def label_names(self) -> list[str]:
        if self._labels is None:
            return []
        return list(self.meta.get("label_names") or [f"c{i}" for i in range(self.c_dim)])

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self._resolution, self._resolution)

    def get_label(self, idx: int) -> torch.Tensor:
        """float32 [c_dim] (empty without labels)."""
        if self._labels is None:
            return torch.zeros([0], dtype=torch.float32)
        return torch.from_numpy(self._labels[idx % len(self.image_names)].copy())

    def get_attributes(self, idx: int) -> dict[str, Any]:
        """The human-readable attributes of item idx ({} when the set has none)."""
        if self._attributes is None:
            self._attributes = {name: attrs for name, attrs in self.meta.get("attributes", [])}
        return dict(self._attributes.get(self.image_names[idx % len(self.image_names)], {}))

    # ------------------------------------------------------------------ images

    def _read_image(self, i: int) -> np.ndarray:
        name = self.image_names[i]
        try:
            with Image.open(io.BytesIO(self._read_bytes(name))) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read {name} in {self.path}: {e}") from None
        return arr.transpose(2, 0, 1)

    def __len__(self) -> int:
        return len(self.image_names) * (2 if self.xflip else 1)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for a data set of {len(self)}")
        idx %= len(self)
        n = len(self.image_names)
        img = self._read_image(idx % n)
        if img.shape != (3, self._resolution, self._resolution):
            raise UserError(f"{self.image_names[idx % n]} is {img.shape[2]}×{img.shape[1]}, "
                            f"the data set is {self._resolution}²")
        if idx >= n:
            img = img[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(img)), self.get_label(idx)
