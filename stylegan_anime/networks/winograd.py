"""Where 3×3 convolutions run as Winograd convolutions instead of direct ones (CPU).

Winograd's algorithms compute a convolution tile by tile with fewer multiplications (F(6×6, 3×3):
3.4× fewer, F(4×4, 3×3): 4× fewer), at the price of float32 rounding of about 1e-5–2e-5 of a
layer's largest output instead of ~1e-7: far below what an 8-bit image shows or training
notices. Two implementations serve two cases (``python -m benchmarks.ops --conv`` times both
against oneDNN's direct convolution, on the CPUs we measure on: 2 cores, AVX2):

- Inference-only forwards of large layers (``usable`` / ``nnpack_conv3x3``): NNPACK's F(6×6, 3×3),
  bundled with PyTorch's CPU builds, one image per call (its batched path is the slow one):
  1.3–2.7× faster on the 64²–512² layers of a 512² generator; slower under 64×64 pixels or
  2^28 pixel·channel² of work (e.g. 128 channels at 64²).
- Everything else, training above all (``f43_usable``): our F(4×4, 3×3)
  (``stylegan_anime/ops/winograd_op.py``: native tile transforms, BLAS products, gradients of any
  order), 2.1–2.2× faster forwards + backwards on the 256–512-channel layers of a 64² training
  run; slower with fewer than ``MIN_TILES`` tiles or ``MIN_CHANNELS`` channels.

- In an inference plan (filter transforms kept): the fused F(4×4, 3×3) on the large stride-1
  layers of up to 256 channels (``fused_preferred``, ``winograd_op.conv3x3_fused``: transforms and
  products band by band in the cache, modulation folded in), our F(4×4, 3×3) on the widest ones
  (``f43_preferred``), and the stride-2 transposed conv of upsampling layers as Winograd F(4, 2) on
  its even outputs (``up_preferred``, ``winograd_op.conv_transpose3x3_s2``).

``STYLEGAN_ANIME_WINOGRAD=auto`` (default: Winograd where it is faster), ``off`` (direct
everywhere: bit-for-bit the reference layers' convolutions) or ``always`` (any size; for
tests); in Python ``with use_winograd("off"):``.
"""
from __future__ import annotations


import torch

from ..ops import native_build, winograd_op
from ..ops.switches import Switch

MODES = ("auto", "off", "always")
ENV_MODE = "STYLEGAN_ANIME_WINOGRAD"
# The thresholds below: where each algorithm starts to beat the one it replaces, on the sizes the
# generators have. Each is set by the benchmark its comment names; benchmarks/THRESHOLDS.md keeps the
# figures those runs showed.
# NNPACK (``benchmarks.ops --conv``): oneDNN's direct conv is as fast under these.
MIN_PIXELS = 64 * 64
MIN_WORK = 2 ** 28  # pixels × C_in × C_out
# Our F(4x4, 3x3) (``benchmarks.ops --conv`` at a 64² training run's sizes): too little work to
# amortise the transforms under these.
MIN_TILES = 64  # N · ceil(H/4) · ceil(W/4)
MIN_CHANNELS = 128  # C_in and C_out
# With its filter transform kept, F(4x4, 3x3) beats NNPACK on layers this wide, as long as a call's
# tiles stay in the cache (``benchmarks.ops --conv``).
KEPT_FILTER_MIN_CHANNELS = 512
KEPT_FILTER_MAX_TILES = 256
# Up to this many tiles a call, F(4x4, 3x3) transforms its filters block by block on the way instead of
# keeping them (``winograd_op.conv3x3_from_weights_into``): 36 MiB less a 512-channel layer, for about 3 ms
# more on a 64-tile call; a 256² generator at one image 0.995x as fast, 0.90x at 256 tiles
# (``benchmarks.plan_memory --unkept-tiles``, benchmarks/THRESHOLDS.md).
UNKEPT_MAX_TILES = 64
# Down to this many tiles a call, F(4x4, 3x3) with its filters made on the way beats oneDNN's direct conv on
# 512-channel layers, though too few tiles for the kept transforms (``MIN_TILES``): 10.6 against 17.3 ms at
# 16 tiles, 20-22 against 25-31 at 32, but 14-15 against 9-11 at 8 (layers of a 256² generator timed in
# two plans taking turns, 25 rounds; benchmarks/THRESHOLDS.md).
UNKEPT_MIN_TILES = 16
# The stride-2 transposed conv as Winograd, filters kept, against oneDNN's transposed conv: it needs
# enough windows and input channels to pay for its transforms (``benchmarks.ops --conv``, and the
# whole generator side by side in ``benchmarks.compare_ports``).
UP_MIN_TILES = 64  # N · ceil(H/4) · ceil(W/4) windows
UP_MIN_CHANNELS = 256
# The fused stride-2 transposed conv: the large, narrow inputs, where the unfused transforms' passes
# over memory cost most (same benchmarks).
FUSED_UP_MIN_PIXELS = 64 * 64
FUSED_UP_MAX_CHANNELS = 128
# The fused F(4x4, 3x3) against NNPACK: large layers of up to 256 channels; wider ones run faster as
# the unfused F(4x4, 3x3)'s larger GEMMs (``benchmarks.ops --conv``).
FUSED_MIN_PIXELS = 128 * 128
FUSED_MAX_CHANNELS = 256


