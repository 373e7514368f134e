"""`stylegan-anime export`: the generator as an ONNX file (--onnx) and/or a static web page (--web)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..io import loading


def batch_arg(text: str) -> int | None:
    """--batch: "dynamic" (None: a free batch axis) or a fixed batch size >= 1."""
    if text == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--batch must be dynamic or a whole number >= 1, got {text!r}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="ONNX model and a browser page", description="Export the generator "
                       "(mapping + synthesis, constant noise) as ONNX: inputs z [N, z_dim], c [N, c_dim] "
                       "(conditional networks) and psi; output images [N, 3, R, R] in [-1, 1]. --web writes a "
                       "static page that draws the same characters from seeds in the browser.")
    p.add_argument("--network", default="default", help="registry name, weights file or URL (default: default)")
    p.add_argument("--onnx", metavar="OUT.onnx", default=None, help="write the ONNX model here")
    p.add_argument("--batch", type=batch_arg, default=None, metavar="dynamic|N",
                   help="batch axis of the --onnx model: dynamic (default) or a fixed size")
    p.add_argument("--web", metavar="DIR", default=None, help="write the static page into this folder")
    p.add_argument("--force", action="store_true", help="replace a --web DIR that is not empty")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.onnx is None and args.web is None:
        raise UserError("say what to export: --onnx OUT.onnx and/or --web DIR")
    from ..export import onnx_export, web_page  # onnx is an optional dependency: imported when asked for
    onnx_export.require_onnx()
    if args.web is not None:
        web_page.check_target(Path(args.web), args.force)  # before the slow part
    G = loading.load(args.network)
    cfg = onnx_export.OnnxExportConfig(dynamic_batch=args.batch is None, batch=args.batch or 1)
    data = onnx_export.to_onnx_bytes(G, cfg)
    if args.onnx is not None:
        print(f"wrote {onnx_export.write_bytes(args.onnx, data)}")
    if args.web is not None:
        if not cfg.dynamic_batch:
            data = onnx_export.to_onnx_bytes(G)  # the page runs batches of 9 and 6
        result = web_page.export_web(G, args.web, name=args.network, force=args.force, onnx_bytes=data)
        how = (f"vendored from {result.ort_source}" if result.vendored else
               f"not installed locally (npm install onnxruntime-web): the page loads it from {result.ort_source}")
        print(f"wrote {result.directory}/index.html; onnxruntime-web {how}")
    return 0
