"""Make a training snapshot the bundled ``default`` model: its G_ema and D (so that
``train --resume default`` fine-tunes against a trained discriminator), the data set's label
frequencies (so that seeds without labels are drawn as the data set is), and provenance.

    python scripts/bundle_default.py /work/runs/cond64/snapshot-000100000.safetensors \\
        --data synth64.zip --kimg 100 --wall-time 5300 -o weights/default.safetensors
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from stylegan_anime.editing.tags import LABEL_PRIOR_KEY, with_label_prior
from stylegan_anime.io import loading
from stylegan_anime.io.formats import native
from stylegan_anime.metrics.evaluate import data_labels
from stylegan_anime.training.dataset import ImageDataset

MAX_BYTES = 25 * 1024 * 1024   # issue 21: the bundled file stays small enough for the repository


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("snapshot")
    p.add_argument("--data", required=True, help="the data set the snapshot was trained on")
    p.add_argument("--kimg", type=float, required=True, help="training progress of the snapshot")
    p.add_argument("--wall-time", type=float, required=True, help="training wall time, seconds")
    p.add_argument("--command", default="", help="the training command, for the record")
    p.add_argument("-o", "--out", default="weights/default.safetensors")
    args = p.parse_args(argv)
    nets = loading.load_networks(args.snapshot, device="cpu")
    G = nets.G_ema
    if LABEL_PRIOR_KEY not in G.cfg.extra and G.c_dim:
        G.cfg = dataclasses.replace(G.cfg, extra=with_label_prior(G.cfg.extra, data_labels(args.data).numpy()))
    ds = ImageDataset(args.data)
    meta = {"name": "default", "licence": "MIT", "trained_with": "stylegan_anime.training (this repository)",
            "data": f"{len(ds.image_names)} synthetic anime portraits (stylegan_anime.data.synthetic, seed 0, "
                    f"{ds.resolution}x{ds.resolution}), labels used",
            "kimg": f"{args.kimg:.3f}", "wall_time_s": f"{args.wall_time:.0f}"}
    if args.command:
        meta["command"] = args.command
    out = native.save(native.Networks(G_ema=G, D=nets.D, meta=meta), args.out)
    size = Path(out).stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is {size / 2**20:.1f} MB, over the {MAX_BYTES / 2**20:.0f} MB the bundle allows")
    print(f"wrote {out} ({size / 2**20:.1f} MB, G_ema + D, kimg {meta['kimg']})")


if __name__ == "__main__":
    main()
