"""Winograd F(4x4, 3x3): the references compute a 3x3 'same' convolution, the native
transforms equal the references, and the gradients (first and second order) are right."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylegan_anime.ops import native_build, winograd_op

HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Blocks of 8 tiles side by side wholly inside the image (widths of 37 and more, away from the
# borders) take the native loops' unchecked path; the other tiles take the checked path.
shapes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 13), st.integers(1, 70))


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-30)).item()


@HYPOTHESIS
@given(shape=shapes, k=st.integers(1, 5), seed=st.integers(0, 2 ** 31 - 1))
def test_reference_winograd_is_a_3x3_same_convolution(shape, k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, dtype=torch.float64, generator=gen)
    w = torch.randn(k, shape[1], 3, 3, dtype=torch.float64, generator=gen)
    y = winograd_op.conv3x3(x, w, native=False)
    torch.testing.assert_close(y, F.conv2d(x, w, padding=1), rtol=1e-12, atol=1e-12)


@HYPOTHESIS
@given(shape=shapes, dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2 ** 31 - 1))
def test_native_transforms_equal_the_references(native_cpu_ops, shape, dtype, seed):
    n, c, h, w = shape
    th, tw = winograd_op.tiles(h, w)
    gen = torch.Generator().manual_seed(seed)  # drawn by hypothesis, so a failure replays
    x, v = torch.randn(shape, dtype=dtype, generator=gen), torch.randn(36, c, n * th * tw, dtype=dtype, generator=gen)
    # Filters [K=w, C=h, 3, 3] and their tiles: K·C from 1 to 169 covers whole and partial lane blocks.
    g, u = torch.randn(w, h, 3, 3, dtype=dtype, generator=gen), torch.randn(36, w, h, dtype=dtype, generator=gen)

    def check(actual: torch.Tensor, expected: torch.Tensor) -> None:
        # Transformed values reach a few hundred, where one float32 step is ~3e-5: the float32
        # tolerance is relative to the largest value, as in the project's other float32 tests.
        scale = expected.abs().max().item()
        tol = dict(rtol=1e-5, atol=1e-5 * scale) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(actual, expected, **tol)

    with native_build.use_ops("native"):
        check(winograd_op.input_transform(x), winograd_op.input_transform_ref(x))
        sc = torch.rand(n, c, dtype=dtype, generator=gen) + 0.5  # modulation, per image and channel
        check(winograd_op.input_transform(x, sc), winograd_op.input_transform_ref(x, sc))
        check(winograd_op.input_adjoint(v, n, h, w), winograd_op.input_adjoint_ref(v, n, h, w))
        check(winograd_op.output_transform(v, n, h, w), winograd_op.output_transform_ref(v, n, h, w))
        check(winograd_op.output_adjoint(x), winograd_op.output_adjoint_ref(x))
        check(winograd_op.weight_transform(g), winograd_op.weight_transform_ref(g))
        check(winograd_op.weight_adjoint(u), winograd_op.weight_adjoint_ref(u))


def test_adjoints_are_adjoint():
    """<T x, v> == <x, T* v> for the three transforms (float64, references)."""
    torch.manual_seed(0)
    n, c, h, w = 2, 3, 9, 6
    th, tw = winograd_op.tiles(h, w)
    x, v = torch.randn(n, c, h, w, dtype=torch.float64), torch.randn(36, c, n * th * tw, dtype=torch.float64)
    lhs = (winograd_op.input_transform_ref(x) * v).sum()
    torch.testing.assert_close(lhs, (x * winograd_op.input_adjoint_ref(v, n, h, w)).sum())
    lhs = (winograd_op.output_transform_ref(v, n, h, w) * x).sum()
    torch.testing.assert_close(lhs, (v * winograd_op.output_adjoint_ref(x)).sum())
    g, u = torch.randn(4, c, 3, 3, dtype=torch.float64), torch.randn(36, 4, c, dtype=torch.float64)
    lhs = (winograd_op.weight_transform_ref(g) * u).sum()
    torch.testing.assert_close(lhs, (g * winograd_op.weight_adjoint_ref(u)).sum())


@pytest.mark.parametrize("shape", [(1, 2, 5, 7), (2, 3, 8, 4)])
def test_native_winograd_gradcheck_and_gradgradcheck(native_cpu_ops, shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, shape[1], 3, 3, dtype=torch.float64, requires_grad=True)
    with native_build.use_ops("native"):
        assert torch.autograd.gradcheck(lambda a, b: winograd_op.conv3x3(a, b, native=True), (x, w))
        assert torch.autograd.gradgradcheck(lambda a, b: winograd_op.conv3x3(a, b, native=True), (x, w))


def test_native_float32_matches_the_direct_convolution_and_its_gradients(native_cpu_ops):
    torch.manual_seed(0)
    x = torch.randn(2, 32, 16, 44, requires_grad=True)
    w = (torch.randn(24, 32, 3, 3) / 17).requires_grad_(True)
    g = torch.randn(2, 24, 16, 44)
    with native_build.use_ops("native"):
        y = winograd_op.conv3x3(x, w, native=True)
    dx, dw = torch.autograd.grad(y, (x, w), g)
    x64, w64 = x.detach().double().requires_grad_(True), w.detach().double().requires_grad_(True)
    y_ref = F.conv2d(x64, w64, padding=1)
    dx_ref, dw_ref = torch.autograd.grad(y_ref, (x64, w64), g.double())
    assert _rel_err(y, y_ref) < 1e-4
    assert _rel_err(dx, dx_ref) < 1e-4 and _rel_err(dw, dw_ref) < 1e-4


def test_ref_mode_does_not_use_the_native_transforms():
    with native_build.use_ops("ref"):
        assert not winograd_op.native_available(torch.empty(1, 1, 4, 4))
    assert not winograd_op.native_available(torch.empty(1, 1, 4, 4, dtype=torch.float16))


# --------------------------------------------------------------------------- the stride-2 transposed conv

up_shapes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 20), st.integers(1, 70))


@HYPOTHESIS
@given(shape=up_shapes, k=st.integers(1, 5), seed=st.integers(0, 2 ** 31 - 1))
def test_reference_up_winograd_is_the_stride_2_transposed_conv(shape, k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, dtype=torch.float64, generator=gen)
    weight = torch.randn(k, shape[1], 3, 3, dtype=torch.float64, generator=gen)
    expected = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    torch.testing.assert_close(winograd_op.conv_transpose3x3_s2(x, weight, native=False), expected,
                               rtol=1e-12, atol=1e-12)


@HYPOTHESIS
@given(shape=up_shapes, dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2 ** 31 - 1))
def test_native_up_transforms_equal_the_references(native_cpu_ops, shape, dtype, seed):
    n, c, h, w = shape
    th, tw = winograd_op.up_tiles(h, w)
    gen = torch.Generator().manual_seed(seed)
    x, m = torch.randn(shape, dtype=dtype, generator=gen), torch.randn(81, c, n * th * tw, dtype=dtype, generator=gen)
    g = torch.randn(w, h, 3, 3, dtype=dtype, generator=gen)  # K·C from 1 to 1400: whole and partial lane blocks
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)

    def check(actual, expected):
        torch.testing.assert_close(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * expected.abs().max().item())

    check(winograd_op.up_input_transform(x), winograd_op.up_input_transform_ref(x))
    sc = torch.rand(n, c, dtype=dtype, generator=gen) + 0.5  # modulation, per image and channel
    check(winograd_op.up_input_transform(x, sc), winograd_op.up_input_transform_ref(x, sc))
    check(winograd_op.up_output_transform(m, n, h, w), winograd_op.up_output_transform_ref(m, n, h, w))
    kept = winograd_op._UP_KEPT_VALUES
    check(winograd_op.up_filter_planes(winograd_op.up_taps(g)), winograd_op.up_weight_transform_ref(g)[kept])


@pytest.mark.parametrize("h, w", [(12, 9), (8, 16), (5, 7)])
def test_modulation_in_the_input_transforms_equals_modulated_activations(native_cpu_ops, h, w):
    """The convs of x with scale: [N, C] folded into their native input transforms (and, for the
    transposed conv, into its edge rows and columns) equal the convs of x * scale."""
    gen = torch.Generator().manual_seed(h * w)
    x = torch.randn(2, 5, h, w, dtype=torch.float64, generator=gen)
    g = torch.randn(3, 5, 3, 3, dtype=torch.float64, generator=gen)
    scale = torch.rand(2, 5, dtype=torch.float64, generator=gen) + 0.5
    xs = x * scale[:, :, None, None]
    same = winograd_op.conv3x3_transformed(x, winograd_op.weight_transform(g), native=True, scale=scale)
    torch.testing.assert_close(same, F.conv2d(xs, g, padding=1), rtol=1e-10, atol=1e-10)
    up = winograd_op.conv_transpose3x3_s2_transformed(x, winograd_op.up_filters(g), native=True, scale=scale)
    torch.testing.assert_close(up, F.conv_transpose2d(xs, g.transpose(0, 1), stride=2), rtol=1e-10, atol=1e-10)


def test_up_windows_leave_the_last_row_and_column_of_multiples_of_4_to_the_edge_taps():
    """ceil(H/4) windows down an input of H rows: at H = 32, 8 windows cover output rows 0 .. 63 of 65,
    and the last row comes from the edge taps (the conv itself equals conv_transpose2d: see above)."""
    assert winograd_op.up_tiles(32, 33) == (8, 9) and winograd_op.up_tiles(1, 4) == (1, 1)
    m = torch.randn(81, 2, 8 * 9, dtype=torch.float64)
    y = winograd_op.up_output_transform_ref(m, 1, 32, 33)
    assert y.shape == (1, 2, 65, 67)
    assert torch.count_nonzero(y[:, :, 64]) == 0 and torch.count_nonzero(y[:, :, :64, 66]) > 0


def test_the_kept_stride_2_filters_hold_every_distinct_value_once_and_the_groups_cover_every_plane():
    """The 36 kept rows are the distinct planes of the 81-value filter transform (each value's plane equals
    its row's), the plane order is a permutation, and each product group's planes multiply the rows it
    names: one each in order, or one for all."""
    g = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    full = winograd_op.up_weight_transform_ref(g)
    kept = winograd_op.up_filters(g, native=False).u
    assert kept.shape == (36, 5, 4)
    for value, row in enumerate(winograd_op.UP_FILTER_OF_VALUE):
        assert torch.equal(full[value], kept[row])
    rows = {tuple(full[v].flatten().tolist()) for v in range(81)}
    assert len(rows) == 36  # random weights: no two distinct rows coincide
    assert sorted(winograd_op.UP_PLANE_OF_VALUE) == list(range(81))
    value_at = {p: v for v, p in enumerate(winograd_op.UP_PLANE_OF_VALUE)}
    covered = []
    for first_row, count, first, planes in winograd_op.UP_PRODUCT_SPANS:
        for t in range(planes):
            expected = first_row + (t if count == planes else 0)
            assert count in (1, planes) and winograd_op.UP_FILTER_OF_VALUE[value_at[first + t]] == expected
        covered += range(first, first + planes)
    assert covered == list(range(81))


@pytest.mark.parametrize("h, w", [(12, 9), (1, 2)])
def test_grouped_up_transforms_are_the_value_order_ones_with_planes_moved(native_cpu_ops, h, w):
    """The grouped native transforms put value a in plane UP_PLANE_OF_VALUE[a] and read it from there; the
    grouped products equal the products of every value's own filter."""
    gen = torch.Generator().manual_seed(h + w)
    x = torch.randn(2, 3, h, w, dtype=torch.float64, generator=gen)
    order = torch.tensor(winograd_op.UP_PLANE_OF_VALUE)
    v = winograd_op.up_input_transform(x)
    grouped = winograd_op.up_input_transform(x, grouped=True)
    assert torch.equal(grouped[order], v)
    m = torch.randn_like(v[:, :2])
    assert torch.equal(winograd_op.up_output_transform(m[torch.argsort(order)], 2, h, w, grouped=True),
                       winograd_op.up_output_transform(m, 2, h, w))
    u = winograd_op.up_filters(torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=gen)).u
    every = torch.bmm(u[torch.tensor(winograd_op.UP_FILTER_OF_VALUE)], v)
    torch.testing.assert_close(winograd_op.up_products(u, grouped)[order], every, rtol=1e-12, atol=1e-12)


