"""oneDNN's transposed convolution on a weight laid out once in oneDNN's own blocked format.

``F.conv_transpose2d`` hands oneDNN a plain weight, which oneDNN reorders into its blocked layout on
every call. For the small upsampling layers an inference plan runs this way (one 8×8 image, 512
channels) the reorder is about half of the call, and each call leaves a freed 9 MiB block behind. A
plan keeps the reordered weight instead of the plain transposed copy: the same bytes, no reorder.
The ops used are PyTorch's own (``torch.ops.mkldnn``, which its CPU compiler path uses for the same
purpose); where a build lacks them, ``available`` says so and the plan keeps the plain copy.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


def available(weight: torch.Tensor) -> bool:
    """Whether a packed transposed conv can serve weight (float32, CPU, a oneDNN build of PyTorch)."""
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return False
    ops = torch.ops.mkldnn
    return hasattr(ops, "_reorder_convolution_transpose_weight") and hasattr(ops, "_convolution_transpose_pointwise")


class PackedDeconv(NamedTuple):
    """``conv_transpose2d(x, w_t, stride=stride)`` with w_t kept in oneDNN's layout (an opaque tensor)."""
    weight: torch.Tensor  # w_t: [in, out, k, k], reordered
    stride: int

    def __deepcopy__(self, memo: dict) -> PackedDeconv:
        # An opaque tensor has no storage to copy, and nothing ever writes to this one: share it.
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, in, H, W] float32 → [N, out, (H - 1)·stride + k, (W - 1)·stride + k]."""
        s = self.stride
        # oneDNN returns it channels-last; the layer epilogue reads it as it is laid out by a copy.
        return torch.ops.mkldnn._convolution_transpose_pointwise(
            x.contiguous(), self.weight, None, [0, 0], [0, 0], [s, s], [1, 1], 1, "none", [], "")


def pack(w_t: torch.Tensor, stride: int, input_size: tuple[int, int, int, int]) -> PackedDeconv:
    """w_t: conv_transpose2d's weight [in, out, k, k] (float32, CPU), for inputs of ``input_size``
    [N, in, H, W] (oneDNN picks the layout for that shape; other shapes still work)."""
    packed = torch.ops.mkldnn._reorder_convolution_transpose_weight(
        w_t.contiguous(), [0, 0], [0, 0], [stride, stride], [1, 1], 1, list(input_size))
    return PackedDeconv(packed, stride)
