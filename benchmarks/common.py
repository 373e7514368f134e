"""Shared benchmark plumbing: run each case in a fresh process (so peak RSS is the
case's own), alternate the contenders across repeats (the machine's speed drifts),
print a table and write JSON."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_calls(fn: Callable[[], object], warmup: int = 1, min_seconds: float = 2.0, min_calls: int = 2) -> float:
    """Median seconds per call after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def run_case_in_subprocess(module: str, case: dict, env: dict[str, str] | None = None) -> dict:
    """Run ``python -m <module> --case JSON`` and parse the JSON line it prints last."""
    full_env = {**os.environ, **(env or {})}
    out = subprocess.run([sys.executable, "-m", module, "--case", json.dumps(case)], capture_output=True, text=True,
                         env=full_env, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of_alternating(module: str, cases: list[dict], repeats: int, score: Callable[[dict], float],
                        env: dict[str, str] | None = None) -> list[dict]:
    """Run every case ``repeats`` times, cases taking turns (the machine's speed drifts), each in a
    fresh process; keep each case's best row (highest ``score``), in the order of ``cases``."""
    best: dict[int, dict] = {}
    for _ in range(repeats):
        for i, case in enumerate(cases):
            row = run_case_in_subprocess(module, case, env)
            if i not in best or score(row) > score(best[i]):
                best[i] = row
    return [best[i] for i in sorted(best)]


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def write_json(rows: list[dict], path: str | Path, **extra) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, **extra}, indent=2) + "\n")
    print(f"\nwrote {path}")
