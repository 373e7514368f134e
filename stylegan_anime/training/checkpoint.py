"""Training snapshots: one safetensors file per snapshot, written atomically.

The file follows ``formats/native.py``'s conventions (tensors under ``G_ema.``, ``G.``,
``D.``; the network configs as JSON under the metadata key ``configs``), so ``load`` and
``--resume`` read a snapshot like any weights file. Beside the networks it holds what an
exact continuation needs: optimiser states (``opt.<name>.<param>.<key>``), extra training
tensors (``extra.<name>``: path-length mean, ADA p), every rank's RNG states
(``rng.<rank>.<kind>``) and the progress (metadata key ``progress``). ``latest.json``
names the newest snapshot; older ones beyond ``keep`` are deleted after it is written.

A full disk is one line (``disk_space``) and leaves every earlier snapshot as it was. A write that
was killed leaves only temp files (ours ``.snapshot-….safetensors.XXXX.safetensors``, safetensors'
own ``.tmpXXXXXX``), which ``remove_stale_temps`` deletes when the run continues.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..io.atomic import atomic_path
from ..errors import UserError
from ..io.formats import native
from . import disk_space

LATEST = "latest.json"
PREFIX = "snapshot-"
SNAPSHOT_NAME = re.compile(r"snapshot-\d{9,}\.safetensors")
# Temp files of the run folder's writers: atomic_path's ".<target>.<random><suffix>" for the files a run
# writes, and the ".tmp" + 6 characters that safetensors writes beside its target before renaming.
RUN_FILE_PREFIXES = (PREFIX, "samples-", LATEST, "log.jsonl", "metrics.jsonl", "training.json")
SAFETENSORS_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


@dataclass
class Progress:
    """Where the run is: images shown to D, optimiser steps done, the data sampler's
    position, wall time so far, ADA's pending statistics and the snapshot/tick counters."""

    nimg: int = 0
    step: int = 0
    sampler_epoch: int = 0
    sampler_pos: int = 0
    elapsed: float = 0.0
    ada_sum: float = 0.0
    ada_count: float = 0.0
    next_snap_nimg: int = 0
    next_tick_nimg: int = 0


