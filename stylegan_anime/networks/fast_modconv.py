"""The inference path of the synthesis layers: the same function as the reference layers
(``modulated_conv2d`` + noise + ``bias_act``), computed in fewer passes over memory.

- Modulation goes wherever it is cheaper: into per-sample weights (a grouped conv, one
  group per sample) when the weights are smaller than the activations, as in the
  high-resolution layers; else into the activations, so that the whole batch shares one
  conv (the low-resolution, 512-channel layers). Upsampling layers of a batch always
  modulate the activations: oneDNN's transposed conv runs a batch up to 1.6× faster than
  the same work as groups. Either way a sample's result equals its result alone within
  float32 rounding.
- Demodulation coefficients come from a matmul of squared styles and squared weights
  instead of materialising [N, out, in, k, k] modulated weights.
- The activation gain is folded in before the leaky ReLU (lrelu(g·y) = g·lrelu(y) for
  g > 0); what follows the conv (the FIR filter after an upsampling conv, demodulation
  where it is not in the weights, bias, noise, lrelu, clamp) is one pass of
  ``layer_epilogue`` over the conv's output, or, after the fused F(4×4, 3×3), part of the conv
  (``layer_epilogue.Finish``), applied to each output tile before it is stored.
- In an inference plan (``stylegan_anime/inference``, the generation API) what is derived from the
  weights alone (squared tap sums, the transposed conv's weight layout, F(4×4, 3×3) filter
  transforms) is made once, not every forward; that also makes F(4×4, 3×3) on modulated
  activations worth taking over NNPACK: fused, with the modulation in its input transform, on the
  large layers of up to 256 channels (``winograd.fused_preferred``), and as separate transforms
  and BLAS products on the widest (``winograd.f43_preferred``); the same two ways for the
  upsampling convs' stride-2 Winograd transposed conv (``winograd.up_algorithm``). A module's own
  forward derives them every call, so it takes none of these.

- Large 3×3 layers may run as Winograd convolutions (``winograd.py`` says where: NNPACK for
  per-sample weights, F(4×4, 3×3) for shared ones; faster, with float32 rounding of about
  2e-5 of the largest output; ``STYLEGAN_ANIME_WINOGRAD=off`` turns them off).
- toRGB's per-sample 1×1 conv, bias and clamp are one pass of ``to_rgb``, or, in a plan, after the
  fused F(4×4, 3×3), part of the conv, which then need not store its output.

Which algorithm a layer takes (``same_conv_algorithm``, ``up_conv_algorithm``) is kept apart from
running it (``run_layer``): module forwards choose per call, a plan once per layer.

Only for forwards that need no gradients; training uses the reference layers.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..ops import kernels, onednn_deconv, winograd_op
from ..ops.layer_epilogue import Finish, Fir, layer_epilogue, separable_taps
from ..ops.to_rgb import to_rgb
from . import winograd
from .resample_conv import conv2d_resample

LRELU_ALPHA = 0.2


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor,
                       weight_sq: torch.Tensor | None = None) -> torch.Tensor:
    """weight: [out, in, k, k], styles: [N, in] → [N, out]: 1 / ‖modulated weight of each output‖.

    ``weight_sq``: ``weight_square_sums(weight)`` if the caller keeps it.
    """
    if weight_sq is None:
        weight_sq = weight_square_sums(weight)
    return (styles.square() @ weight_sq.t() + 1e-8).rsqrt()


def weight_square_sums(weight: torch.Tensor) -> torch.Tensor:
    """[out, in, k, k] → [out, in]: the sum of squared taps."""
    return weight.square().sum(dim=[2, 3])


def modulate_in_weights(weight_elems: int, in_pixels: int, out_pixels: int, in_c: int, out_c: int) -> bool:
    """True when scaling the weights costs fewer elements than scaling the activations."""
    return weight_elems < in_c * in_pixels + out_c * out_pixels


def _per_sample_weights(weight: torch.Tensor, in_scale: torch.Tensor, out_scale: torch.Tensor | None) -> torch.Tensor:
    """[out, in, k, k] scaled by in_scale: [N, in] and out_scale: [N, out] → [N*out, in, k, k]."""
    scale = in_scale[:, None, :] if out_scale is None else out_scale[:, :, None] * in_scale[:, None, :]
    return (weight.unsqueeze(0) * scale[..., None, None]).reshape(-1, *weight.shape[1:])


def transposed_weight(w: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """conv2d's weight [out, in/groups, k, k] in conv_transpose2d's layout [in, out/groups, k, k]
    (the two channel axes swapped within each group), contiguous."""
    out_c, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
    return w.reshape(groups * in_per_group, out_c // groups, kh, kw).contiguous()


def upsample_fir(f: torch.Tensor, up: int, padding: int, kernel: Sequence[int]) -> Fir | None:
    """The FIR filter that follows a stride-``up`` transposed conv with a ``kernel`` = (kh, kw) kernel in
    ``conv2d_resample(..., up=up, padding=padding)``, as separable correlation taps with the same
    padding on every side; None when the kernel is not square, f is not separable or the padding is not
    that simple. f: [fh, fw] (2-D) or [fw] (1-D, taken as separable along both axes)."""
    k = kernel[0]
    taps = separable_taps(f) if f.ndim == 2 else (f, f)
    if taps is None or kernel[1] != k:
        return None
    fv, fh = taps
    pads = {padding + (len(t) + up - 1) // 2 - (k - 1) for t in (fv, fh)}
    pads |= {padding + (len(t) - up) // 2 - (k - up) for t in (fv, fh)}
    if len(pads) != 1 or min(pads) < 0:
        return None
    # conv2d_resample convolves (flipped taps, as correlation); upsampling by `up` scales each axis by up.
    return Fir((fv * up).flip(0), (fh * up).flip(0), pads.pop())


def upsample_conv2d(x: torch.Tensor, w_t: torch.Tensor, f: torch.Tensor, up: int, padding: int,
                    groups: int = 1, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv2d_resample(x, w, f, up=up, padding=padding, groups=groups, flip_weight=False)`` (+ bias):
    the transposed conv, then the FIR filter and the bias in ``layer_epilogue``'s single pass.

    x: [N, C_in, H, W]; w_t: ``transposed_weight(w, groups)``, [C_in, C_out/groups, k, k];
    bias: [C_out / groups] or None, the same for every group. Returns [N, C_out, H*up, W*up].
    """
    fir = upsample_fir(f, up, padding, w_t.shape[2:])
    if fir is None:
        y = _resample_conv(x, w_t, f, up, padding, groups)
        if bias is not None:
            y = (y.reshape(-1, bias.shape[0], *y.shape[2:]) + bias.reshape(1, -1, 1, 1)).reshape(y.shape)
        return y
    y = F.conv_transpose2d(x, w_t, stride=up, groups=groups)
    n = y.shape[0]
    y = layer_epilogue(y.reshape(n * groups, -1, *y.shape[2:]), fir, bias=bias, alpha=1.0)
    return y.reshape(n, -1, *y.shape[2:])


