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
  g > 0), the bias rides in the conv where no FIR filter follows, and the rest (noise,
  bias, lrelu, clamp) runs in place on the conv's own output.

- Large 3×3 layers may run as Winograd convolutions (``winograd.py`` says where: NNPACK for
  per-sample weights, F(4×4, 3×3) for shared ones; faster, with float32 rounding of about
  2e-5 of the largest output; ``STYLEGAN_ANIME_WINOGRAD=off`` turns them off).

Only for forwards that need no gradients; training uses the reference layers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import kernels, winograd_op
from . import winograd
from .resample_conv import _conv, conv2d_resample

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
    w = weight.unsqueeze(0) * in_scale[:, None, :, None, None]
    if out_scale is not None:
        w = w * out_scale[:, :, None, None, None]
    return w.reshape(-1, *weight.shape[1:])


def upsample_conv2d(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, up: int, padding: int,
                    groups: int = 1) -> torch.Tensor:
    """``conv2d_resample(x, w, f, up=up, padding=padding, groups=groups, flip_weight=False)``
    with the FIR filter run as one depthwise conv that pads by itself (the reference op
    copies the tensor twice to pad it first). x: [N, C_in, H, W] → [N, C_out, H*up, W*up]."""
    kh, kw = w.shape[2:]
    fh, fw = f.shape if f.ndim == 2 else (f.shape[0], f.shape[0])
    px0, px1 = padding + (fw + up - 1) // 2 - (kw - 1), padding + (fw - up) // 2 - (kw - up)
    py0, py1 = padding + (fh + up - 1) // 2 - (kh - 1), padding + (fh - up) // 2 - (kh - up)
    if f.ndim != 2 or len({px0, px1}) != 1 or len({py0, py1}) != 1 or min(px0, py0) < 0:
        return conv2d_resample(x, w, f, up=up, padding=padding, groups=groups, flip_weight=False)
    y = _conv(x, w, stride=up, groups=groups, transpose=True)
    n = y.shape[0]
    y = y.reshape(n * groups, -1, *y.shape[2:])  # oneDNN's depthwise conv is ~4x slower on [1, groups*C, H, W]
    c = y.shape[1]
    taps = (f * (up * up)).flip([0, 1]).to(y.dtype)  # conv2d correlates: flip for a true convolution
    y = F.conv2d(y, taps[None, None].expand(c, 1, fh, fw), padding=(py0, px0), groups=c)
    return y.reshape(n, -1, *y.shape[2:])


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
                            resample_filter: torch.Tensor, gain: float, clamp: float | None,
                            weight_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Modulated, demodulated conv + noise + bias + lrelu·gain + clamp.

    x: [N, in, H, W], weight: [out, in, k, k], styles: [N, in], bias: [out],
    noise: broadcastable to [N, 1, H*up, W*up] or None; gain > 0 (lrelu's gain times the
    layer's); clamp: None or >= 0; weight_sq: ``weight_square_sums(weight)`` or None.
    Returns [N, out, H*up, W*up].
    """
    n, in_c, h, w_ = x.shape
    out_c = weight.shape[0]
    dtype = x.dtype
    gd = demod_coefficients(weight, styles, weight_sq) * gain  # [N, out]
    gb = (bias * gain).to(dtype)
    if up == 1 and winograd.usable(x, weight.shape[2], padding, out_c):
        wk = _per_sample_weights(weight, styles, gd).to(dtype)
        y = winograd.conv3x3(x, wk.reshape(n, out_c, *wk.shape[1:]), gb)
    elif (up == 1 or n == 1) and modulate_in_weights(weight.numel(), h * w_, h * w_ * up * up, in_c, out_c):
        wk = _per_sample_weights(weight, styles, gd).to(dtype)
        xg = x.reshape(1, n * in_c, h, w_)
        if up == 1:
            y = F.conv2d(xg, wk, bias=gb.repeat(n), padding=padding, groups=n)
        else:
            y = upsample_conv2d(xg, wk, resample_filter, up, padding, groups=n)
        y = y.reshape(n, out_c, *y.shape[2:])
        if up != 1:
            y.add_(gb.reshape(1, -1, 1, 1))
    else:
        xs = x * styles.to(dtype).reshape(n, -1, 1, 1)
        if up == 1 and winograd.f43_usable(xs, weight.shape, padding):
            y = winograd_op.conv3x3(xs, weight, native=True)  # f43_usable checked
        elif up == 1:
            y = F.conv2d(xs, weight.to(dtype), padding=padding)
        else:
            y = upsample_conv2d(xs, weight.to(dtype), resample_filter, up, padding)
        y.mul_(gd.to(dtype).reshape(n, -1, 1, 1)).add_(gb.reshape(1, -1, 1, 1))
    if noise is not None:
        y.add_(noise.to(dtype) * (noise_strength * gain).to(dtype))
    F.leaky_relu_(y, LRELU_ALPHA)
    if clamp is not None:
        y.clamp_(-clamp, clamp)
    return y


def torgb_forward(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                  clamp: float | None) -> torch.Tensor:
    """Modulated 1×1 conv without demodulation + bias + clamp.

    x: [N, in, H, W], weight: [out, in, 1, 1], styles: [N, in] (weight gain included) → [N, out, H, W].
    """
    n, in_c, h, w_ = x.shape
    out_c = weight.shape[0]
    # A 1×1 conv to 3 channels is a batched matmul; MKL's runs it about twice as fast as the conv.
    wk = _per_sample_weights(weight, styles, None).to(x.dtype).reshape(n, out_c, in_c)
    b = bias.to(x.dtype).reshape(1, out_c, 1).expand(n, out_c, 1)
    y = torch.baddbmm(b, wk, x.reshape(n, in_c, h * w_)).reshape(n, out_c, h, w_)
    if clamp is not None:
        y.clamp_(-clamp, clamp)
    return y


def needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd would record an op on these tensors."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)

