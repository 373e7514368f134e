"""The layer epilogue (FIR filter, scale, bias, noise, leaky ReLU, clamp in one pass): the native
op and torch's ops both equal the definition built from the reference kernels."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylegan_anime.ops import kernels, native_build
from stylegan_anime.ops.layer_epilogue import Fir, _torch_epilogue, layer_epilogue, layer_epilogue_ref, separable_taps
from stylegan_anime.networks.fast_modconv import upsample_fir

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def cases(draw):
    """Shapes from 1 pixel to widths of 3 vector blocks and more (whole and partial blocks, pads
    wider than the image), filters of 1 to 16 taps or none, every optional input present or not."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    kh, kw, pad = draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.integers(0, 9))
    filtered = draw(st.booleans())
    if not filtered:
        kh = kw = 1
        pad = 0
    h = draw(st.integers(max(1, kh - 2 * pad), 20))
    w = draw(st.integers(max(1, kw - 2 * pad), 40))
    return dict(n=n, c=c, h=h, w=w, kh=kh, kw=kw, pad=pad, filtered=filtered,
                scale=draw(st.booleans()), bias=draw(st.booleans()), noise=draw(st.sampled_from([None, 1, n])),
                noise_gain=draw(st.floats(-2, 2)), alpha=draw(st.sampled_from([0.2, 1.0, 0.0, 0.5])),
                clamp=draw(st.sampled_from([None, 0.0, 0.3, 2.0])), seed=draw(st.integers(0, 2 ** 31 - 1)))


def make_args(case: dict, dtype: torch.dtype) -> tuple[torch.Tensor, dict]:
    gen = torch.Generator().manual_seed(case["seed"])  # drawn by hypothesis, so a failure replays

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    n, c, h, w = case["n"], case["c"], case["h"], case["w"]
    fir = Fir(randn(case["kh"]), randn(case["kw"]), case["pad"]) if case["filtered"] else None
    ho, wo = fir.out_size(h, w) if fir is not None else (h, w)
    return randn(n, c, h, w), dict(
        fir=fir, scale=randn(n, c) if case["scale"] else None, bias=randn(c) if case["bias"] else None,
        noise=randn(case["noise"], 1, ho, wo) if case["noise"] else None, noise_gain=case["noise_gain"],
        alpha=case["alpha"], clamp=case["clamp"])


@HYPOTHESIS
@given(case=cases(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_native_and_torch_epilogues_equal_the_definition(native_cpu_ops, case, dtype):
    y, args = make_args(case, dtype)
    expected = layer_epilogue_ref(y, **args)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    with native_build.use_ops("native"):
        torch.testing.assert_close(layer_epilogue(y.clone(), **args), expected, **tol)
    torch.testing.assert_close(_torch_epilogue(y.clone(), **args), expected, **tol)


def test_definition_is_correlation_then_bias_act():
    """A hand-computed value: the taps correlate (no flip), the scale applies before the bias."""
    y = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    y[0, 0, 1, 2] = 1.0
    fir = Fir(torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, 5.0], dtype=torch.float64), 0)
    out = layer_epilogue_ref(y, fir, scale=torch.tensor([[2.0]], dtype=torch.float64),
                             bias=torch.tensor([-11.0], dtype=torch.float64), alpha=0.5)
    # out[i, j] = lrelu(2 * sum_ab th[a] tw[b] y[i + a, j + b] - 11): y[1, 2] meets (i, j) = (0, 1) with
    # th[1] tw[1] = 10 and (1, 1) with th[0] tw[1] = 5.
    expected = torch.tensor([[[[-5.5, 9.0], [-5.5, -0.5]]]], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_without_a_filter_the_result_is_y_itself(native_cpu_ops):
    y = torch.randn(2, 3, 5, 17)
    expected = layer_epilogue_ref(y, bias=torch.ones(3), alpha=0.2, clamp=0.5)
    with native_build.use_ops("native"):
        out = layer_epilogue(y, bias=torch.ones(3), alpha=0.2, clamp=0.5)
    assert out.data_ptr() == y.data_ptr()
    torch.testing.assert_close(out, expected)


def test_nan_stays_nan_as_in_torch(native_cpu_ops):
    y = torch.tensor([[[[float("nan"), -1.0, 3.0]]]])
    with native_build.use_ops("native"):
        out = layer_epilogue(y.clone(), alpha=0.2, clamp=2.0)
    torch.testing.assert_close(out, _torch_epilogue(y.clone(), None, None, None, None, 0.0, 0.2, 2.0), equal_nan=True)


def test_long_filters_take_torchs_ops(native_cpu_ops):
    y = torch.randn(1, 2, 30, 30, dtype=torch.float64)
    fir = Fir(torch.randn(17, dtype=torch.float64), torch.randn(3, dtype=torch.float64), 8)
    with native_build.use_ops("native"):
        torch.testing.assert_close(layer_epilogue(y, fir), layer_epilogue_ref(y, fir))


def test_bad_arguments_are_rejected_with_a_reason(native_cpu_ops):
    module = native_cpu_ops["layer_epilogue"]
    y, one, empty = torch.randn(1, 2, 4, 4), torch.ones(1), torch.empty(0)
    with pytest.raises(RuntimeError, match="taps must number 1 to 16"):
        module.layer_epilogue(y, torch.ones(17), one, 8, empty, empty, empty, 0.0, 0.2, -1.0, torch.empty(1, 2, 4, 4))
    with pytest.raises(RuntimeError, match="bias must be"):
        module.layer_epilogue(y, one, one, 0, empty, torch.ones(3), empty, 0.0, 0.2, -1.0, y)
    with pytest.raises(RuntimeError, match="out may alias x only without a filter"):
        module.layer_epilogue(y, torch.ones(3), torch.ones(3), 1, empty, empty, empty, 0.0, 0.2, -1.0, y)


def test_separable_taps():
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = kernels.setup_filter(k)  # the networks' 2-D blur
    fv, fh = separable_taps(f)
    torch.testing.assert_close(torch.outer(fv, fh), f)
    assert separable_taps(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) is None


@pytest.mark.parametrize("f", [[1, 3, 3, 1], [1, 2, 1], [1, 1]])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_upsample_fir_is_the_resampling_convs_filter(f, padding):
    """conv_transpose2d then the Fir equals upfirdn2d's upsampling (zero insertion, padding, filter)
    of the transposed conv's output, as conv2d_resample computes it."""
    f2d = kernels.setup_filter(f)
    fir = upsample_fir(f2d, 2, padding, (3, 3))
    assert upsample_fir(f2d, 2, padding, (3, 1)) is None  # a kernel that is not square: the general path
    th = f2d.shape[0]
    p0, p1 = padding + (th + 1) // 2 - 2, padding + (th - 2) // 2 - 1
    if p0 != p1 or p0 < 0:  # padding one Fir cannot express: the layers take the general path
        assert fir is None
        return
    assert fir is not None and fir.pad == p0
    y = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    expected = kernels.upfirdn2d_ref(y, f2d.double(), padding=(p0, p1, p0, p1), gain=4)
    torch.testing.assert_close(layer_epilogue_ref(y, fir, alpha=1.0), expected)
