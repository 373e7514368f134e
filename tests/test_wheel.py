"""A normal (non-editable) install carries what the README's main job needs: build the wheel, install
it into a fresh virtual environment, and run the main job from an empty folder. Its grid must be the
very grid this checkout makes, and the installed package must read nothing from the checkout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import stylegan_anime as sa

REPO = Path(__file__).resolve().parent.parent
MAIN_JOB = ["generate", "--seeds", "0-8", "--grid", "3x3", "-o", "grid.png"]


# A user's machine: nothing on PYTHONPATH (a checkout there would make pip think the package is installed).
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STYLEGAN_ANIME_REGISTRY")}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=CLEAN_ENV, **kw)
    assert result.returncode == 0, f"{cmd[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_in_a_fresh_venv_runs_the_main_job(tmp_path):
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    work.mkdir()
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)])
    wheel = next(dist.glob("stylegan_anime-*.whl"))
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    torch_version = torch.__version__.split("+")[0]
    run([str(py), "-m", "pip", "install", "-q", f"torch=={torch_version}", str(wheel)])
    run([str(venv / "bin" / "stylegan-anime"), *MAIN_JOB], cwd=work)

    where = run([str(py), "-c", "import stylegan_anime.io.hub as h; print(h.WEIGHTS_DIR)"], cwd=work)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    ours = sa.make_grid(sa.generate_images(sa.load("default", device="cpu"), "0-8"), cols=3)
    theirs = Image.open(work / "grid.png").convert("RGB")
    assert theirs.size == ours.size == (3 * 64, 3 * 64)
    assert np.array_equal(np.asarray(theirs), np.asarray(ours.convert("RGB")))
