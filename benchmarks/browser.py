"""Time per image of the exported page in Debian's chromium (onnxruntime-web, WebAssembly, 2 threads)
against the same ONNX model in onnxruntime's native CPU build and the PyTorch generator, all at
2 threads, batch 9 (the page's grid), alternating the three within one run (the machine drifts).

    python -m benchmarks.browser [--network default] [--rounds 5] [--out benchmarks/results/browser.json]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from benchmarks.common import print_table, write_json

BATCH = 9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--network", default="default")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/browser.json")
    args = ap.parse_args()

    import onnxruntime as ort
    from playwright.sync_api import sync_playwright

    import stylegan_anime as sa
    from stylegan_anime.export.onnx_export import to_onnx_bytes
    from stylegan_anime.export.web_page import export_web
    from stylegan_anime.export.web_server import start_server

    torch.set_num_threads(2)
    G = sa.load(args.network)
    data = to_onnx_bytes(G)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(data, options)
    z = sa.seeds_to_z(list(range(BATCH)), G.z_dim)
    feed = {"z": z.numpy(), "psi": np.array(0.7, dtype=np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        export_web(G, f"{tmp}/web", onnx_bytes=data)
        server = start_server(f"{tmp}/web")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.wait_for_function("document.body.dataset.state === 'done'", timeout=300_000)
            page.evaluate("window.saPage.ready")
            times: dict[str, list[float]] = {"chromium (wasm)": [], "onnxruntime (native)": [], "pytorch": []}
            for _ in range(args.rounds):
                page.evaluate("window.saPage.drawGrid()")
                timing = page.evaluate("window.saPage.lastTiming")
                times["chromium (wasm)"].append(timing["ms"] / 1000)
                start = time.perf_counter()
                session.run(None, feed)
                times["onnxruntime (native)"].append(time.perf_counter() - start)
                with torch.inference_mode():
                    start = time.perf_counter()
                    G(z, psi=0.7)
                    times["pytorch"].append(time.perf_counter() - start)
            threads = page.evaluate("window.saPage.threads")
            browser.close()
        server.shutdown()
    best = {k: min(v) / BATCH * 1000 for k, v in times.items()}
    rows = [{"runtime": k, "ms_per_image": round(v, 1), "vs_chromium": round(v / best["chromium (wasm)"], 2)}
            for k, v in best.items()]
    print(f"batch {BATCH}, 2 threads (browser threads: {threads}), best of {args.rounds} alternating rounds")
    print_table(rows, ["runtime", "ms_per_image", "vs_chromium"])
    write_json(rows, args.out, network=args.network, batch=BATCH, rounds=args.rounds)


if __name__ == "__main__":
    main()
