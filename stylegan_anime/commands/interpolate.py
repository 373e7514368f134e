"""`stylegan-anime interpolate`: a GIF / MP4 walking through keyframes (seeds or saved latents)."""
from __future__ import annotations

import argparse

from ..io import loading
from ..features import render
from ..features.interpolation import EASINGS, SPACES, interpolation_video
from ..io.outputs import check_outputs
from .args import add_force_option, add_generation_options, add_network_options, float_arg, int_arg
from .generate import conditioning


def add_parser(sub) -> None:
    p = sub.add_parser("interpolate", help="interpolation video through seeds / saved latents",
                       description="A GIF or MP4 that walks through keyframes. Keyframes are seeds and "
                       "saved latents (.npz), e.g. --seeds 0,5,walk.npz. With --grid each cell walks its "
                       "own path: repeat --seeds once per cell, or give it once and cell i walks the "
                       "seeds + 1000 * i.")
    add_network_options(p)
    p.add_argument("--seeds", required=True, action="append",
                   help="keyframes: seeds, ranges and .npz files, e.g. 0,5,9 or 0,a.npz (repeat: one path per cell)")
    p.add_argument("--space", choices=SPACES, default="slerp",
                   help="w: lerp the truncated ws; z: lerp z; slerp: spherical z (default)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int_arg("--frames", 2), default=None, help="total frames (default 120)")
    length.add_argument("--frames-per-transition", type=int_arg("--frames-per-transition", 1), default=None)
    length.add_argument("--duration", type=float_arg("--duration"), default=None, help="seconds")
    p.add_argument("--fps", type=float_arg("--fps"), default=30)
    p.add_argument("--loop", action="store_true", help="close the path: return to the first keyframe")
    p.add_argument("--easing", choices=EASINGS, default="linear", help="ease-in-out slows down at keyframes")
    p.add_argument("--grid", default="1x1", help="COLSxROWS, each cell its own path (default 1x1)")
    p.add_argument("--size", default=None, help="output size: N (longer side) or WxH")
    p.add_argument("--gif-loop", type=int_arg("--gif-loop", 0), default=0, help="GIF repeats, 0 = forever")
    add_generation_options(p)
    p.add_argument("--batch", type=int_arg("--batch", 1), default=8, help="images per forward pass")
    p.add_argument("-o", "--out", required=True, help="output .gif or .mp4")
    add_force_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..latents.keyframes import parse_keyframe_groups
    from ..features.video import check_video_path, parse_size
    check_video_path(args.out, args.fps)
    check_outputs([args.out], force=args.force)
    parse_size(args.size)
    grid = render.parse_grid(args.grid)
    groups = parse_keyframe_groups(args.seeds)
    frames = args.frames
    if (args.frames, args.frames_per_transition, args.duration) == (None, None, None):
        frames = 120
    G = loading.load(args.network, device=loading.resolve_device(args.device),
                      allow_nonfinite=args.allow_nonfinite)
    path = interpolation_video(G, groups, args.out, frames=frames,
                               frames_per_transition=args.frames_per_transition, duration=args.duration,
                               fps=args.fps, space=args.space, loop=args.loop, easing=args.easing, grid=grid,
                               psi=args.psi, cutoff=args.cutoff, c=conditioning(args, G.c_dim, 1, G),
                               noise_mode=args.noise_mode, size=args.size, gif_loop=args.gif_loop,
                               batch_size=args.batch, progress=True)
    print(f"wrote {path}")
    return 0