WINOGRAD_MODE = Switch(ENV_MODE, MODES, "Winograd mode")


class _State:
    nnpack: bool | None = None


def winograd_mode() -> str:
    """The current mode: the Python override, else $STYLEGAN_ANIME_WINOGRAD, else "auto"."""
    return WINOGRAD_MODE.get()


def use_winograd(mode: str):
    """Use ``mode`` ("auto", "off" or "always") inside the block."""
    return WINOGRAD_MODE.use(mode)


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
    ``nnpack_conv3x3`` here."""
    mode = winograd_mode()
    if mode == "off" or kernel_size != 3 or padding != 1:
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or not nnpack_available():
        return False
    pixels = x.shape[2] * x.shape[3]
    return mode == "always" or (pixels >= MIN_PIXELS and pixels * x.shape[1] * out_channels >= MIN_WORK)


def nnpack_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
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


def f43_usable(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], padding: int, groups: int = 1,
               min_tiles: int | None = None) -> bool:
    """Whether ``F.conv2d(x, w, padding=padding, groups=groups)`` with w: ``weight_shape`` should
    run as ``winograd_op.conv3x3`` here (3×3, padding 1, stride 1, one group, native transforms, at least
    ``min_tiles`` tiles, default ``MIN_TILES``)."""
    mode = winograd_mode()
    k, c, kh, kw = weight_shape
    if mode == "off" or (kh, kw) != (3, 3) or padding != 1 or groups != 1:
        return False
    if not winograd_op.native_available(x):
        return False
    th, tw = winograd_op.tiles(x.shape[2], x.shape[3])
    min_tiles = MIN_TILES if min_tiles is None else min_tiles
    return mode == "always" or (x.shape[0] * th * tw >= min_tiles and min(c, k) >= MIN_CHANNELS)


def f43_preferred(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], padding: int,
                  filters_kept: bool) -> bool:
    """Whether a modulated 3×3 conv of x: [N, C, H, W] should run as F(4×4, 3×3) on modulated
    activations (``f43_conv3x3``) rather than as NNPACK or oneDNN convs of per-sample weights:
    only where its filter transform is kept between calls (``filters_kept``) and the layer is wide; from
    ``UNKEPT_MIN_TILES`` tiles where it makes its filters on the way (``filters_unkept``)."""
    if not filters_kept:
        return False
    min_tiles = UNKEPT_MIN_TILES if filters_unkept(x, weight_shape) else None
    if not f43_usable(x, weight_shape, padding, min_tiles=min_tiles):
        return False
    th, tw = winograd_op.tiles(x.shape[2], x.shape[3])
    return winograd_mode() == "always" or (min(weight_shape[:2]) >= KEPT_FILTER_MIN_CHANNELS
                                           and th * tw <= KEPT_FILTER_MAX_TILES)


def filters_unkept(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...]) -> bool:
    """Whether an F(4x4, 3x3) conv of x: [N, C, H, W] that ``f43_preferred`` takes should make its filters
    on the way (one float32 call of at most ``UNKEPT_MAX_TILES`` tiles, in the native op's multiples)."""
    th, tw = winograd_op.tiles(x.shape[2], x.shape[3])
    tiles = x.shape[0] * th * tw
    return (x.dtype == torch.float32 and winograd_op.native_available(x) and tiles <= UNKEPT_MAX_TILES
            and tiles % 8 == 0 and weight_shape[0] % 16 == 0 and weight_shape[1] % 8 == 0)


def f43_conv3x3(x: torch.Tensor, u: torch.Tensor, scale: torch.Tensor | None = None,
                out: torch.Tensor | None = None, scratch: winograd_op.Scratch | None = None) -> torch.Tensor:
    """``winograd_op.conv3x3_transformed(x, u, scale=scale)`` (native) over ``_in_slices`` of the batch.
    x: [N, C, H, W], u: [36, K, C], scale: [N, C] or None → [N, K, H, W] (in ``out`` if given; the tiles
    in ``scratch``'s tensors if given)."""
    th, tw = winograd_op.tiles(x.shape[2], x.shape[3])
    if _slice_step(th * tw) >= x.shape[0] and out is None and scratch is None:  # one slice
        return winograd_op.conv3x3_transformed(x, u, native=True, scale=scale)
    out = x.new_empty(x.shape[0], u.shape[1], x.shape[2], x.shape[3]) if out is None else out
    return _in_slices(x, scale, th * tw, out, lambda xs, ss, ys: winograd_op.conv3x3_transformed(
        xs, u, native=True, scale=ss, scratch=scratch, out=ys, band_rows=_band_rows(th, tw)))


def up_winograd_conv(x: torch.Tensor, filters: winograd_op.UpFilters, scale: torch.Tensor | None = None,
                     out: torch.Tensor | None = None,
                     scratch: winograd_op.Scratch | None = None) -> torch.Tensor:
    """``winograd_op.conv_transpose3x3_s2_transformed(x, filters, native=True, scale=scale)``, over
    ``_in_slices`` of the batch when ``scratch`` gives its tile tensors (an inference plan's buffers then
    hold one slice's tiles, not the batch's). x: [N, C, H, W], scale: [N, C] or None →
    [N, K, 2H + 1, 2W + 1] (in ``out`` if given)."""
    if scratch is None:
        y = winograd_op.conv_transpose3x3_s2_transformed(x, filters, native=True, scale=scale)
        return y if out is None else out.copy_(y)
    th, tw = winograd_op.up_tiles(x.shape[2], x.shape[3])
    if out is None:
        out = x.new_empty(x.shape[0], filters.u.shape[1], 2 * x.shape[2] + 1, 2 * x.shape[3] + 1)
    return _in_slices(x, scale, th * tw, out, lambda xs, ss, ys: winograd_op.conv_transpose3x3_s2_transformed(
        xs, filters, native=True, scale=ss, scratch=scratch, out=ys, band_rows=_band_rows(th, tw)))


def _in_slices(x: torch.Tensor, scale: torch.Tensor | None, tiles_per_image: int, out: torch.Tensor,
               conv) -> torch.Tensor:
    """``conv(x[i:j], scale[i:j], out[i:j])`` over slices of the batch of at most ``KEPT_FILTER_MAX_TILES``
    tiles each (one image if larger: its convs then take bands of rows, ``_band_rows``), so that a slice's
    tile tensors stay in the cache; a slice's result is copied into ``out`` unless the conv wrote it there.
    Returns out."""
    step = _slice_step(tiles_per_image)
    for i in range(0, x.shape[0], step):
        rows = slice(i, i + step)
        target = out[rows]
        part = conv(x[rows], None if scale is None else scale[rows], target)
        if part.data_ptr() != target.data_ptr():
            target.copy_(part)
    return out


def _slice_step(tiles_per_image: int) -> int:
    """Images per slice of ``_in_slices``."""
    return max(1, KEPT_FILTER_MAX_TILES // tiles_per_image)


def _band_rows(rows: int, per_row: int) -> int | None:
    """Rows of windows a call transforms when one image has more than ``KEPT_FILTER_MAX_TILES`` (its tiles
    then take a band's memory, not the image's), else None (all)."""
    return None if rows * per_row <= KEPT_FILTER_MAX_TILES else max(1, KEPT_FILTER_MAX_TILES // per_row)


def scratch_requests(algorithm: str, n: int, c: int, k: int, h: int, w: int,
                     itemsize: int = 4) -> list[tuple[str, int]]:
    """What a conv of x: [n, c, h, w] (an upsampling conv's input) to k channels by ``algorithm`` asks its
    scratch for (``winograd_op.Scratch``), as (role, bytes) in order, at the largest: the unfused convs' tiles
    of a slice or band (``_in_slices``, ``_band_rows``), the fused convs' band buffers. An inference plan
    sizes its arena by them before the first forward."""
    if algorithm in ("f43", "f43_unkept", "up_winograd", "up_winograd_unkept"):
        f43 = not algorithm.startswith("up_")  # f43_unkept: one call (``filters_unkept``), as f43 takes it
        values, tiles = (36 if f43 else 81), _call_tiles("f43" if f43 else algorithm, n, h, w)[0]
        # f43_unkept's filter blocks first (float32 whatever the dtype), as it asks for them
        work = [("filters", native_build.load("winograd", "cpu").filter_work_floats(c, torch.get_num_threads()) * 4)]
        return (work if algorithm == "f43_unkept" else []) + [("tiles_in", values * c * tiles * itemsize),
                                                              ("tiles_out", values * k * tiles * itemsize)]
    if algorithm in ("fused", "up_fused"):
        return [("tiles_in", winograd_op.fused_work_floats(algorithm == "up_fused", n, c, k, h, w) * 4)]
    return []


def one_call(algorithm: str, n: int, h: int, w: int) -> bool:
    """Whether an unfused Winograd conv ("f43", "up_winograd", "up_winograd_unkept") of x: [n, c, h, w] takes
    all its tiles in one call (no slices of the batch, no bands of rows): its input tiles are then dead before
    its output is written."""
    return algorithm in ("f43", "up_winograd", "up_winograd_unkept") and _call_tiles(algorithm, n, h, w)[1]


def _call_tiles(algorithm: str, n: int, h: int, w: int) -> tuple[int, bool]:
    """(tiles of the largest call, whether one call takes them all) of an unfused conv of x: [n, c, h, w],
    sliced and banded as ``_in_slices`` and ``_band_rows`` do."""
    th, tw = winograd_op.tiles(h, w) if algorithm == "f43" else winograd_op.up_tiles(h, w)
    band = _band_rows(th, tw)
    if band is not None:
        return min(band, th) * tw, n == 1 and band >= th
    step = _slice_step(th * tw)
    return min(n, step) * th * tw, n <= step


def _kept_filter_mode(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], filters_kept: bool,
                      float32_only: bool = False) -> str | None:
    """The Winograd mode if a 3×3 conv of x may run on a kept filter transform with the native op
    (``float32_only``: the fused ops take nothing else), else None."""
    mode = winograd_mode()
    if mode == "off" or not filters_kept or tuple(weight_shape[2:]) != (3, 3):
        return None
    if (float32_only and x.dtype != torch.float32) or not winograd_op.native_available(x):
        return None
    return mode


def up_algorithm(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], filters_kept: bool) -> str | None:
    """How the stride-2 transposed conv of x: [N, C, H, W] with a [K, C, 3, 3] kernel (conv2d's layout)
    should run, given that its filter transform is kept between calls (``filters_kept``): "fused"
    (``winograd_op.conv_transpose3x3_s2_fused``, modulation folded in) on large, narrow layers,
    "winograd" (``conv_transpose3x3_s2_transformed`` on modulated activations) on wide ones, or None
    (oneDNN's transposed conv)."""
    mode = _kept_filter_mode(x, weight_shape, filters_kept)
    if mode is None:
        return None
    pixels, channels = x.shape[2] * x.shape[3], weight_shape[1]
    fused_ok = x.dtype == torch.float32
    if mode == "always":
        return "fused" if fused_ok else "winograd"
    if fused_ok and pixels >= FUSED_UP_MIN_PIXELS and channels <= FUSED_UP_MAX_CHANNELS:
        return "fused"
    th, tw = winograd_op.up_tiles(x.shape[2], x.shape[3])
    return "winograd" if x.shape[0] * th * tw >= UP_MIN_TILES and channels >= UP_MIN_CHANNELS else None


def fused_preferred(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], padding: int,
                    filters_kept: bool) -> bool:
    """Whether a modulated 3×3 'same' conv of x: [N, C, H, W] should run as the fused F(4×4, 3×3)
    (``winograd_op.conv3x3_fused``, modulation folded in): only where its filter transform is kept
    between calls (``filters_kept``), on float32, and on large, narrow layers."""
    mode = _kept_filter_mode(x, weight_shape, filters_kept, float32_only=True)
    if mode is None or padding != 1:
        return False
    return mode == "always" or (x.shape[2] * x.shape[3] >= FUSED_MIN_PIXELS
                                and max(weight_shape[:2]) <= FUSED_MAX_CHANNELS)