def test_grouped_up_transforms_refuse_orders_that_are_not_permutations(native_cpu_ops):
    native = winograd_op.native_build.load("winograd", "cpu")
    x = torch.randn(1, 2, 5, 5)
    twice = torch.arange(81)
    twice[3] = 4
    for order, message in [(twice, "permutation"), (torch.arange(80), r"order must be \[81\]")]:
        with pytest.raises(RuntimeError, match=message):
            native.up_input(x, None, None, 0, -1, order)
    u = winograd_op.up_filters(torch.randn(3, 2, 3, 3)).u
    with pytest.raises(RuntimeError, match="names plane 36"):
        native.up_conv(x, u, None, 24, None, None, torch.full((81,), 36))


# --------------------------------------------------------------------------- fused, band by band

# Widths up to 90: rows of 8 windows wholly inside the image (the vector moves) and the rest (lane by
# lane); channel counts that do and do not fill the products' 4-channel blocks; several images per band.
fused_shapes = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 24), st.integers(1, 90))


@HYPOTHESIS
@given(shape=fused_shapes, band=st.sampled_from([24, 48]), scaled=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_fused_convs_equal_the_direct_convolutions(native_cpu_ops, shape, band, scaled, seed):
    n, c, k, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    x, g = torch.randn(n, c, h, w, generator=gen), torch.randn(k, c, 3, 3, generator=gen)
    scale = torch.rand(n, c, generator=gen) + 0.5 if scaled else None
    xs = x.double() * (1 if scale is None else scale.double()[:, :, None, None])
    same = winograd_op.conv3x3_fused(x, winograd_op.weight_transform(g), scale, band)
    assert _rel_err(same, F.conv2d(xs, g.double(), padding=1)) < 2e-5
    up = winograd_op.conv_transpose3x3_s2_fused(x, winograd_op.up_filters(g), scale, band)
    assert _rel_err(up, F.conv_transpose2d(xs, g.double().transpose(0, 1), stride=2)) < 2e-5


@HYPOTHESIS
@given(shape=fused_shapes, noise=st.sampled_from(["none", "shared", "per_image"]), clamp=st.sampled_from([None, 0.3]),
       bias=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_the_fused_conv_finishes_its_tiles_as_the_layer_epilogue_does(native_cpu_ops, shape, noise, clamp, bias, seed):
    """Scale, bias, noise (one plane for all images or one each), leaky ReLU and clamp on each output
    tile before it is stored equal the conv followed by ``layer_epilogue_ref``."""
    from stylegan_anime.ops.layer_epilogue import Finish, layer_epilogue_ref
    n, c, k, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    x, g = torch.randn(n, c, h, w, generator=gen), torch.randn(k, c, 3, 3, generator=gen)
    scale, out_scale = torch.rand(n, c, generator=gen) + 0.5, torch.rand(n, k, generator=gen) + 0.5
    b = torch.randn(k, generator=gen) if bias else None
    nz = {"none": None, "shared": torch.randn(1, 1, h, w, generator=gen),
          "per_image": torch.randn(n, 1, h, w, generator=gen)}[noise]
    finish = Finish(out_scale, b, nz, 0.7, 0.2, clamp)
    y = winograd_op.conv3x3_fused(x, winograd_op.weight_transform(g), scale, 24, finish)
    direct = F.conv2d(x.double() * scale.double()[:, :, None, None], g.double(), padding=1)
    expected = layer_epilogue_ref(direct, None, out_scale.double(), None if b is None else b.double(),
                                  None if nz is None else nz.double(), 0.7, 0.2, clamp)
    # Winograd's rounding scales with the conv's output, which the clamp may cut far below.
    atol = 2e-5 * (direct * out_scale.double()[:, :, None, None]).abs().max().item()
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=atol)


@HYPOTHESIS
@given(shape=fused_shapes, outs=st.integers(1, 4), clamp=st.sampled_from([None, 0.5]), skip=st.booleans(),
       bias=st.booleans(), keep=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_the_fused_conv_computes_its_to_rgb_layer_as_to_rgb_ref_does(native_cpu_ops, shape, outs, clamp, skip, bias,
                                                                      keep, seed):
    """The toRGB sums gathered tile by tile (per-image weights, bias, clamp, then the skip image) equal
    ``to_rgb_ref`` of the conv's output plus the skip image; y comes back as the plain fused conv's
    (bit for bit), or not at all when it is not kept."""
    from stylegan_anime.ops.layer_epilogue import Finish
    from stylegan_anime.ops.to_rgb import ToRgb, to_rgb_ref
    n, c, k, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    x, g = torch.randn(n, c, h, w, generator=gen), torch.randn(k, c, 3, 3, generator=gen)
    scale, u = torch.rand(n, c, generator=gen) + 0.5, winograd_op.weight_transform(g)
    finish = Finish(torch.rand(n, k, generator=gen) + 0.5, torch.randn(k, generator=gen),
                    torch.randn(1, 1, h, w, generator=gen), 0.7, 0.2, None)
    rgb = ToRgb(torch.randn(n, outs, k, generator=gen), torch.randn(outs, generator=gen) if bias else None, clamp,
                torch.randn(n, outs, h, w, generator=gen) if skip else None, keep)
    y, img = winograd_op.conv3x3_fused_rgb(x, u, scale, finish, rgb, band=24)
    alone = winograd_op.conv3x3_fused(x, u, scale, 24, finish)
    assert y is None if not keep else torch.equal(y, alone)
    expected = to_rgb_ref(alone.double(), rgb.weight.double(), None if rgb.bias is None else rgb.bias.double(), clamp)
    if skip:
        expected = expected + rgb.skip.double()
    sums = torch.einsum("nok,nkhw->nohw", rgb.weight.double().abs(), alone.double().abs())
    torch.testing.assert_close(img.double(), expected, rtol=0, atol=1e-6 * (1 + sums.max().item()))


def test_fused_convs_equal_the_unfused_ones_at_generator_sizes(native_cpu_ops):
    """One image and two at a width of 128 tiles, bands of one panel and of eight; the unfused
    convs run the same transforms and products, so the two agree to float32 rounding."""
    torch.manual_seed(3)
    x, g, s = torch.randn(2, 32, 128, 128), torch.randn(64, 32, 3, 3), torch.rand(2, 32)
    xs = x * s[:, :, None, None]
    u, uu = winograd_op.weight_transform(g), winograd_op.up_filters(g)
    for band in (24, 192):
        for sl in (slice(0, 1), slice(0, 2)):
            same = winograd_op.conv3x3_fused(x[sl], u, s[sl], band)
            assert _rel_err(same, winograd_op.conv3x3_transformed(xs[sl], u, native=True)) < 1e-5
            up = winograd_op.conv_transpose3x3_s2_fused(x[sl], uu, s[sl], band)
            assert _rel_err(up, winograd_op.conv_transpose3x3_s2_transformed(xs[sl], uu, native=True)) < 1e-5


@pytest.mark.parametrize("bad, message", [
    (dict(band=20), "multiple of 24"),
    (dict(band=0), "multiple of 24"),
    (dict(u=torch.zeros(36, 4, 5)), "U must be"),
    (dict(u=torch.zeros(81, 4, 3)), "U must be"),
    (dict(scale=torch.ones(2, 3)), "scale must be"),
    (dict(x=torch.zeros(1, 3, 8, 8, dtype=torch.float64)), "float32"),
])
def test_fused_conv_refuses_bad_arguments(native_cpu_ops, bad, message):
    args = dict(x=torch.zeros(1, 3, 8, 8), u=torch.zeros(36, 4, 3), scale=torch.ones(1, 3), band=24) | bad
    with pytest.raises(RuntimeError, match=message):
        winograd_op.conv3x3_fused(args["x"], args["u"], args["scale"], args["band"])


@pytest.mark.parametrize("bad, message", [
    (dict(weight=torch.zeros(1, 3, 5)), "rgb_weight must be float32 of shape \\[1, 3, 4\\]"),
    (dict(weight=torch.zeros(3, 4)), "rgb_weight must be \\[N, O, K\\]"),
    (dict(bias=torch.zeros(4)), "rgb_bias must be"),
    (dict(skip=torch.zeros(1, 3, 4, 8)), "skip must be"),
])
def test_fused_conv_refuses_bad_to_rgb_arguments(native_cpu_ops, bad, message):
    from stylegan_anime.ops.layer_epilogue import Finish
    from stylegan_anime.ops.to_rgb import ToRgb
    rgb = ToRgb(**(dict(weight=torch.zeros(1, 3, 4)) | bad))
    with pytest.raises(RuntimeError, match=message):
        winograd_op.conv3x3_fused_rgb(torch.zeros(1, 3, 8, 8), torch.zeros(36, 4, 3), None, Finish(), rgb)


def test_fused_band_grows_with_the_input_channels():
    assert winograd_op.fused_band(64) == winograd_op.fused_band(128) == winograd_op.FUSED_BAND
    assert winograd_op.fused_band(256) == winograd_op.FUSED_WIDE_BAND
    assert winograd_op.FUSED_BAND % 24 == winograd_op.FUSED_WIDE_BAND % 24 == 0


# --------------------------------------------------------------------------- filters made on the way


@pytest.mark.parametrize("k, c, p", [(16, 8, 8), (32, 24, 40), (48, 16, 64), (16, 512, 16)])
def test_products_from_weights_equal_the_kept_filters_products(native_cpu_ops, k, c, p):
    """M = bmm(weight_transform(g), V), with the filters made block by block in the work buffer: tiles in
    panels of 24, 16 and 8 (40 = 24 + 16), one and several blocks of 16 output channels."""
    native = native_build.load("winograd", "cpu")
    gen = torch.Generator().manual_seed(k + c + p)
    g, v = torch.randn(k, c, 3, 3, generator=gen), torch.randn(36, c, p, generator=gen)
    m = torch.full((36, k, p), float("nan"))
    work = torch.empty(native.filter_work_floats(c, torch.get_num_threads()))
    assert native.products_from_weights(g, v, m, work) is not None
    expected = torch.bmm(winograd_op.weight_transform(g), v)
    torch.testing.assert_close(m, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_the_filters_made_on_the_way_are_the_kept_ones_bit_for_bit(native_cpu_ops):
    """With V[a] = the identity (P = C), each product picks one filter value: M equals U exactly."""
    native = native_build.load("winograd", "cpu")
    g = torch.randn(32, 16, 3, 3, generator=torch.Generator().manual_seed(1))
    m = torch.empty(36, 32, 16)
    native.products_from_weights(g, torch.eye(16).expand(36, 16, 16).contiguous(), m)
    assert torch.equal(m, winograd_op.weight_transform(g))


@pytest.mark.parametrize("k, c, p, work, message", [
    (8, 8, 8, None, "K a multiple of 16"), (16, 4, 8, None, "C and P of 8"), (16, 8, 12, None, "C and P of 8"),
    (16, 8, 8, 10, "work must be"),
])
def test_products_from_weights_refuse_what_they_cannot_take(native_cpu_ops, k, c, p, work, message):
    native = native_build.load("winograd", "cpu")
    with pytest.raises(RuntimeError, match=message):
        native.products_from_weights(torch.zeros(k, c, 3, 3), torch.zeros(36, c, p), torch.zeros(36, k, p),
                                     None if work is None else torch.zeros(work))


def test_a_conv_with_its_filters_made_on_the_way_equals_the_direct_convolution(native_cpu_ops):
    """``conv3x3_from_weights_into`` on a plan-like scratch: the modulated conv's output, its scratch asked
    for in the order ``winograd.scratch_requests`` gives the plan's arena."""
    gen = torch.Generator().manual_seed(3)
    x, w = torch.randn(1, 32, 16, 16, generator=gen), torch.randn(48, 32, 3, 3, generator=gen)
    scale = torch.rand(1, 32, generator=gen) + 0.5
    asked = []

    def scratch(role, shape, dtype):
        asked.append(role)
        return torch.empty(shape, dtype=dtype)

    y = winograd_op.conv3x3_from_weights_into(x, w, scale, scratch, torch.empty(1, 48, 16, 16))
    expected = F.conv2d(x * scale[:, :, None, None], w, padding=1)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=2e-5 * expected.abs().max().item())
    from stylegan_anime.networks import winograd
    assert asked == [role for role, _ in winograd.scratch_requests("f43_unkept", 1, 32, 48, 16, 16)]


@pytest.mark.parametrize("k, c, dtype", [(3, 5, torch.float64), (37, 41, torch.float32), (512, 64, torch.float32)])
def test_stride2_filter_planes_from_taps_equal_the_reference_and_fill_the_buffer_given(native_cpu_ops, k, c, dtype):
    """up_filter_planes (each plane a sum of taps, in chunks of 1024 filters: K·C whole and partial) equals the
    reference transform's 36 distinct values, and writes into the buffer it is given (a plan's arena)."""
    g = torch.randn(k, c, 3, 3, dtype=dtype, generator=torch.Generator().manual_seed(k * c))
    expected = winograd_op.up_weight_transform_ref(g.double())[winograd_op._UP_KEPT_VALUES].to(dtype)
    out = torch.full((36, k, c), float("nan"), dtype=dtype)
    got = winograd_op.up_filter_planes(winograd_op.up_taps(g), out)
    assert got.data_ptr() == out.data_ptr()
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol * expected.abs().max().item())
    assert torch.equal(winograd_op.up_filters(g).u, out)  # the kept filters are the same numbers
    with pytest.raises(RuntimeError, match="out must be a contiguous"):
        winograd_op.up_filter_planes(winograd_op.up_taps(g), torch.empty(36, k + 1, c, dtype=dtype))


def test_stride2_filters_without_planes_keep_their_taps_and_make_the_planes_into_scratch(native_cpu_ops):
    """up_filters(planes=False) keeps the taps in planes (last_row a view of them), and up_filters_into makes
    the planes into the scratch's "filters" role: the same filters as up_filters', field by field."""
    g = torch.randn(16, 24, 3, 3, generator=torch.Generator().manual_seed(5))
    kept, lean = winograd_op.up_filters(g), winograd_op.up_filters(g, planes=False)
    assert lean.u is None and lean.last_row.untyped_storage().data_ptr() == lean.taps.untyped_storage().data_ptr()
    asked = []
    arena = torch.empty(36 * 16 * 24)

    def scratch(role, shape, dtype):
        asked.append(role)
        return arena.view(shape)

    made = winograd_op.up_filters_into(lean, scratch)
    assert asked == ["filters"] and made.u.data_ptr() == arena.data_ptr()
    for name in ("u", "last_row", "last_col"):
        assert torch.equal(getattr(made, name), getattr(kept, name)), name