# --------------------------------------------------------------------------- RNG states


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's torch (CPU, CUDA), numpy and python RNG states as tensors + JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, state, gauss_next = random.getstate()
    tensors["python"] = torch.tensor(state, dtype=torch.int64)
    meta = {"numpy": [name, int(pos), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss_next = meta["python"]
    random.setstate((version, tuple(int(v) for v in tensors["python"].tolist()), gauss_next))


# --------------------------------------------------------------------------- optimisers


def _optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"opt.{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"opt.{name}."
    for k, v in tensors.items():
        if k.startswith(prefix):
            idx, key = k[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[key] = v
    for k, v in meta["scalars"].items():
        idx, key = k.split(".", 1)
        state.setdefault(int(idx), {})[key] = v
    return {"state": state, "param_groups": meta["param_groups"]}


# --------------------------------------------------------------------------- files


@dataclass
class Snapshot:
    """A snapshot read back: tensors by key, and the parsed metadata."""

    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def progress(self) -> Progress:
        known = {f.name for f in fields(Progress)}
        return Progress(**{k: v for k, v in self.meta["progress"].items() if k in known})

    def network_state(self, role: str) -> dict[str, torch.Tensor]:
        return {k[len(role) + 1:]: v for k, v in self.tensors.items() if k.startswith(role + ".")}

    def optimizer_state(self, name: str) -> dict[str, Any]:
        return _optimizer_state(name, self.tensors, self.meta["optimizers"][name])

    def extra(self, name: str) -> torch.Tensor:
        return self.tensors[f"extra.{name}"]

    def rng(self, rank: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        prefix = f"rng.{rank}."
        tensors = {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        if not tensors:
            raise UserError(f"{self.path.name} has no RNG state for process {rank}: resume with the same "
                            f"number of processes ({len(self.meta['rng'])})")
        return tensors, self.meta["rng"][str(rank)]


def snapshot_name(nimg: int) -> str:
    return f"{PREFIX}{nimg:09d}.safetensors"


def save_snapshot(run_dir: Path, nets: native.Networks, optimizers: dict[str, torch.optim.Optimizer],
                  extras: dict[str, torch.Tensor], rng: list[tuple[dict[str, torch.Tensor], dict[str, Any]]],
                  progress: Progress, training_json: str, keep: int = 2) -> Path:
    """Write ``snapshot-<nimg>.safetensors`` atomically, point ``latest.json`` at it, and
    delete all but the newest ``keep`` snapshots. ``rng``: one state per rank."""
    tensors: dict[str, torch.Tensor] = {}
    configs: dict[str, Any] = {}
    for role in native.ROLES:
        net = getattr(nets, role)
        if net is None:
            continue
        configs[role] = net.cfg.to_dict()
        for k, v in net.state_dict().items():
            tensors[f"{role}.{k}"] = v.detach().cpu().contiguous()
    opt_meta = {}
    for name, opt in optimizers.items():
        t, m = _optimizer_tensors(name, opt)
        tensors.update(t)
        opt_meta[name] = m
    for name, v in extras.items():
        tensors[f"extra.{name}"] = v.detach().cpu().reshape(-1).contiguous()
    rng_meta = {}
    for rank, (t, m) in enumerate(rng):
        tensors.update({f"rng.{rank}.{k}": v.cpu().contiguous() for k, v in t.items()})
        rng_meta[str(rank)] = m
    metadata = {"format": native.FORMAT, "configs": json.dumps(configs, sort_keys=True),
                **{f"meta.{k}": v for k, v in nets.meta.items()},
                "progress": json.dumps(asdict(progress)), "optimizers": json.dumps(opt_meta),
                "rng": json.dumps(rng_meta), "training": training_json}
    path = Path(run_dir) / snapshot_name(progress.nimg)
    # What the file will take: the tensors, their header and the metadata (JSON, a few KB).
    needed = sum(t.numel() * t.element_size() for t in tensors.values()) + 64 * len(tensors) + \
        sum(len(k) + len(v) for k, v in metadata.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    disk_space.ensure_space(run_dir, path.name, needed)
    with disk_space.disk_full_is_a_user_error(run_dir, path.name, needed):
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        with atomic_path(Path(run_dir) / LATEST) as tmp:
            tmp.write_text(json.dumps({"snapshot": path.name, "nimg": progress.nimg}) + "\n")
    prune(run_dir, f"{PREFIX}*.safetensors", keep, newest=path)
    return path


def prune(run_dir: str | Path, pattern: str, keep: int, newest: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` files matching ``pattern`` (names sort by nimg; 0 keeps
    all); ``newest`` is never deleted. Returns the deleted paths."""
    if keep <= 0:
        return []
    gone = [old for old in sorted(Path(run_dir).glob(pattern))[:-keep] if old != newest]
    for old in gone:
        old.unlink(missing_ok=True)
    return gone


def remove_stale_temps(run_dir: str | Path) -> list[Path]:
    """Delete the temp files that killed writes left in a run folder; returns them.

    Call only when no other process writes into the folder (on resume, before training)."""
    stale = []
    for p in Path(run_dir).glob(".*"):
        ours = p.name[1:].startswith(RUN_FILE_PREFIXES) and p.name.count(".") >= 3
        if (ours or SAFETENSORS_TEMP.fullmatch(p.name)) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            stale.append(p)
    return sorted(stale)


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a file written by ``save_snapshot``."""
    path = Path(path)
    try:
        tensors = {}
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable snapshot ({str(e).splitlines()[0]})") from None
    if "progress" not in metadata:
        raise UserError(f"{path.name} is a weights file, not a training snapshot (use --resume to fine-tune from it)")
    try:
        meta = {"configs": json.loads(metadata["configs"]), "progress": json.loads(metadata["progress"]),
                "optimizers": json.loads(metadata["optimizers"]), "rng": json.loads(metadata["rng"]),
                "training": metadata["training"],
                "meta": {k[5:]: v for k, v in metadata.items() if k.startswith("meta.")}}
        if not all(isinstance(meta[k], dict) for k in ("configs", "progress", "optimizers", "rng")):
            raise ValueError("a metadata entry is not a JSON object")
    except (ValueError, KeyError) as e:
        raise UserError(f"{path} is not a readable snapshot (metadata: {str(e).splitlines()[0]})") from None
    return Snapshot(path, tensors, meta)


def latest_snapshot(run_dir: str | Path) -> Path | None:
    """The newest complete snapshot of a run folder (None if it has none)."""
    run_dir = Path(run_dir)
    name = _pointer(run_dir / LATEST)
    if name is not None and (run_dir / name).is_file():
        return run_dir / name
    found = sorted(p for p in run_dir.glob(f"{PREFIX}*.safetensors") if SNAPSHOT_NAME.fullmatch(p.name))
    return found[-1] if found else None


def _pointer(path: Path) -> str | None:
    """The snapshot name ``latest.json`` holds; None when it is missing, unreadable or names
    anything but a snapshot of this folder (the newest by name is used then)."""
    try:
        name = json.loads(path.read_text())["snapshot"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) and SNAPSHOT_NAME.fullmatch(name) else None
