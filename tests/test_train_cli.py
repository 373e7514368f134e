"""`stylegan-anime train`: a run from a data set folder, its continuation, and bad input."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stylegan_anime import cli
from stylegan_anime.io import loading
from stylegan_anime.io.formats import native
from stylegan_anime.networks import Generator
from stylegan_anime.training import checkpoint

from conftest import torch_threads
from training_utils import BlobDataset, tiny_config, write_folder_dataset

TINY = ["--cbase", "128", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map", "2", "--batch", "4",
        "--quiet"]


def test_train_then_resume_run_then_generate_from_the_snapshot(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", BlobDataset(n=8, c_dim=0))
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(data), "--out", str(run), "--kimg", "0.008", "--snap", "0.004",
                     "--augment", "fixed", "--p", "0.2", *TINY]) == 0
    cfg = json.loads((run / "training.json").read_text())
    assert cfg["g"]["img_resolution"] == 16 and cfg["batch"] == 4 and cfg["augment"] == "fixed"
    assert cli.main(["train", "--resume-run", str(run), "--kimg", "0.012", "--quiet"]) == 0
    snap = checkpoint.load_snapshot(checkpoint.latest_snapshot(run))
    assert snap.progress.nimg == 12 and float(snap.extra("augment_p")) == pytest.approx(0.2)
    G = loading.load(str(checkpoint.latest_snapshot(run)))
    assert isinstance(G, Generator) and G.img_resolution == 16
    assert cli.main(["generate", "--network", str(checkpoint.latest_snapshot(run)), "--seeds", "0-3",
                     "--grid", "2x2", "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").exists()


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", BlobDataset(n=4))
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--resolution", "32", *TINY]) == 2
    assert "does not match the data set (16²)" in capsys.readouterr().err
    native.save(Generator(tiny_config(res=32).g), tmp_path / "m32.safetensors")
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--resume",
                     str(tmp_path / "m32.safetensors"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "32² model but the data set is 16²" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["train", "--resume-run", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "no snapshot" in capsys.readouterr().err


def test_a_run_killed_after_a_snapshot_resumes_bit_for_bit(tmp_path):
    data = write_folder_dataset(tmp_path / "data", BlobDataset(n=8))
    common = ["--data", str(data), "--snap", "0.008", "--augment", "ada", *TINY]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "stylegan_anime.train", "--out", str(tmp_path / "killed"),
                             "--kimg", "1", *common], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (tmp_path / "killed" / "latest.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no snapshot within the time limit"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The killed run used one thread; float sums depend on the thread count, so the rest must too.
    with torch_threads(1):
        assert cli.main(["train", "--resume-run", str(tmp_path / "killed"), "--kimg", "0.024", "--quiet"]) == 0
        assert cli.main(["train", "--out", str(tmp_path / "whole"), "--kimg", "0.024", *common]) == 0
    a = checkpoint.load_snapshot(checkpoint.latest_snapshot(tmp_path / "killed"))
    b = checkpoint.load_snapshot(checkpoint.latest_snapshot(tmp_path / "whole"))
    assert a.progress.nimg == b.progress.nimg == 24
    keys = [k for k in b.tensors if not k.startswith("rng.")]
    assert sorted(k for k in a.tensors if not k.startswith("rng.")) == sorted(keys)
    for k in keys:
        assert torch.equal(a.tensors[k], b.tensors[k]), k


def test_a_conditional_model_fine_tunes_on_pictures_without_labels(tmp_path, capsys):
    """The bundled default is conditional; users' own drawings have no labels. Each picture gets the
    labels its index draws from the model's label frequencies, and the run continues like any other."""
    import numpy as np
    from stylegan_anime.data.attributes import label_names
    from stylegan_anime.editing.tags import seed_labels, with_label_names, with_label_prior
    from stylegan_anime.networks import Discriminator
    from stylegan_anime.training.loop import Trainer
    from training_utils import tiny_config as config
    names = label_names()
    cfg = config(c_dim=len(names))
    labels = np.eye(len(names), dtype=np.float32)[np.arange(40) % len(names)]
    g = dataclasses.replace(cfg.g, extra=with_label_prior(with_label_names({}, names), labels))
    model = native.save(native.Networks(G_ema=Generator(g), D=Discriminator(cfg.d)), tmp_path / "cond.safetensors")
    data = write_folder_dataset(tmp_path / "data", BlobDataset(n=8, c_dim=0))
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(data), "--out", str(run), "--resume", str(model), "--kimg", "0.008",
                     "--snap", "0.004", "--augment", "off", *TINY]) == 0
    err = capsys.readouterr().err
    assert "has no labels: each image gets labels drawn" in err
    assert cli.main(["train", "--resume-run", str(run), "--kimg", "0.012", "--quiet"]) == 0
    G = loading.load(str(checkpoint.latest_snapshot(run)))
    assert G.c_dim == len(names) and checkpoint.load_snapshot(checkpoint.latest_snapshot(run)).progress.nimg == 12
    from stylegan_anime.training.dataset import ImageDataset
    trainer = Trainer(config(resume=str(model)), tmp_path / "t", ImageDataset(data), progress_bar=False)
    _, real_c = trainer._real_batch()
    assert real_c.shape == (4, len(names))
    assert torch.equal(trainer.dataset.get_label(5), seed_labels(trainer.G, [5])[0])
