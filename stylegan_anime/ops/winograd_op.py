"""A 3×3 'same' convolution as Winograd F(4×4, 3×3), differentiable to any order.

Each 4×4 output tile is computed from a 6×6 input tile with 36 multiplications per channel
pair instead of 144 (4× fewer); the multiplications become 36 matrix products over channels
and tiles, which BLAS runs at full speed, forwards and backwards (the input and weight
gradients are two more sets of 36 matrix products). What is left, the tile transforms, is
cheap, linear, and done by the native ``winograd`` op (``ops/winograd.h``), whose plain-PyTorch
references here define it. Because the transforms are linear, each one's gradient is its
adjoint and the adjoint's gradient is the transform again, so R1 and path-length
regularisation (gradients of gradients) work.

Float32 rounding is about 1e-5 of a layer's largest output (1e-7 for a direct convolution).

Layouts: x [N, C, H, W]; weight [K, C, 3, 3]; V [36, C, P]; U [36, K, C]; M [36, K, P]; y [N, K, H, W], with
P = N·ceil(H/4)·ceil(W/4) tiles in (n, ty, tx) order.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from . import native_build
from .layer_epilogue import Finish
from .to_rgb import ToRgb

# Gives the tensor to fill for a role ("tiles_in", "tiles_out"), shape and dtype: an inference plan's
# buffers, so that a forward's Winograd tiles are not allocated anew each time.
Scratch = Callable[[str, tuple[int, ...], torch.dtype], torch.Tensor]

_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


def _mat(rows: list[list[float]], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def tiles(h: int, w: int) -> tuple[int, int]:
    """(th, tw): the 4×4 output tiles covering an H×W image."""
    return -(-h // 4), -(-w // 4)


# --------------------------------------------------------------------------- references


def input_transform_ref(x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """x: [N, C, H, W] (times scale: [N, C], if given) → V: [36, C, P], V = Bt d Bt^T for every 6×6
    tile d (zero padded)."""
    x = modulated(x, scale)
    n, c, h, w = x.shape
    th, tw = tiles(h, w)
    xp = F.pad(x, (1, 4 * tw + 1 - w, 1, 4 * th + 1 - h))
    d = xp.unfold(2, 6, 4).unfold(3, 6, 4)  # [N, C, th, tw, 6, 6]
    bt = _mat(_BT, x)
    v = torch.einsum("ui,vj,ncyxij->uvcnyx", bt, bt, d)
    return v.reshape(36, c, n * th * tw)


def output_transform_ref(m: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """M: [36, K, P] → y: [N, K, H, W], y = At m At^T for every tile m, cropped to H×W."""
    th, tw = tiles(h, w)
    k = m.shape[1]
    at = _mat(_AT, m)
    y = torch.einsum("iu,jv,uvknyx->nkyixj", at, at, m.reshape(6, 6, k, n, th, tw))
    return y.reshape(n, k, 4 * th, 4 * tw)[:, :, :h, :w]


def _vjp(fn, shape: tuple[int, ...], like: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The adjoint of the linear map ``fn`` applied to ``grad`` (its vector-Jacobian product)."""
    with torch.enable_grad():
        probe = torch.zeros(shape, dtype=like.dtype, device=like.device, requires_grad=True)
        (out,) = torch.autograd.grad(fn(probe), probe, grad, create_graph=torch.is_grad_enabled())
    return out


