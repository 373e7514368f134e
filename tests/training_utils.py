"""Tiny data sets and configs for training tests (seconds per run on the CPU)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan_anime.networks import DiscriminatorConfig, GeneratorConfig
from stylegan_anime.training.config import TrainingConfig


class BlobDataset(torch.utils.data.Dataset):
    """n images of a coloured square on a dark background: uint8 [3, res, res], labels [c_dim]."""

    def __init__(self, n: int = 16, res: int = 16, c_dim: int = 0, seed: int = 0):
        rng = np.random.RandomState(seed)
        imgs = np.full([n, 3, res, res], 20, dtype=np.uint8)
        for i in range(n):
            x, y = rng.randint(0, res // 2, size=2)
            imgs[i, :, y: y + res // 2, x: x + res // 2] = rng.randint(100, 255, size=[3, 1, 1])
        self.images = torch.from_numpy(imgs)
        self.labels = torch.from_numpy(np.eye(max(c_dim, 1), dtype=np.float32)[rng.randint(0, max(c_dim, 1), n)])
        self.c_dim = c_dim
        if c_dim == 0:
            self.labels = torch.zeros([n, 0])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


def write_folder_dataset(path: Path, dataset: BlobDataset) -> Path:
    """The data set layout: img00000000.png ... + dataset.json."""
    path.mkdir(parents=True, exist_ok=True)
    labels = []
    for i in range(len(dataset)):
        name = f"img{i:08d}.png"
        Image.fromarray(dataset.images[i].permute(1, 2, 0).numpy()).save(path / name)
        labels.append([name, dataset.labels[i].tolist()])
    meta = {"resolution": dataset.images.shape[-1], "label_names": [f"c{i}" for i in range(dataset.c_dim)],
            "labels": labels if dataset.c_dim else None}
    (path / "dataset.json").write_text(json.dumps(meta))
    return path


def tiny_config(res: int = 16, c_dim: int = 0, **overrides) -> TrainingConfig:
    g = GeneratorConfig(img_resolution=res, z_dim=16, w_dim=16, c_dim=c_dim, mapping_layers=2, channel_base=128,
                        channel_max=16)
    d = DiscriminatorConfig(img_resolution=res, c_dim=c_dim, channel_base=128, channel_max=16, mapping_layers=1)
    base = dict(g=g, d=d, batch=4, kimg=0.016, snap_kimg=0.008, tick_kimg=0.004, r1_interval=2, pl_interval=2,
                augment="off", grid_seeds=4)
    base.update(overrides)
    return TrainingConfig(**base)


def ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """One process of a 2-process gloo run: trains, then writes its own final weights."""
    import os

    from safetensors.torch import save_file

    from stylegan_anime.training import distributed
    from stylegan_anime.training.loop import train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist = distributed.init_from_env(torch.device("cpu"))
    try:
        trainer = train(tiny_config(kimg=0.024, c_dim=2, augment="ada", ada_interval=1, ada_kimg=0.05,
                                    ada_target=-1.5), Path(out_dir) / "run", dataset=BlobDataset(c_dim=2),
                        dist=dist, progress_bar=False)
        tensors = {f"{role}.{k}": v.contiguous() for role in ("G", "D", "G_ema")
                   for k, v in getattr(trainer, role).state_dict().items()}
        tensors["augment_p"] = trainer.augment_pipe.p.reshape(1).clone()
        save_file(tensors, str(Path(out_dir) / f"rank{rank}.safetensors"))
    finally:
        distributed.shutdown(dist)