def _resample_conv(x: torch.Tensor, w_t: torch.Tensor, f: torch.Tensor, up: int, padding: int,
                   groups: int = 1) -> torch.Tensor:
    """The reference resampling conv, for filters ``upsample_fir`` cannot split (w_t as in ``upsample_conv2d``)."""
    w = transposed_weight(w_t, groups)  # swapping the channel axes twice gives w back
    return conv2d_resample(x, w, f, up=up, padding=padding, groups=groups, flip_weight=False)


def upsample_image(img: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """``kernels.upsample2d(img, f, up)`` as one depthwise transposed conv: zero insertion,
    padding and FIR filter in a single op. img: [N, C, H, W] → [N, C, H*up, W*up]."""
    if f.ndim != 2 or f.shape[0] != f.shape[1]:
        return kernels.upsample2d(img, f, up)
    fw = f.shape[0]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    crop = fw - 1 - p0
    if crop < 0 or p0 - p1 != up - 1:
        return kernels.upsample2d(img, f, up)
    c = img.shape[1]
    taps = (f * (up * up)).to(img.dtype)
    return F.conv_transpose2d(img, taps[None, None].expand(c, 1, fw, fw), stride=up, padding=crop, groups=c)


def synthesis_layer_forward(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                            noise: torch.Tensor | None, noise_strength: torch.Tensor, up: int, padding: int,
                            resample_filter: torch.Tensor | None, gain: float, clamp: float | None) -> torch.Tensor:
    """Modulated, demodulated conv + noise + bias + lrelu·gain + clamp.

    x: [N, in, H, W], weight: [out, in, k, k], styles: [N, in], bias: [out],
    noise: broadcastable to [N, 1, H*up, W*up] or None; gain > 0 (lrelu's gain times the
    layer's); clamp: None or >= 0. Returns [N, out, H*up, W*up].

    The algorithm is chosen here, per call (an ``InferencePlan`` chooses once and calls ``run_layer``).
    """
    finish = make_finish(x, weight, styles, bias, noise, noise_strength, gain, clamp, weight_square_sums(weight))
    if up == 1:
        algorithm = same_conv_algorithm(x, weight.shape, padding, filters_kept=False)
        prepared = prepare_f43(weight, x.dtype) if algorithm in ("fused", "f43") else None
        return run_layer(algorithm, x, weight, styles, finish, padding, prepared)
    fir = upsample_fir(resample_filter, up, padding, weight.shape[2:])
    algorithm = up_conv_algorithm(x, weight.shape, fir is not None, up, filters_kept=False)
    return run_layer(algorithm, x, weight, styles, finish, padding, prepare_up(algorithm, weight, x.dtype),
                     up, resample_filter, fir)


# The algorithms of a stride-1 layer's conv: the fused F(4×4, 3×3) (epilogue inside), F(4×4, 3×3) on
# modulated activations (its filters kept, or made block by block per call: "f43_unkept"), NNPACK or a
# grouped conv of per-sample weights, oneDNN's direct conv of modulated activations.
SAME_ALGORITHMS = ("fused", "f43", "f43_unkept", "nnpack", "grouped", "direct")
# ... of an upsampling layer's: stride-2 Winograd fused or on modulated activations (its filters kept, or
# their planes made per call in an inference plan's free arena: "up_winograd_unkept"), oneDNN's transposed
# conv of per-sample weights (one image) or of modulated activations.
UP_ALGORITHMS = ("up_fused", "up_winograd", "up_winograd_unkept", "up_weights", "up_direct")


def same_conv_algorithm(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], padding: int,
                        filters_kept: bool) -> str:
    """Which of ``SAME_ALGORITHMS`` a stride-1 modulated conv of x: [N, in, H, W] takes (only x's shape,
    dtype and device are read), given whether its derived filters are kept between calls."""
    n, in_c, h, w_ = x.shape
    if winograd.fused_preferred(x, weight_shape, padding, filters_kept):
        return "fused"
    if winograd.f43_preferred(x, weight_shape, padding, filters_kept):
        return "f43_unkept" if winograd.filters_unkept(x, weight_shape) else "f43"
    if winograd.usable(x, weight_shape[2], padding, weight_shape[0]):
        return "nnpack"
    if modulate_in_weights(math.prod(weight_shape), h * w_, h * w_, in_c, weight_shape[0]):
        return "grouped"
    return "f43" if winograd.f43_usable(x, weight_shape, padding) else "direct"


