"""Training snapshots: one safetensors file per snapshot, written atomically.

The file follows ``formats/native.py``'s conventions (tensors under ``G_ema.``, ``G.``,
``D.``; the network configs as JSON under the metadata key ``configs``), so ``load`` and
``--resume`` read a snapshot like any weights file. Beside the networks it holds what an
exact continuation needs: optimiser states (``opt.<name>.<param>.<key>``), extra training
tensors (``extra.<name>``: path-length mean, ADA p), every rank's RNG states
(``rng.<rank>.<kind>``) and the progress (metadata key ``progress``). ``latest.json``
names the newest snapshot; older ones beyond ``keep`` are deleted after it is written.
"""
from __future__ import annotations

import json
import random
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

LATEST = "latest.json"
PREFIX = "snapshot-"


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
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    with atomic_path(Path(run_dir) / LATEST) as tmp:
        tmp.write_text(json.dumps({"snapshot": path.name, "nimg": progress.nimg}) + "\n")
    for old in sorted(Path(run_dir).glob(f"{PREFIX}*.safetensors"))[:-keep] if keep > 0 else []:
        if old != path:
            old.unlink(missing_ok=True)
    return path


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
    meta = {"configs": json.loads(metadata["configs"]), "progress": json.loads(metadata["progress"]),
            "optimizers": json.loads(metadata["optimizers"]), "rng": json.loads(metadata["rng"]),
            "training": metadata["training"],
            "meta": {k[5:]: v for k, v in metadata.items() if k.startswith("meta.")}}
    return Snapshot(path, tensors, meta)


def latest_snapshot(run_dir: str | Path) -> Path | None:
    """The newest complete snapshot of a run folder (None if it has none)."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST
    if pointer.exists():
        path = run_dir / json.loads(pointer.read_text())["snapshot"]
        if path.exists():
            return path
    found = sorted(run_dir.glob(f"{PREFIX}*.safetensors"))
    return found[-1] if found else None
