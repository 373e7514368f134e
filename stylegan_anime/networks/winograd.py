"""3×3 stride-1 convolutions through NNPACK's Winograd kernels, where those are faster.

Winograd F(6×6, 3×3) does about 3.4× fewer multiplications than a direct 3×3 convolution.
On the 2-core CPUs we measure on, NNPACK (bundled with PyTorch's CPU builds) runs the
large layers of a 512² generator (64²–512² pixels, 512–64 channels) 1.3–2.7× faster than
oneDNN's direct convolution, one image per call (NNPACK's batched path is the slow one); on
smaller layers (under 64×64 pixels, or under 2^28 pixel·channel² of work, e.g. 128 channels
at 64²) oneDNN wins. ``python -m benchmarks.ops --conv`` measures both.

The price is float32 rounding: about 2e-5 of a layer's largest output instead of ~1e-7, far
below what an 8-bit image shows, but above the 1e-5 at which the inference path is tested
against the reference layers. So the choice is explicit: ``STYLEGAN_ANIME_WINOGRAD=auto``
(default: Winograd for inference-only forwards of the large layers),
``off`` (direct everywhere: bit-for-bit the reference layers' convolutions), or ``always``
(any size; for tests); in Python ``with use_winograd("off"):``.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

MODES = ("auto", "off", "always")
ENV_MODE = "STYLEGAN_ANIME_WINOGRAD"
# Below these sizes oneDNN's direct convolution was as fast or faster (measured, 2 cores, AVX2).
MIN_PIXELS = 64 * 64
MIN_WORK = 2 ** 28  # pixels × C_in × C_out


class _State:
    mode_override: str | None = None
    nnpack: bool | None = None


def winograd_mode() -> str:
    """The current mode: the Python override, else $STYLEGAN_ANIME_WINOGRAD, else "auto"."""
    mode = _State.mode_override or os.environ.get(ENV_MODE, "").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


@contextlib.contextmanager
def use_winograd(mode: str) -> Iterator[None]:
    """Use ``mode`` ("auto", "off" or "always") inside the block."""
    if mode not in MODES:
        raise ValueError(f"Winograd mode must be one of {', '.join(MODES)}, got {mode!r}")
    previous, _State.mode_override = _State.mode_override, mode
    try:
        yield
    finally:
        _State.mode_override = previous


def nnpack_available() -> bool:
    """Whether this torch has NNPACK and it runs on this CPU (asked once per process).

    ``torch._nnpack_available()`` also initialises NNPACK: its convolution fails without it.
    """
    if _State.nnpack is None:
        try:
            _State.nnpack = bool(torch._nnpack_available())
        except (AttributeError, RuntimeError):
            _State.nnpack = False
    return _State.nnpack


def usable(x: torch.Tensor, kernel_size: int, padding: int, out_channels: int) -> bool:
    """Whether a 3×3 'same' convolution of x: [N, C, H, W] to ``out_channels`` should take
    ``conv3x3`` here."""
    mode = winograd_mode()
    if mode == "off" or kernel_size != 3 or padding != 1:
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or not nnpack_available():
        return False
    pixels = x.shape[2] * x.shape[3]
    return mode == "always" or (pixels >= MIN_PIXELS and pixels * x.shape[1] * out_channels >= MIN_WORK)


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Correlate x: [N, C_in, H, W] with 3×3 weights, padding 1, stride 1, as ``F.conv2d``.

    weight: [C_out, C_in, 3, 3] shared by the batch, or [N, C_out, C_in, 3, 3] one per sample
    (a modulated convolution); bias: [C_out] or None. Returns [N, C_out, H, W]. No autograd.
    """
    n = x.shape[0]
    per_sample = weight.ndim == 5
    if per_sample and weight.shape[0] != n:
        raise ValueError(f"per-sample weights for {weight.shape[0]} samples, but x has {n}")
    outs = []
    for i in range(n):
        w = (weight[i] if per_sample else weight).contiguous()
        outs.append(torch._nnpack_spatial_convolution(x[i: i + 1].contiguous(), w, bias, [1, 1], [1, 1]))
    return outs[0] if n == 1 else torch.cat(outs)