def input_adjoint_ref(dv: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """dV: [36, C, P] → dx: [N, C, H, W], the adjoint of ``input_transform_ref``."""
    return _vjp(input_transform_ref, (n, dv.shape[1], h, w), dv, dv)


def output_adjoint_ref(dy: torch.Tensor) -> torch.Tensor:
    """dy: [N, K, H, W] → dM: [36, K, P], the adjoint of ``output_transform_ref``."""
    n, k, h, w = dy.shape
    th, tw = tiles(h, w)
    return _vjp(lambda m: output_transform_ref(m, n, h, w), (36, k, n * th * tw), dy, dy)


def weight_transform_ref(weight: torch.Tensor) -> torch.Tensor:
    """weight: [K, C, 3, 3] → U: [36, K, C], U = G g G^T per filter (differentiable)."""
    k, c = weight.shape[:2]
    g = _mat(_G, weight)
    return torch.mm(torch.kron(g, g), weight.reshape(k * c, 9).t()).reshape(36, k, c)


def weight_adjoint_ref(du: torch.Tensor) -> torch.Tensor:
    """dU: [36, K, C] → dg: [K, C, 3, 3], the adjoint of ``weight_transform_ref``."""
    return _vjp(weight_transform_ref, (*du.shape[1:], 3, 3), du, du)


# --------------------------------------------------------------------------- native, with autograd


class _Linear(torch.autograd.Function):
    """A linear native transform ``name(t, *args)``: its gradient is its adjoint
    ``adjoint(g, *adjoint_args)``, whose gradient is the transform again."""

    @staticmethod
    def forward(ctx, t, name, args, adjoint, adjoint_args):  # noqa: D102
        ctx.pair = (adjoint, adjoint_args, name, args)
        return getattr(native_build.load("winograd", "cpu"), name)(t.contiguous(), *args)

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        return _Linear.apply(g, *ctx.pair), None, None, None, None


def input_transform(x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Native ``input_transform_ref``: differentiable, or with ``scale`` (folded into the transform's
    pass) without gradients."""
    if scale is not None:
        return _native("input", x, _scale_arg(scale, x))
    n, _, h, w = x.shape
    return _Linear.apply(x, "input", (), "input_adjoint", (n, h, w))


def input_adjoint(dv: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """Native ``input_adjoint_ref``, differentiable."""
    return _Linear.apply(dv, "input_adjoint", (n, h, w), "input", ())


def output_transform(m: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """Native ``output_transform_ref``, differentiable."""
    return _Linear.apply(m, "output", (n, h, w), "output_adjoint", ())


def output_adjoint(dy: torch.Tensor) -> torch.Tensor:
    """Native ``output_adjoint_ref``, differentiable."""
    n, _, h, w = dy.shape
    return _Linear.apply(dy, "output_adjoint", (), "output", (n, h, w))


def weight_transform(weight: torch.Tensor) -> torch.Tensor:
    """Native ``weight_transform_ref``, differentiable. (As a GEMM, [36, 9] × [9, K·C], its
    gradient is a [K·C, 36] × [36, 9] GEMM that BLAS runs 4× slower than the native adjoint.)"""
    return _Linear.apply(weight, "weight", (), "weight_adjoint", ())


def weight_adjoint(du: torch.Tensor) -> torch.Tensor:
    """Native ``weight_adjoint_ref``, differentiable."""
    return _Linear.apply(du, "weight_adjoint", (), "weight", ())


def native_available(x: torch.Tensor) -> bool:
    """Whether the native transforms serve x (CPU, float32/64, ops mode not "ref", built)."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or native_build.ops_mode() == "ref":
        return False
    return native_build.load("winograd", "cpu") is not None


def conv3x3(x: torch.Tensor, weight: torch.Tensor, native: bool | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=1)`` for x: [N, C, H, W], weight: [K, C, 3, 3] → [N, K, H, W],
    computed as Winograd F(4×4, 3×3). ``native``: the native transforms (default: where available)
    or the references."""
    if native is None:
        native = native_available(x)
    weight = weight.to(x.dtype)
    return conv3x3_transformed(x, weight_transform(weight) if native else weight_transform_ref(weight), native)


def conv3x3_transformed(x: torch.Tensor, u: torch.Tensor, native: bool | None = None,
                        scale: torch.Tensor | None = None, scratch: Scratch | None = None,
                        out: torch.Tensor | None = None, band_rows: int | None = None) -> torch.Tensor:
    """``conv3x3`` given the transformed filters u = ``weight_transform(weight)``: [36, K, C]
    (so that callers may keep them between calls); with scale: [N, C], the conv of
    x * scale[:, :, None, None] (modulated activations), without gradients. With ``scratch`` (native
    only, no gradients) the tiles go to the tensors it gives, ``band_rows`` rows of windows at a time
    (None: all), and the result to ``out`` if given."""
    if scratch is not None:
        out = x.new_empty(x.shape[0], u.shape[1], *x.shape[2:]) if out is None else out
        return _tile_products_into(x, u, ("input", "output"), tiles(x.shape[2], x.shape[3]), scale, scratch, out,
                                   band_rows)
    return _tile_products(x, u, native, (input_transform, output_transform), (input_transform_ref, output_transform_ref),
                          scale)


def conv3x3_from_weights_into(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None,
                              scratch: Scratch, out: torch.Tensor) -> torch.Tensor:
    """``conv3x3_transformed(x, weight_transform(weight), scale=scale, scratch=scratch, out=out)`` without
    the filter transform: each block of filters is transformed into the "filters" scratch tensor just before
    its products (native ``products_from_weights``: float32, one call for all of x's tiles, out channels a
    multiple of 16, in channels and tiles of 8). The transformed filters are bitwise the kept ones; the
    products sum in another order than BLAS's."""
    native = native_build.load("winograd", "cpu")
    c, h, w = x.shape[1:]
    work = scratch("filters", (native.filter_work_floats(c, torch.get_num_threads()),), torch.float32)
    weight = weight.to(x.dtype).contiguous()
    return _tile_products_into(x, weight, ("input", "output"), tiles(h, w), scale, scratch, out,
                               products=lambda g, v, m: native.products_from_weights(g, v, m, work),
                               planes=(36, weight.shape[0]))


def _tile_products(x: torch.Tensor, u: torch.Tensor, native: bool | None, native_pair, ref_pair,
                   scale: torch.Tensor | None = None) -> torch.Tensor:
    """output(bmm(u, input(x, scale)), N, H, W) with the (input, output) transforms of ``native_pair``
    (native: True, or None where available) or of ``ref_pair``."""
    n, _, h, w = x.shape
    if native is None:
        native = native_available(x)
    to_tiles, from_tiles = native_pair if native else ref_pair
    return from_tiles(torch.bmm(u, to_tiles(x) if scale is None else to_tiles(x, scale)), n, h, w)


def _tile_products_into(x: torch.Tensor, u: torch.Tensor, names: tuple[str, str], tile_grid: tuple[int, int],
                        scale: torch.Tensor | None, scratch: Scratch, out: torch.Tensor,
                        band_rows: int | None = None, products=None,
                        order: torch.Tensor | None = None, planes: tuple[int, int] | None = None) -> torch.Tensor:
    """``_tile_products`` by the native transforms ``names`` (input, output) into ``out``, the transformed
    input and the products in scratch tensors ("tiles_in" [S², C, P], "tiles_out" [S², K, P]; P: x's
    images times ``tile_grid``'s tiles, or times a band's: ``band_rows`` rows of windows at a time, so
    that a large image's tiles take a fraction of its memory; None: all). ``products(u, v, out)``: the
    tiles' products (default ``torch.bmm``); ``order``: the plane of each of the S² values (None: value
    order, and u has S² planes); ``planes``: (S², K) when u is not the transformed filters (``products``
    makes them). Returns out."""
    n, c, h, w = x.shape
    values, k = planes or ((u.shape[0] if order is None else order.numel()), u.shape[1])
    products = products or (lambda u_, v_, out: torch.bmm(u_, v_, out=out))
    more = () if order is None else (order,)
    rows_all, per_row = tile_grid
    rows = rows_all if band_rows is None else max(1, min(band_rows, rows_all))
    scale = None if scale is None else _scale_arg(scale, x)
    for first in range(0, rows_all, rows):
        taken = min(rows, rows_all - first)
        band = (first, taken) if rows < rows_all else (0, -1)
        v = _native(names[0], x, scale, scratch("tiles_in", (values, c, n * taken * per_row), x.dtype), *band, *more)
        m = products(u, v, scratch("tiles_out", (values, k, n * taken * per_row), x.dtype))
        _native(names[1], m, n, h, w, out, *band, *more)
    return out


def modulated(x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """x: [N, C, ...] times scale: [N, C] (if given), channel by channel: a modulated conv's input."""
    return x if scale is None else x * scale.to(x.dtype).reshape(*scale.shape, *([1] * (x.ndim - 2)))


def _scale_arg(scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """scale: [N, C] as the native ops take it: x's dtype, contiguous (they check its shape)."""
    return scale.to(x.dtype).contiguous()


# --------------------------------------------------------------------------- the stride-2 transposed conv
#
# conv_transpose2d(x, w_t, stride=2) with a 3×3 kernel (the upsampling conv), as 81 matrix products
# over channels instead of 144 per 8×8 output tile: along each axis y[2j] = w0 x[j] + w2 x[j-1] is a
# 2-tap correlation, done as Winograd F(4, 2) (points 0, 1, -1, 2, ∞), and y[2j+1] = w1 x[j] is one
# product. A window x[j0-1 .. j0+3] gives 9 values (5 of F(4, 2), then x[j0 .. j0+3] as they are),
# which give the outputs y[2j0 .. 2j0+7]; windows are 4 pixels apart, ceil(H/4) of them down an
# input of H rows, whose output has 2H + 1. When H is a multiple of 4 they miss the last output row,
# y[2H] = w2 x[H-1]: ``UpFilters`` keeps its taps (and the last column's), and the convs fill it in
# apart (another row of windows would cost 1/(H/4) more products). Inference only: no gradients.
# Layouts: x [N, C, H, W]; weight [K, C, 3, 3] (conv2d's: w_t with its channel axes swapped);
# V [81, C, P]; U [81, K, C], kept as its 36 distinct planes (``_up_grouping``); M [81, K, P];
# y [N, K, 2H+1, 2W+1].

_UP_T = [[2, -1, -2, 1, 0], [0, 2, 1, -1, 0], [0, -2, 3, -1, 0], [0, -1, 0, 1, 0], [0, 2, -1, -2, 1],
         [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]
_UP_G = [[0, 0, 1 / 2], [1 / 2, 0, 1 / 2], [-1 / 6, 0, 1 / 6], [1 / 3, 0, 1 / 6], [1, 0, 0],
         [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]]  # on (w0, w1, w2)
_UP_A = [[1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 0, 0, 0], [0, 1, -1, 2, 0, 0, 0, 0, 0],
         [0, 0, 0, 0, 0, 0, 1, 0, 0], [0, 1, 1, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1, 0],
         [0, 1, -1, 8, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 1]]




def _up_grouping() -> tuple[list[int], list[int], list[tuple[int, int, int, int]]]:
    """How the stride-2 conv keeps and multiplies its filters. Along each axis values 5..8 of the 9 are
    all w1 (``_UP_G``: the odd outputs' one tap), so a filter's 81 values hold 36 distinct ones:
    25 of values 0..4 on both axes (each multiplies one plane of tiles), 10 with w1 on one axis (each
    four planes) and w1·w1 (sixteen planes). The filters keep each distinct value once, and the
    transforms put the planes that share a filter side by side, so that the products are six batched
    GEMMs instead of one over 81 planes of filters (2.25x the memory).

    Returns (for each of the 81 values i·9 + j, the row of the kept filters it multiplies; for each
    value, the plane of the tile tensors it goes to; the product groups as (first filter row, filter
    rows, first plane, planes): filter rows equal planes, or one filter row for all the planes)."""
    def distinct(i: int, j: int) -> tuple[int, int]:
        return min(i, 5), min(j, 5)

    groups = [[(i, j) for i in range(5) for j in range(5)]]
    groups += [[(i, 5 + q) for i in range(5)] + [(5 + q, j) for j in range(5)] for q in range(4)]
    groups += [[(5 + a, 5 + b) for a in range(4) for b in range(4)]]
    rows: dict[tuple[int, int], int] = {}
    filter_of, plane_of, spans = [0] * 81, [0] * 81, []
    plane = 0
    for group in groups:
        first = None
        for i, j in group:
            row = rows.setdefault(distinct(i, j), len(rows))
            first = row if first is None else first
            filter_of[i * 9 + j], plane_of[i * 9 + j] = row, plane
            plane += 1
        count = len({distinct(i, j) for i, j in group})
        spans.append((first, count, plane - len(group), len(group)))
    return filter_of, plane_of, spans


UP_FILTER_OF_VALUE, UP_PLANE_OF_VALUE, UP_PRODUCT_SPANS = _up_grouping()
UP_DISTINCT = max(UP_FILTER_OF_VALUE) + 1  # 36
# Which of the 81 values each kept filter row holds (its first).
UP_VALUE_OF_FILTER = [UP_FILTER_OF_VALUE.index(r) for r in range(UP_DISTINCT)]


def up_products(u: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The stride-2 conv's tile products: u: [36, K, C] (``UpFilters.u``), v: [81, C, P] in the grouped plane
    order (``UP_PLANE_OF_VALUE``) → [81, K, P] in the same order (in ``out`` if given)."""
    out = v.new_empty(v.shape[0], u.shape[1], v.shape[2]) if out is None else out
    for first_row, filter_rows, first, planes in UP_PRODUCT_SPANS:
        uu = u[first_row: first_row + filter_rows]
        torch.bmm(uu if filter_rows == planes else uu.expand(planes, -1, -1), v[first: first + planes],
                  out=out[first: first + planes])
    return out


# The same as index tensors, for the native transforms (CPU) and for indexing the kept rows.
_UP_ORDER = torch.tensor(UP_PLANE_OF_VALUE, dtype=torch.int64)
_UP_FILTER_INDEX = torch.tensor(UP_FILTER_OF_VALUE, dtype=torch.int64)
_UP_KEPT_VALUES = torch.tensor(UP_VALUE_OF_FILTER, dtype=torch.int64)


def up_tiles(h: int, w: int) -> tuple[int, int]:
    """(th, tw): the windows down and across an H×W input of the transposed conv."""
    return -(-h // 4), -(-w // 4)


def up_input_transform_ref(x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """x: [N, C, H, W] (times scale: [N, C], if given) → V: [81, C, P], V = T d T^T for every 5×5
    window d (zero padded)."""
    x = modulated(x, scale)
    n, c, h, w = x.shape
    th, tw = up_tiles(h, w)
    xp = F.pad(x, (1, 4 * tw - w, 1, 4 * th - h))
    d = xp.unfold(2, 5, 4).unfold(3, 5, 4)  # [N, C, th, tw, 5, 5]
    t = _mat(_UP_T, x)
    return torch.einsum("ui,vj,ncyxij->uvcnyx", t, t, d).reshape(81, c, n * th * tw)


def up_output_transform_ref(m: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """M: [81, K, P] of an N×H×W input → y: [N, K, 2H+1, 2W+1], y = A m A^T for every tile m, and
    zero where no window reaches (the last row if H % 4 == 0, the last column if W % 4 == 0)."""
    th, tw = up_tiles(h, w)
    k = m.shape[1]
    a = _mat(_UP_A, m)
    y = torch.einsum("iu,jv,uvknyx->nkyixj", a, a, m.reshape(9, 9, k, n, th, tw)).reshape(n, k, 8 * th, 8 * tw)
    return F.pad(y, (0, max(0, 2 * w + 1 - 8 * tw), 0, max(0, 2 * h + 1 - 8 * th)))[:, :, :2 * h + 1, :2 * w + 1]


def up_weight_transform_ref(weight: torch.Tensor) -> torch.Tensor:
    """weight: [K, C, 3, 3] → U: [81, K, C], U = G g G^T per filter."""
    k, c = weight.shape[:2]
    g = _mat(_UP_G, weight)
    return torch.einsum("ui,vj,kcij->uvkc", g, g, weight).reshape(81, k, c)


def _native(name: str, t: torch.Tensor, *args):
    """The winograd op's native function ``name`` on t (made contiguous) and args, under its own name
    in profiles (pybind calls are not ops)."""
    with torch.profiler.record_function(f"sa::winograd_{name}"):
        return getattr(native_build.load("winograd", "cpu"), name)(t.contiguous(), *args)


def up_input_transform(x: torch.Tensor, scale: torch.Tensor | None = None, grouped: bool = False) -> torch.Tensor:
    """Native ``up_input_transform_ref`` (no gradients); ``grouped``: its planes in ``up_products``' order."""
    order = _UP_ORDER if grouped else None
    return _native("up_input", x, None if scale is None else _scale_arg(scale, x), None, 0, -1, order)


def up_output_transform(m: torch.Tensor, n: int, h: int, w: int, grouped: bool = False) -> torch.Tensor:
    """Native ``up_output_transform_ref`` (no gradients); ``grouped``: m's planes in ``up_products``' order."""
    return _native("up_output", m, n, h, w, None, 0, -1, _UP_ORDER if grouped else None)


def up_filter_planes(taps: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """taps: a weight [K, C, 3, 3]'s taps in planes, [3, 3, K, C] (float32 or float64, CPU; ``up_taps``) →
    ``UpFilters.u``: [36, K, C], the distinct planes of ``up_weight_transform_ref(weight)``, each made natively as
    its sum of taps (within rounding of the tile transform's), into ``out`` if given (a plan's arena: making
    them there per call costs no allocation)."""
    return _native("up_planes", taps, _UP_KEPT_VALUES, out)


def up_taps(weight: torch.Tensor) -> torch.Tensor:
    """weight: [K, C, 3, 3] → its taps in planes, [3, 3, K, C] (a copy)."""
    return weight.permute(2, 3, 0, 1).contiguous()


class UpFilters(NamedTuple):
    """A transposed conv's filters, prepared once (``up_filters``): u: [36, K, C], the distinct planes of
    ``up_weight_transform_ref(weight)`` (``_up_grouping``) for the windows, and the taps that reach the
    output's last row and column, as matrices
    for one product each (oneDNN took 1.5-3x as long with a one-pixel-high image): ``last_row`` [3K, C]
    (row t·K + k: weight[k, :, 2, t]) and ``last_col`` [3K, C] (weight[k, :, t, 2]). Where u is made per
    call instead (``up_filters_into``), u is None and ``taps`` holds the weight's taps in planes,
    [3, 3, K, C] (``up_taps``; last_row is a view of it)."""

    u: torch.Tensor | None
    last_row: torch.Tensor
    last_col: torch.Tensor
    taps: torch.Tensor | None = None


def up_filters(weight: torch.Tensor, native: bool = True, planes: bool = True) -> UpFilters:
    """weight: [K, C, 3, 3] (conv2d's layout) → its ``UpFilters``; ``native``: the native filter
    transform, else the reference; ``planes`` False: without u, its taps kept to make it from per call
    (a quarter of u's bytes)."""
    k, c = weight.shape[:2]
    taps = up_taps(weight)
    row, col = taps[2].reshape(3 * k, c), taps[:, 2].reshape(3 * k, c)
    if not planes:
        return UpFilters(None, row, col, taps)
    u = up_filter_planes(taps) if native else up_weight_transform_ref(weight)[_UP_KEPT_VALUES.to(weight.device)]
    return UpFilters(u, row.clone(), col)  # row no view: taps go


def up_filters_into(filters: UpFilters, scratch: Scratch) -> UpFilters:
    """``filters`` (``up_filters(weight, planes=False)``) with their planes made now, natively, into scratch's
    "filters" ([36, K, C]; bit for bit ``up_filters(weight).u``)."""
    k, c = filters.taps.shape[2:]
    return filters._replace(u=up_filter_planes(filters.taps, scratch("filters", (UP_DISTINCT, k, c),
                                                                     filters.taps.dtype)))


def fill_uncovered_edges(y: torch.Tensor, x: torch.Tensor, filters: UpFilters,
                         scale: torch.Tensor | None = None) -> torch.Tensor:
    """Fills in y (the windows' output, [N, K, 2H+1, 2W+1], zero where no window reached) the last row
    (if H % 4 == 0) and the last column (if W % 4 == 0), from x (times scale: [N, C], if given): what
    the transposed conv puts there comes from x's last row (column) alone. Returns y."""
    h, w = x.shape[2:]
    if h % 4 == 0:
        y[:, :, 2 * h] = _edge(modulated(x[:, :, h - 1], scale), filters.last_row)
    if w % 4 == 0:
        rows = 2 * h if h % 4 == 0 else 2 * h + 1  # the row filled above has its corner already
        y[:, :, :rows, 2 * w] = _edge(modulated(x[:, :, :, w - 1], scale), filters.last_col)[..., :rows]
    return y


def _edge(line: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """The 1-D stride-2 transposed conv z[2j + t] += w_t · line[j] of line: [N, C, L] with taps: [3K, C]
    → [N, K, 2L + 1]."""
    n, _, length = line.shape
    p = torch.matmul(taps, line).reshape(n, 3, -1, length)
    z = line.new_zeros(n, p.shape[2], 2 * length + 1)
    z[..., 0:2 * length:2] = p[:, 0]
    z[..., 1::2] = p[:, 1]
    z[..., 2::2] += p[:, 2]
    return z


def conv_transpose3x3_s2(x: torch.Tensor, weight: torch.Tensor, native: bool | None = None) -> torch.Tensor:
    """``F.conv_transpose2d(x, w_t, stride=2)`` for x: [N, C, H, W] and a 3×3 kernel given as conv2d's
    weight [K, C, 3, 3] (w_t = weight with its channel axes swapped) → [N, K, 2H+1, 2W+1]."""
    if native is None:
        native = native_available(x)
    return conv_transpose3x3_s2_transformed(x, up_filters(weight.to(x.dtype), native), native)


def conv_transpose3x3_s2_transformed(x: torch.Tensor, filters: UpFilters, native: bool | None = None,
                                     scale: torch.Tensor | None = None, scratch: Scratch | None = None,
                                     out: torch.Tensor | None = None, band_rows: int | None = None) -> torch.Tensor:
    """``conv_transpose3x3_s2`` given ``up_filters(weight)`` (so that callers may keep them between calls),
    of x * scale[:, :, None, None] if scale: [N, C] is given; ``scratch``, ``out``, ``band_rows`` as in
    ``conv3x3_transformed``."""
    n, _, h, w = x.shape
    if scratch is not None:
        out = x.new_empty(n, filters.u.shape[1], 2 * h + 1, 2 * w + 1) if out is None else out
        y = _tile_products_into(x, filters.u, ("up_input", "up_output"), up_tiles(h, w), scale, scratch, out,
                                band_rows, up_products, _UP_ORDER)
    elif native_available(x) if native is None else native:
        y = up_output_transform(up_products(filters.u, up_input_transform(x, scale, grouped=True)), n, h, w,
                                grouped=True)
    else:  # the reference: every value's filter plane, in value order
        u = filters.u[_UP_FILTER_INDEX.to(x.device)]
        y = up_output_transform_ref(torch.bmm(u, up_input_transform_ref(x, scale)), n, h, w)
    return fill_uncovered_edges(y, x, filters, scale)


# --------------------------------------------------------------------------- fused, band by band
#
# The same two convolutions in one native pass: a band of tiles at a time is transformed, multiplied
# (the op's own register-blocked products) and transformed back while it is in the cache, and the
# activations' modulation is folded into the input transform. Inference only, float32, CPU.

# Tiles per band (multiples of the op's 24-tile product blocks), fastest alone (``benchmarks.ops --conv``,
# benchmarks/THRESHOLDS.md): wider layers read all their filters once a band, so they take longer bands.
FUSED_BAND = 24
FUSED_WIDE_BAND = 192


def fused_band(channels: int) -> int:
    """The band for a fused conv with ``channels`` input channels."""
    return FUSED_BAND if channels <= 128 else FUSED_WIDE_BAND


def fused_work_floats(up: bool, n: int, c: int, k: int, h: int, w: int, band: int | None = None) -> int:
    """Floats of the band buffers a fused conv (``up``: the stride-2 one) of x: [n, c, h, w] to k channels
    takes with ``band`` (default ``fused_band(c)``)."""
    band = fused_band(c) if band is None else band
    return native_build.load("winograd", "cpu").work_floats(9 if up else 6, n, c, k, h, w, band)


def _fused(name: str, x: torch.Tensor, u: torch.Tensor, scale: torch.Tensor | None, band: int | None,
           scratch: Scratch | None, *more, u_index: torch.Tensor | None = None) -> torch.Tensor:
    """The fused native op ``name`` on x with filters u, ``more`` its arguments after the band; its threads'
    band buffers in ``scratch("tiles_in", ...)`` (they live within the call, like the unfused convs' tiles)
    if given, else new ones; ``u_index``: the plane of u each value multiplies (up_conv)."""
    band = fused_band(x.shape[1]) if band is None else band
    work = None
    if scratch is not None:
        floats = fused_work_floats(name == "up_conv", *x.shape[:2], u.shape[1], *x.shape[2:], band)
        work = scratch("tiles_in", (floats,), torch.float32)
    last = () if u_index is None else (u_index,)
    return _native(name, x, u.contiguous(), None if scale is None else _scale_arg(scale, x), band, *more, work, *last)


def conv3x3_fused(x: torch.Tensor, u: torch.Tensor, scale: torch.Tensor | None = None,
                  band: int | None = None, finish: Finish | None = None, out: torch.Tensor | None = None,
                  scratch: Scratch | None = None) -> torch.Tensor:
    """``conv3x3_transformed(x * scale[:, :, None, None], u)`` in one native pass (no gradients), then
    ``layer_epilogue(y, None, ...)`` with ``finish``'s arguments, if given, before y is stored.
    x: [N, C, H, W] float32; u: [36, K, C]; scale: [N, C] or None → [N, K, H, W] (stored in ``out``,
    contiguous float32 apart from x, if given); band: tiles per band (default ``fused_band(C)``); scratch:
    gives the band buffers (as the unfused convs' tiles; None: new ones each call)."""
    n, _, h, w = x.shape
    return _fused("conv", x, u, scale, band, scratch, *(finish or Finish()).native_args(n, u.shape[1], h, w), out)


def conv3x3_fused_rgb(x: torch.Tensor, u: torch.Tensor, scale: torch.Tensor | None, finish: Finish,
                      rgb: ToRgb, band: int | None = None, out: torch.Tensor | None = None,
                      rgb_out: torch.Tensor | None = None,
                      scratch: Scratch | None = None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``conv3x3_fused(x, u, scale, band, finish)`` = y and ``rgb(y)`` in the same native pass: the toRGB
    sums gather tile by tile as y's channels go by. Returns (y, or None if ``rgb.keep_input`` is False:
    then y is never stored; rgb(y): [N, O, H, W]), stored in ``out`` and ``rgb_out`` if given (``rgb_out``
    may be ``rgb.skip`` itself); scratch as in ``conv3x3_fused``."""
    n, _, h, w = x.shape
    return _fused("conv_rgb", x, u, scale, band, scratch, *finish.native_args(n, u.shape[1], h, w),
                  *rgb.native_args(), out, rgb_out)


def conv_transpose3x3_s2_fused(x: torch.Tensor, filters: UpFilters, scale: torch.Tensor | None = None,
                               band: int | None = None, out: torch.Tensor | None = None,
                               scratch: Scratch | None = None) -> torch.Tensor:
    """``conv_transpose3x3_s2_transformed(x * scale[:, :, None, None], filters)`` in one native pass
    (no gradients). x: [N, C, H, W] float32; filters: ``up_filters(weight)``; scale: [N, C] or None →
    [N, K, 2H + 1, 2W + 1] (stored in ``out``, contiguous float32 apart from x, if given); scratch as in
    ``conv3x3_fused``."""
    return fill_uncovered_edges(_fused("up_conv", x, filters.u, scale, band, scratch, out, u_index=_UP_FILTER_INDEX),
                                x, filters, scale)
