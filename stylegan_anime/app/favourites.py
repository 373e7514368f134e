"""Favourite characters in SQLite (WAL mode, so the app and a second process can write at once).

The file lives under ``$STYLEGAN_ANIME_HOME`` (default ``~/.local/share/stylegan-anime``) as
``favourites.sqlite``. Each row belongs to one network, named by its content hash (``network_id``):
favourites of another network are kept, listed as such, never mixed in. A file SQLite cannot read
is moved aside (``favourites.sqlite.corrupt-<time>``) with one message, and a fresh store started.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io.atomic import atomic_path
from ..latents.files import Latent, load_latent, save_latent

SCHEMA = """CREATE TABLE IF NOT EXISTS favourites (
    id INTEGER PRIMARY KEY AUTOINCREMENT, network TEXT NOT NULL, name TEXT NOT NULL, seed INTEGER,
    labels TEXT, psi REAL NOT NULL, w BLOB NOT NULL, w_shape TEXT NOT NULL, z BLOB, thumbnail BLOB,
    created REAL NOT NULL)"""


def data_home() -> Path:
    """``$STYLEGAN_ANIME_HOME`` or ``~/.local/share/stylegan-anime``."""
    return Path(os.environ.get("STYLEGAN_ANIME_HOME") or Path.home() / ".local" / "share" / "stylegan-anime")


def network_id(G) -> str:
    """The network's identity: sha256 (first 16 hex digits) of its parameters and buffers, by name.

    Two loads of one weights file get the same id; any change to a weight gives another."""
    cached = getattr(G, "_studio_network_id", None)
    if cached:
        return cached
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    G._studio_network_id = h.hexdigest()[:16]
    return G._studio_network_id


@dataclass
class Favourite:
    """One kept character. w: [num_ws, w_dim] float32 (truncated, what synthesis draws);
    z: [z_dim] or None (projected ones have none); labels: [c_dim] or None; thumbnail: PNG bytes."""

    id: int
    network: str
    name: str
    seed: int | None
    labels: list[float] | None
    psi: float
    w: np.ndarray
    z: np.ndarray | None
    thumbnail: bytes
    created: float

    def latent(self) -> Latent:
        """As the latent the other commands read (w as drawn, plus z and labels when known)."""
        t = (lambda a: torch.from_numpy(np.asarray(a, np.float32)) if a is not None else None)
        return Latent(w=t(self.w), z=t(self.z), c=t(self.labels))


def _blob(a: np.ndarray | None) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, np.float32).tobytes()


class FavouritesStore:
    """The favourites of every network in one SQLite file; ``path`` defaults to the data home's.

    Every call opens its own short transaction, so several processes may use one file."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else data_home() / "favourites.sqlite"
        self.notice: str | None = None  # the one message about a file moved aside, for the UI to show
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the favourites folder {self.path.parent}: {e.strerror or e}") from None
        try:
            self._init()
        except sqlite3.DatabaseError as e:
            self._move_aside(e)
            self._init()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)  # timeout: wait for the other writer, do not fail
        conn.row_factory = sqlite3.Row
        return conn

    def _init(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            conn.execute(SCHEMA)
        conn.close()

    def _move_aside(self, error: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):  # the WAL belongs to the broken file: it goes too
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        self.notice = (f"the favourites file {self.path} could not be read ({error}); it was moved to "
                       f"{aside.name} and a new one started")
        print(f"stylegan-anime: {self.notice}", file=sys.stderr)

    def add(self, network: str, name: str, w: np.ndarray, psi: float, thumbnail: bytes, seed: int | None = None,
            labels: list[float] | None = None, z: np.ndarray | None = None) -> int:
        """Keep one character; returns its id. w: [num_ws, w_dim]; z: [z_dim] or None."""
        w = np.asarray(w, np.float32)
        if w.ndim != 2:
            raise UserError(f"a favourite's w must be [num_ws, w_dim], got shape {w.shape}")
        row = (network, name.strip() or "unnamed", seed, json.dumps(list(map(float, labels))) if labels is not None
               else None, float(psi), _blob(w), json.dumps(list(w.shape)), _blob(z), thumbnail, time.time())
        with self._connect() as conn:
            cur = conn.execute("INSERT INTO favourites (network, name, seed, labels, psi, w, w_shape, z, thumbnail,"
                               " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            new_id = cur.lastrowid
        conn.close()
        return int(new_id)

    @staticmethod
    def _row(r: sqlite3.Row) -> Favourite:
        shape = tuple(json.loads(r["w_shape"]))
        return Favourite(id=r["id"], network=r["network"], name=r["name"], seed=r["seed"],
                         labels=json.loads(r["labels"]) if r["labels"] else None, psi=r["psi"],
                         w=np.frombuffer(r["w"], np.float32).reshape(shape).copy(),
                         z=np.frombuffer(r["z"], np.float32).copy() if r["z"] is not None else None,
                         thumbnail=r["thumbnail"], created=r["created"])

    def _query(self, sql: str, args: tuple) -> list[Favourite]:
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        conn.close()
        return [self._row(r) for r in rows]

    def list(self, network: str | None = None) -> list[Favourite]:
        """This network's favourites (all networks' without one), oldest first."""
        if network is None:
            return self._query("SELECT * FROM favourites ORDER BY id", ())
        return self._query("SELECT * FROM favourites WHERE network = ? ORDER BY id", (network,))

    def other_networks(self, network: str) -> dict[str, int]:
        """{network id: number of favourites} for every other network in the store."""
        with self._connect() as conn:
            rows = conn.execute("SELECT network, COUNT(*) FROM favourites WHERE network != ? GROUP BY network",
                                (network,)).fetchall()
        conn.close()
        return {r[0]: r[1] for r in rows}

    def get(self, fav_id: int) -> Favourite:
        found = self._query("SELECT * FROM favourites WHERE id = ?", (int(fav_id),))
        if not found:
            raise UserError(f"no favourite number {fav_id}")
        return found[0]

    def _change(self, sql: str, args: tuple, fav_id: int) -> None:
        with self._connect() as conn:
            n = conn.execute(sql, args).rowcount
        conn.close()
        if n == 0:
            raise UserError(f"no favourite number {fav_id}")

    def rename(self, fav_id: int, name: str) -> None:
        if not name.strip():
            raise UserError("a favourite's name cannot be empty")
        self._change("UPDATE favourites SET name = ? WHERE id = ?", (name.strip(), int(fav_id)), fav_id)

    def delete(self, fav_id: int) -> None:
        self._change("DELETE FROM favourites WHERE id = ?", (int(fav_id),), fav_id)

    def export_zip(self, network: str, path: str | Path) -> Path:
        """This network's favourites as ``<id>-<name>.npz`` latent files in one zip, written atomically."""
        favs = self.list(network)
        if not favs:
            raise UserError("no favourites to export for this network")
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as zf, tempfile.TemporaryDirectory() as work:
            for f in favs:  # through save_latent: the very files `interpolate --seeds a.npz` reads
                zf.write(save_latent(f.latent(), Path(work) / f"{f.id}.npz"), f"{f.id}-{_safe(f.name)}.npz")
        return Path(path)


def _safe(name: str) -> str:
    """A name usable as a file name inside the zip."""
    keep = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in name).strip()
    return keep.replace(" ", "_")[:60] or "unnamed"


def read_zip(path: str | Path) -> list[tuple[str, Latent]]:
    """(name, latent) for each ``.npz`` in a zip (as ``export_zip`` writes, or any zip of latents)."""
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{Path(path).name} is not a zip of latents ({e})") from None
    out = []
    with zf, tempfile.TemporaryDirectory() as tmp:
        for info in zf.infolist():
            if not info.filename.lower().endswith(".npz") or info.is_dir():
                continue
            target = Path(tmp) / "latent.npz"  # one fixed name: member names never become paths here
            target.write_bytes(zf.read(info))
            name = Path(info.filename).stem.split("-", 1)[-1].replace("_", " ")
            out.append((name, load_latent(target)))
    if not out:
        raise UserError(f"{Path(path).name} holds no .npz latent files")
    return out
