"""The native kernels as autograd Functions, with first and second derivatives.

Arguments arrive already checked and normalised by ``kernels.upfirdn2d`` / ``kernels.bias_act``,
which decide between these and the reference implementations.

- upfirdn2d's gradient is itself an upfirdn2d (up and down swapped, filter flipped, padding
  chosen to give back the input's size), computed by the same Function, so every order of
  derivative comes for free. Filters are constants: there is no gradient for ``f``.
- bias_act's gradient is ``dy * gain * act'(x + b)`` (zero where clamped), a second native
  kernel; its own gradient uses ``act''``, which is as far as it goes (enough for R1 and
  path-length regularisation, which need second order).
"""
from __future__ import annotations

from types import ModuleType

import torch

from . import native_build

ACT_CODES = {name: i for i, name in
             enumerate(["linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"])}

# Dtypes each device kind's kernels are compiled for.
NATIVE_DTYPES = {"cpu": (torch.float32, torch.float64), "cuda": (torch.float16, torch.float32, torch.float64)}


def native_module(op: str, x: torch.Tensor) -> ModuleType | None:
    """The native module to run ``op`` on ``x`` with, or None for the reference path (mode "ref",
    a device or dtype the kernels do not cover, or a build that failed)."""
    kind = x.device.type
    if kind not in NATIVE_DTYPES or x.dtype not in NATIVE_DTYPES[kind] or native_build.ops_mode() == "ref":
        return None
    return native_build.load(op, kind)


def inference_module(op: str, x: torch.Tensor, *inputs: torch.Tensor | None) -> ModuleType | None:
    """``native_module`` for a CPU-only op without gradients (``layer_epilogue``, ``to_rgb``): None
    also off the CPU and where autograd would record the op on x or ``inputs``."""
    if x.device.type != "cpu" or needs_graph(x, *inputs):
        return None
    return native_module(op, x)


def needs_graph(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd would record an op on these tensors (None: absent)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# --------------------------------------------------------------------------- upfirdn2d


def filter_2d(f: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The kernels' filter: 2-D taps in float64 for float64 x, else float32. A separable 1-D filter
    becomes its outer product (the op scales it by gain once, as two passes of sqrt(gain) would)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if f is None:
        return torch.ones([1, 1], dtype=dtype, device=x.device)
    f = f.to(device=x.device, dtype=dtype)
    return (torch.outer(f, f) if f.ndim == 1 else f).contiguous()


class Upfirdn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f2d, up, down, pad, flip, gain):  # noqa: D102 - see upfirdn2d
        module = native_build.load("upfirdn2d", x.device.type)
        (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
        y = module.upfirdn2d(x, f2d, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
        ctx.f2d, ctx.args, ctx.in_size = f2d, (up, down, pad, flip, gain), x.shape[2:]
        return y

    @staticmethod
    def backward(ctx, dy):  # noqa: D102
        up, down, pad, flip, gain = ctx.args
        return upfirdn2d(dy, ctx.f2d, *grad_args(ctx.in_size, dy.shape[2:], ctx.f2d.shape, up, down, pad, flip),
                         gain), None, None, None, None, None, None


def grad_args(in_size, out_size, f_shape, up, down, pad, flip):
    """(up, down, pad, flip) of the upfirdn2d that maps dy back onto x: dy is zero-inserted by
    ``down``, correlated with the taps turned round, and sampled every ``up``-th output, with
    padding that lines tap and sample up again and gives back exactly the input's size."""
    (in_h, in_w), (out_h, out_w), (fh, fw) = in_size, out_size, f_shape
    (upx, upy), (downx, downy), (px0, _, py0, _) = up, down, pad
    gpad = (fw - 1 - px0, in_w * upx - out_w * downx + px0 - upx + 1,
            fh - 1 - py0, in_h * upy - out_h * downy + py0 - upy + 1)
    return down, up, gpad, not flip


def upfirdn2d(x: torch.Tensor, f2d: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
              pad: tuple[int, int, int, int], flip: bool, gain: float) -> torch.Tensor:
    """Native upfirdn2d. x: [N, C, H, W]; f2d: from ``filter_2d``; up/down (x, y); pad (x0, x1, y0, y1)."""
    if not needs_graph(x):
        (upx, upy), (downx, downy) = up, down
        module = native_build.load("upfirdn2d", x.device.type)
        return module.upfirdn2d(x, f2d, upx, upy, downx, downy, *pad, flip, gain)
    return Upfirdn2d.apply(x, f2d, up, down, pad, flip, gain)


# --------------------------------------------------------------------------- bias_act


class BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, args):  # noqa: D102 - see bias_act; args = (dim, act code, alpha, gain, clamp)
        y = _bias_act_kernel(x, b, None, args, 0)
        ctx.save_for_backward(x, b)
        ctx.args = args
        return y

    @staticmethod
    def backward(ctx, dy):  # noqa: D102
        x, b = ctx.saved_tensors
        dx = BiasActGrad.apply(dy.contiguous(), x, b, ctx.args, 1)
        db = _sum_to_bias(dx, ctx.args[0]) if b.numel() and ctx.needs_input_grad[1] else None
        return dx, db, None


class BiasActGrad(torch.autograd.Function):
    """dy * d^order y / dx^order for order 1 or 2 (see bias_act.h)."""

    @staticmethod
    def forward(ctx, dy, x, b, args, order):  # noqa: D102
        ctx.save_for_backward(dy, x, b)
        ctx.args, ctx.order = args, order
        return _bias_act_kernel(x, b, dy, args, order)

    @staticmethod
    def backward(ctx, dout):  # noqa: D102
        dy, x, b = ctx.saved_tensors
        dout = dout.contiguous()
        d_dy = BiasActGrad.apply(dout, x, b, ctx.args, ctx.order) if ctx.needs_input_grad[0] else None
        d_x = d_b = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            if ctx.order >= 2:
                raise NotImplementedError("bias_act: derivatives beyond the second order are not implemented")
            d_x = BiasActGrad.apply(dout * dy, x, b, ctx.args, ctx.order + 1)
            if b.numel() and ctx.needs_input_grad[2]:
                d_b = _sum_to_bias(d_x, ctx.args[0])
        return d_dy, d_x, d_b, None, None


def _sum_to_bias(g: torch.Tensor, dim: int) -> torch.Tensor:
    others = [i for i in range(g.ndim) if i != dim]
    return g.sum(dim=others) if others else g  # sum(dim=[]) would sum over everything


def _bias_act_kernel(x, b, dy, args, order) -> torch.Tensor:
    module = native_build.load("bias_act", x.device.type)
    dim, act, alpha, gain, clamp = args
    dy = dy if dy is not None else x.new_empty([0])
    return module.bias_act(x, b, dy, dim, act, alpha, gain, clamp, order)


def bias_act(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
             clamp: float) -> torch.Tensor:
    """Native bias_act; arguments resolved by ``kernels.resolve_bias_act_args`` (clamp < 0: none)."""
    x = x.contiguous()
    b = x.new_empty([0]) if b is None else b.to(x.dtype).contiguous()
    args = (dim, ACT_CODES[act], alpha, gain, clamp)
    if not needs_graph(x, b):
        return _bias_act_kernel(x, b, None, args, 0)
    return BiasAct.apply(x, b, args)
