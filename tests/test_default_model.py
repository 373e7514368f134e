"""The bundled default model: registered, small, loads offline, and runs the README's main job."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from stylegan_anime import cli
from stylegan_anime.data.attributes import label_names
from stylegan_anime.editing.tags import network_label_names, network_label_prior
from stylegan_anime.io import hub, loading
from stylegan_anime.io.formats import native

MAX_BYTES = 25 * 1024 * 1024


def test_default_is_a_bundled_64px_model_under_25_mb():
    entry = hub.registry()["default"]
    assert entry.resolution == 64
    path = loading.resolve_source("default")
    assert path.resolve() == (hub.WEIGHTS_DIR / "default.safetensors").resolve()
    assert path.stat().st_size < MAX_BYTES
    nets = native.load(path)
    assert nets.G_ema.img_resolution == 64 and nets.G_ema.c_dim == len(label_names())
    assert network_label_names(nets.G_ema) == label_names()   # the synthetic set's attributes, by name
    assert nets.D is not None and nets.D.c_dim == nets.G_ema.c_dim   # fine-tuning starts from a trained D
    assert float(nets.meta["kimg"]) > 0
    card = (hub.WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    assert f"{float(nets.meta['kimg']):.2f} kimg" in card and (hub.WEIGHTS_DIR / "default_samples.png").exists()


def test_readme_main_job_writes_the_grid_of_the_model_card(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_ANIME_CACHE", str(tmp_path / "cache"))  # nothing downloaded, nothing cached
    out = tmp_path / "grid.png"
    assert cli.main(["generate", "--seeds", "0-8", "--grid", "3x3", "-o", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape == (192, 192, 3) and grid.std() > 10
    bundled = np.asarray(Image.open(hub.WEIGHTS_DIR / "default_samples.png").convert("RGB")).astype(int)
    assert np.abs(grid.astype(int) - bundled).max() <= 2  # the same seeds, up to float rounding
    assert loading.load("default").mapping.w_avg.abs().sum() > 0  # trained, not a fresh network


def test_seeds_without_labels_are_drawn_with_the_data_sets_frequencies():
    G = loading.load("default")
    prior = np.array(network_label_prior(G))
    hair = [i for i, n in enumerate(label_names()) if n.startswith("hair_color=")]
    assert abs(prior[hair].sum() - 1) < 1e-4 and (prior[hair] > 0.05).all()   # every hair colour occurs


def test_fine_tuning_default_starts_from_its_trained_discriminator(tmp_path, capsys):
    import torch
    from stylegan_anime.data.synthetic import write_synthetic_dataset
    from stylegan_anime.networks import GeneratorConfig
    from stylegan_anime.training.config import TrainingConfig
    from stylegan_anime.training.dataset import ImageDataset
    from stylegan_anime.training.loop import Trainer
    data = write_synthetic_dataset(tmp_path / "data", 4, 64, progress=False)
    cfg = TrainingConfig(data=str(data), g=GeneratorConfig(img_resolution=64), resume="default", batch=4,
                         augment="off", device="cpu")
    trainer = Trainer(cfg, tmp_path / "run", ImageDataset(data), progress_bar=False)
    bundled = native.load(loading.resolve_source("default")).D.state_dict()
    assert all(torch.equal(v, bundled[k]) for k, v in trainer.D.state_dict().items())
    assert "no discriminator" not in capsys.readouterr().err
