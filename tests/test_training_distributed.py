"""Data-parallel training: two CPU processes over gloo end with identical weights."""
from __future__ import annotations

import socket

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from stylegan_anime.training import checkpoint

from training_utils import ddp_worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_finish_with_identical_weights(tmp_path):
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    snap = checkpoint.load_snapshot(checkpoint.latest_snapshot(tmp_path / "run"))
    assert snap.progress.nimg == 24
    assert 0 < float(a["augment_p"]) < 1  # ADA moved p, identically on both ranks
    assert sorted(snap.meta["rng"]) == ["0", "1"]  # every rank's RNG state, written by rank 0 alone
    first = snap.network_state("G")
    assert all(torch.equal(first[k], a[f"G.{k}"]) for k in first)
    earlier = checkpoint.load_snapshot(sorted((tmp_path / "run").glob("snapshot-*"))[0]).network_state("D")
    assert any(not torch.equal(earlier[k], a[f"D.{k}"]) for k in earlier)
