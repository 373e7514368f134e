"""Serve an exported page on 127.0.0.1, cross-origin isolated so onnxruntime-web can use 2 threads.

Any static file server shows the page; browsers give WebAssembly threads (SharedArrayBuffer) only to
pages sent with the COOP/COEP headers below, so a plain server runs the model on one thread.
``python -m stylegan_anime.export.web_server DIR [PORT]``.
"""
from __future__ import annotations

import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class IsolatedHandler(SimpleHTTPRequestHandler):
    """Static files with the two headers that make a page cross-origin isolated; quiet log."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".onnx": "application/octet-stream"}

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        pass


def start_server(directory: str | Path, port: int = 0) -> ThreadingHTTPServer:
    """Serve ``directory`` on 127.0.0.1:port (0: any free port) from a daemon thread.
    The URL is ``f"http://127.0.0.1:{server.server_port}/"``; ``server.shutdown()`` stops it."""
    handler = functools.partial(IsolatedHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2 or not Path(argv[0]).is_dir():
        print("usage: python -m stylegan_anime.export.web_server DIR [PORT]", file=sys.stderr)
        return 2
    server = start_server(argv[0], int(argv[1]) if len(argv) > 1 else 8000)
    print(f"serving {argv[0]} at http://127.0.0.1:{server.server_port}/ (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
