"""Checks that an unpickled tensor is exactly the data its file holds.

A pickle gives every tensor a storage plus (offset, size, stride). With stride 0 a 4-byte
storage can pose as a tensor of 10⁹ elements (free until the first copy, which then needs
4 GB); overlapping strides or a view of a bigger storage do the same in milder forms. Weights
files save each tensor densely in a storage of its own size, so anything else is refused.
"""
from __future__ import annotations

import math

import torch

from ...errors import UserError

MAX_DIMS = 16


def dense_layout_problem(size: tuple, stride: tuple, offset: int, storage_numel: int) -> str | None:
    """Why (size, stride, offset) is not a dense, non-overlapping tensor filling a storage of
    ``storage_numel`` elements, or None if it is. Pure arithmetic: nothing is allocated."""
    if not all(type(v) is int for v in (*size, *stride)) or type(offset) is not int:
        return "a size, stride or offset that is not an integer"
    if len(size) != len(stride) or len(size) > MAX_DIMS:
        return f"{len(size)} sizes for {len(stride)} strides"
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        return "a negative size, stride or offset"
    numel = math.prod(size)
    if numel == 0:
        return None if storage_numel == 0 else f"an empty shape {list(size)} in a storage of {storage_numel} elements"
    expected = 1
    for n, st in sorted(((n, st) for n, st in zip(size, stride) if n != 1), key=lambda p: p[1]):
        if st != expected:
            kind = "a zero stride (an expanded tensor)" if st == 0 else "overlapping or gapped strides"
            return f"{kind}: size {list(size)}, stride {list(stride)}"
        expected *= n
    if offset != 0 or storage_numel != numel:
        return (f"shape {list(size)} ({numel} elements) in a storage of {storage_numel} elements "
                f"at offset {offset}")
    return None


def check_tensor(t: torch.Tensor, what: str) -> None:
    """Refuse a tensor that is not a dense, whole-storage tensor (see ``dense_layout_problem``)."""
    nbytes = t.untyped_storage().nbytes()
    problem = dense_layout_problem(tuple(t.shape), tuple(t.stride()), t.storage_offset(),
                                   nbytes // max(t.element_size(), 1))
    if problem is None and nbytes % max(t.element_size(), 1):
        problem = f"a storage of {nbytes} bytes for {t.element_size()}-byte elements"
    if problem is not None:
        raise UserError(f"{what}: a tensor in the file has {problem}, which weights files never do")
