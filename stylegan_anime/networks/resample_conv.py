"""2-D convolution fused with FIR up/downsampling, done the cheap way round.

Upsampling convs run as a strided transposed convolution followed by the FIR
filter; downsampling convs filter first and then convolve with a stride. Both
are equal to "upfirdn2d then conv" but touch 4× fewer pixels. Large stride-1 3×3 convs
run as Winograd F(4×4, 3×3) convolutions (``winograd.py`` says where).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops import kernels, winograd_op
from . import winograd


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int = 0, groups: int = 1,
          transpose: bool = False, flip_weight: bool = True) -> torch.Tensor:
    """conv2d / conv_transpose2d on weight w: [out, in/groups, kh, kw].

    ``flip_weight=True`` is plain correlation (what conv2d computes); False flips
    the taps, i.e. a true convolution.
    """
    if not flip_weight:
        w = w.flip([2, 3])
    if not transpose:
        return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    out_c, in_c_per_group, kh, kw = w.shape
    # conv_transpose2d wants [in, out/groups, kh, kw]: swap the two channel axes within each group.
    w = w.reshape(groups, out_c // groups, in_c_per_group, kh, kw).transpose(1, 2)
    w = w.reshape(groups * in_c_per_group, out_c // groups, kh, kw)
    return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """Convolve x: [N, C_in, H, W] with w: [C_out, C_in/groups, k, k], upsampling by ``up`` or
    downsampling by ``down`` with FIR filter f; ``padding`` is the conv's own padding.

    Returns [N, C_out, H*up/down, W*up/down] for odd k with padding k//2.
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample does either up- or downsampling, not both")
    kh, kw = w.shape[2], w.shape[3]
    fw, fh = kernels.filter_size(f)
    p = padding
    px0 = px1 = py0 = py1 = p
    if up > 1:
        px0, px1 = p + (fw + up - 1) // 2, p + (fw - up) // 2
        py0, py1 = p + (fh + up - 1) // 2, p + (fh - up) // 2
    if down > 1:
        px0, px1 = p + (fw - down + 1) // 2, p + (fw - down) // 2
        py0, py1 = p + (fh - down + 1) // 2, p + (fh - down) // 2

    if kw == 1 and kh == 1 and down > 1:
        x = kernels.upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return kernels.upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up,
                                 flip_filter=flip_filter)
    if down > 1:
        x = kernels.upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        # The transposed conv itself adds k-1 (x) / k-up (right) pixels of border; the FIR pad makes up the rest.
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        return kernels.upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up,
                                 flip_filter=flip_filter)
    if winograd.f43_usable(x, w.shape, p, groups):
        return winograd_op.conv3x3(x, w if flip_weight else w.flip([2, 3]), native=True)  # f43_usable checked
    return _conv(x, w, padding=p, groups=groups, flip_weight=flip_weight)
