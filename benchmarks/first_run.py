"""First-run and second-run wall time of the README's main job with an empty native-op cache.

For each network (the bundled ``default`` at 64², and config F at 256² with random weights):
1. empty ``$TORCH_EXTENSIONS_DIR``; run ``stylegan-anime generate --seeds 0-8 --grid 3x3`` and time
   it (auto mode: the reference ops while the native ones build in the background);
2. wait for the background build (its time is reported too);
3. run the same command again and time it (now on the native ops).
Then, in one process, images/s of the reference ops against the native ops on that network,
alternating, which is what decides whether waiting for a build would ever pay.

    python -m benchmarks.first_run [--nets default f256] [--repeats 3] [--out benchmarks/results/first_run.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import print_table, write_json

NETS = {"default": None, "f256": dict(resolution=256, channel_base=32768, channel_max=512)}
MAIN_JOB = ["generate", "--seeds", "0-8", "--grid", "3x3", "-o", "grid.png"]


def network_file(name: str, tmp: Path) -> str:
    if NETS[name] is None:
        return name
    path = tmp / f"{name}.safetensors"
    spec = NETS[name]
    subprocess.run([sys.executable, "-m", "stylegan_anime.cli", "new", str(path), "--resolution", str(spec["resolution"]),
                    "--channel-base", str(spec["channel_base"]), "--channel-max", str(spec["channel_max"])],
                   check=True, capture_output=True)
    return str(path)


def timed_main_job(network: str, work: Path, env: dict[str, str]) -> float:
    (work / "grid.png").unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stylegan_anime.cli", *MAIN_JOB, "--network", network, "--device", "cpu"],
                   check=True, capture_output=True, cwd=work, env=env)
    return time.perf_counter() - start


def ref_vs_native(network: str, env: dict[str, str], repeats: int) -> dict:
    """Seconds per 3x3 grid on each path, the two alternating in one process (best of ``repeats``)."""
    code = f"""
import json, time, torch
import stylegan_anime as sa
from stylegan_anime.ops import native_build
G = sa.load({network!r}, device="cpu")
best = {{"ref": 1e9, "native": 1e9}}
for _ in range({repeats}):
    for mode in ("ref", "native"):
        with native_build.use_ops(mode):
            sa.generate_images(G, "0-8", psi=0.7)  # warm-up (filters, buffers)
            t = time.perf_counter(); sa.generate_images(G, "0-8", psi=0.7); dt = time.perf_counter() - t
        best[mode] = min(best[mode], dt)
print(json.dumps(best))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_net(name: str, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        network = network_file(name, tmp)
        env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp / "ext")}
        env.pop("STYLEGAN_ANIME_OPS", None)
        first = timed_main_job(network, tmp, env)
        start = time.perf_counter()
        waited = subprocess.run([sys.executable, "-c", "import sys; from stylegan_anime.ops import native_build; "
                                 "sys.exit(0 if native_build.wait_for_background_build('cpu') else 1)"], env=env)
        background = time.perf_counter() - start + first
        second = timed_main_job(network, tmp, env)
        speed = ref_vs_native(network, env, repeats)
    return {"network": name, "first_run_s": first, "background_build_done_s": background, "second_run_s": second,
            "build_ok": waited.returncode == 0, "grid_ref_s": speed["ref"], "grid_native_s": speed["native"],
            "native_speedup": speed["ref"] / speed["native"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["default", "f256"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/first_run.json")
    args = ap.parse_args()
    rows = [run_net(name, args.repeats) for name in args.nets]
    print_table(rows, ["network", "first_run_s", "background_build_done_s", "second_run_s", "grid_ref_s",
                       "grid_native_s", "native_speedup"])
    write_json(rows, args.out, job=" ".join(MAIN_JOB))


if __name__ == "__main__":
    main()