def up_conv_algorithm(x: torch.Tensor, weight_shape: torch.Size | tuple[int, ...], fir_splits: bool, up: int,
                      filters_kept: bool) -> str:
    """Which of ``UP_ALGORITHMS`` an upsampling modulated conv of x: [N, in, H, W] takes (shape, dtype
    and device read); ``fir_splits``: whether ``upsample_fir`` splits the layer's FIR filter."""
    n, in_c, h, w_ = x.shape
    if fir_splits and up == 2:
        algorithm = winograd.up_algorithm(x, weight_shape, filters_kept)
        if algorithm is not None:
            return "up_fused" if algorithm == "fused" else "up_winograd"
    weights_first = modulate_in_weights(math.prod(weight_shape), h * w_, h * w_ * up * up, in_c, weight_shape[0])
    return "up_weights" if n == 1 and weights_first else "up_direct"


def prepare_f43(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """weight: [K, C, 3, 3] → its F(4×4, 3×3) filter transform in dtype, [36, K, C]."""
    return winograd_op.weight_transform(weight.to(dtype))


def prepare_up(algorithm: str, weight: torch.Tensor, dtype: torch.dtype,
               input_size: tuple[int, int, int, int] | None = None, up: int = 2):
    """What an upsampling layer's ``algorithm`` reads of weight: [out, in, k, k]: the stride-2 Winograd
    filters (``up_fused``, ``up_winograd``), else the transposed conv's layout [in, out, k, k], for
    ``up_direct`` (stride ``up``) on inputs of ``input_size`` (if given) laid out once for oneDNN where
    it can be (``onednn_deconv.PackedDeconv``; only for layers whose FIR filter ``upsample_fir`` splits);
    ``up_winograd_unkept``: the stride-2 filters without their planes (``winograd_op.up_filters_into`` makes
    them per call)."""
    if algorithm in ("up_fused", "up_winograd"):
        return winograd_op.up_filters(weight.to(dtype))
    if algorithm == "up_winograd_unkept":
        return winograd_op.up_filters(weight.to(dtype), planes=False)
    w_t = transposed_weight(weight)
    if algorithm == "up_direct" and input_size is not None and onednn_deconv.available(w_t.to(dtype)):
        return onednn_deconv.pack(w_t.to(dtype), up, input_size)
    return w_t


def make_finish(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                noise: torch.Tensor | None, noise_strength: torch.Tensor, gain: float, clamp: float | None,
                weight_sq: torch.Tensor) -> Finish:
    """What follows a synthesis layer's conv: the demodulation times gain, [N, out]; the bias times gain;
    the noise and its gain; lrelu; the clamp. weight_sq: ``weight_square_sums(weight)``."""
    gd = demod_coefficients(weight, styles, weight_sq) * gain  # [N, out]
    noise_gain = 0.0 if noise is None else float(noise_strength) * gain
    return Finish(gd, (bias * gain).to(x.dtype), noise, noise_gain, LRELU_ALPHA, clamp)


def run_layer(algorithm: str, x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, finish: Finish,
              padding: int, prepared: torch.Tensor | None, up: int = 1, f: torch.Tensor | None = None,
              fir: Fir | None = None, out: torch.Tensor | None = None, raw: torch.Tensor | None = None,
              scratch: winograd_op.Scratch | None = None) -> torch.Tensor:
    """A synthesis layer's conv by ``algorithm`` (chosen by ``same_conv_algorithm`` / ``up_conv_algorithm``),
    then ``finish``: x: [N, in, H, W] → [N, out, H*up, W*up]. prepared: ``prepare_f43`` (fused, f43),
    ``prepare_up`` (upsampling) or None; f: the upsampling FIR filter, fir: its split taps or None.
    out: where to store the result; raw: where the Winograd convs (``f43``, ``up_fused``, ``up_winograd``)
    store their output before the epilogue pass (each contiguous, apart from x; raw may be out itself
    for a stride-1 conv, whose epilogue then runs in place; None: new tensors);
    scratch: gives the Winograd convs their tile tensors (the fused ones their band buffers)."""
    if algorithm == "fused":  # the epilogue runs inside the fused conv, on each output tile before it is stored
        return winograd_op.conv3x3_fused(x, prepared, styles, finish=finish, out=out, scratch=scratch)
    gd, gb = finish.scale, finish.bias
    if up == 1:
        y, fir, scale, rest_bias = _same_conv(algorithm, x, weight, styles, gd, gb, padding, prepared, raw, scratch)
    else:
        y, fir, scale, rest_bias = _up_conv(algorithm, x, weight, styles, gd, gb, up, padding, f, fir, prepared, raw,
                                            scratch)
    return layer_epilogue(y, fir, scale, rest_bias, finish.noise, finish.noise_gain, LRELU_ALPHA, finish.clamp, out)


# What the convolutions below return: their output, and what layer_epilogue still has to apply to it
# (the FIR filter, the demodulation scale [N, out] and the bias [out], each None if done or not needed).
ConvParts = tuple[torch.Tensor, Fir | None, torch.Tensor | None, torch.Tensor | None]


def _same_conv(algorithm: str, x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, gd: torch.Tensor,
               gb: torch.Tensor, padding: int, f43_filters: torch.Tensor | None,
               raw: torch.Tensor | None = None, scratch: winograd_op.Scratch | None = None) -> ConvParts:
    """The stride-1 modulated conv of ``run_layer`` (demodulation gd: [N, out],
    bias gb: [out]): [N, in, H, W] → [N, out, H, W]."""
    n, in_c, h, w_ = x.shape
    out_c, dtype = weight.shape[0], x.dtype
    if algorithm == "nnpack":
        wk = _per_sample_weights(weight, styles, gd).to(dtype)
        return winograd.nnpack_conv3x3(x, wk.reshape(n, out_c, *wk.shape[1:]), gb), None, None, None
    if algorithm == "grouped":
        wk = _per_sample_weights(weight, styles, gd).to(dtype)
        y = F.conv2d(x.reshape(1, n * in_c, h, w_), wk, bias=gb.repeat(n), padding=padding, groups=n)
        return y.reshape(n, out_c, h, w_), None, None, None
    if algorithm == "f43":  # the modulation in its input transform
        y = winograd.f43_conv3x3(x, f43_filters, styles, out=raw, scratch=scratch)
    elif algorithm == "f43_unkept":  # ... and its filters made on the way, in the plan's scratch
        y = winograd_op.conv3x3_from_weights_into(x, weight, styles, scratch, raw if raw is not None else x.new_empty(
            n, out_c, h, w_))
    else:
        y = F.conv2d(winograd_op.modulated(x, styles), weight.to(dtype), padding=padding)
    return y, None, gd, gb


def _up_conv(algorithm: str, x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, gd: torch.Tensor,
             gb: torch.Tensor, up: int, padding: int, f: torch.Tensor, fir: Fir | None,
             prepared: torch.Tensor, raw: torch.Tensor | None = None,
             scratch: winograd_op.Scratch | None = None) -> ConvParts:
    """The upsampling modulated conv of ``run_layer`` (demodulation gd: [N, out], bias gb: [out]):
    [N, in, H, W] → [N, out, H*up, W*up] once filtered."""
    dtype = x.dtype
    if algorithm == "up_fused":
        return winograd_op.conv_transpose3x3_s2_fused(x, prepared, styles, out=raw, scratch=scratch), fir, gd, gb
    if algorithm in ("up_winograd", "up_winograd_unkept"):  # the latter's planes made by the caller
        return winograd.up_winograd_conv(x, prepared, styles, out=raw, scratch=scratch), fir, gd, gb
    if isinstance(prepared, onednn_deconv.PackedDeconv):  # up_direct; the plan packs only where fir splits
        return prepared(winograd_op.modulated(x, styles)), fir, gd, gb
    w_t = prepared  # [in, out, k, k]
    if algorithm == "up_weights":
        w_t, scale = w_t * (styles[0][:, None] * gd[0][None, :])[..., None, None], None
    else:
        x, scale = winograd_op.modulated(x, styles), gd
    if fir is None:
        return _resample_conv(x, w_t.to(dtype), f, up, padding), None, scale, gb
    return F.conv_transpose2d(x, w_t.to(dtype), stride=up), fir, scale, gb


def torgb_forward(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                  clamp: float | None) -> torch.Tensor:
    """Modulated 1×1 conv without demodulation + bias + clamp.

    x: [N, in, H, W], weight: [out, in, 1, 1], styles: [N, in] (weight gain included) → [N, out, H, W].
    """
    return to_rgb(x, torgb_weights(weight, styles, x.dtype), bias, clamp)


def torgb_weights(weight: torch.Tensor, styles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """weight: [out, in, 1, 1] modulated by styles: [N, in] → per-sample weights [N, out, in] in dtype."""
    n, in_c = styles.shape
    return _per_sample_weights(weight, styles, None).to(dtype).reshape(n, weight.shape[0], in_c)
