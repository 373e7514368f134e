"""`stylegan-anime app`: the character studio in the browser (needs the `app` extra: gradio)."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..io import loading
from .args import add_network_options, int_arg


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="the character studio: roll, keep, morph, merge and animate characters",
                       description="A web page (Gradio) over the studio API; favourites are kept in "
                       "$STYLEGAN_ANIME_HOME (default ~/.local/share/stylegan-anime).")
    add_network_options(p)
    p.add_argument("--directions", help="attribute directions .npz (from `stylegan-anime directions`): "
                   "morph sliders for unconditional networks")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int_arg("--port", 1), default=7860)
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..app import ui
    except ImportError as e:
        raise UserError(f"the app needs gradio ({e}): pip install 'stylegan-anime[app]'") from None
    from ..editing.directions import load_directions
    directions = load_directions(args.directions) if args.directions else None
    G = loading.load(args.network, device=loading.resolve_device(args.device))
    try:
        ui.launch(G, host=args.host, port=args.port, share=args.share, directions=directions)
    except OSError as e:  # Gradio's "cannot find empty port" and the like
        raise UserError(f"cannot serve on {args.host}:{args.port}: {str(e).splitlines()[0]}") from None
    return 0
