"""Fréchet distance: our eigh-based trace of (S1 S2)^½ against scipy.linalg.sqrtm (what the public FID
code uses), at Inception's 2048 features and smaller; seconds per distance and the values' agreement.

    python -m benchmarks.fid
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.linalg

from benchmarks.common import print_table, write_json
from stylegan_anime.metrics.fid import FeatureStats, frechet_distance


def scipy_distance(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_stats(dim: int, n: int, seed: int) -> FeatureStats:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    stats = FeatureStats(dim)
    for start in range(0, n, 1000):  # ReLU-like, correlated features, as Inception's pool features are
        stats.update(np.maximum(rng.standard_normal((min(1000, n - start), dim)) @ mix, 0))
    return stats


def main(repeats: int = 2) -> None:
    rows = []
    for dim in (256, 1024, 2048):
        a, b = random_stats(dim, 2 * dim + 1000, 0), random_stats(dim, 2 * dim + 1000, 1)
        args = (a.mean, a.cov, b.mean, b.cov)
        times: dict[str, list[float]] = {"ours": [], "scipy": []}
        values = {}
        for _ in range(repeats):  # alternate: the machine's speed drifts
            for name, fn in (("ours", frechet_distance), ("scipy", scipy_distance)):
                t = time.perf_counter()
                values[name] = fn(*args)
                times[name].append(time.perf_counter() - t)
        ours, ref = min(times["ours"]), min(times["scipy"])
        rows.append({"features": dim, "ours_s": ours, "scipy_s": ref, "speedup": ref / ours,
                     "fid_ours": values["ours"], "fid_scipy": values["scipy"],
                     "rel_diff": abs(values["ours"] - values["scipy"]) / values["scipy"]})
    print_table(rows, ["features", "ours_s", "scipy_s", "speedup", "fid_ours", "fid_scipy", "rel_diff"])
    write_json(rows, Path(__file__).parent / "results" / "fid.json")


if __name__ == "__main__":
    main()
