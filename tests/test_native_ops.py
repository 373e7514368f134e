"""The native upfirdn2d / bias_act kernels against the reference ops that define them."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stylegan_anime.ops import kernels, native_build

pytestmark = pytest.mark.usefixtures("native_cpu_ops")
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _native_mode():
    """Native mode: a silent fallback to the reference would make every comparison vacuous."""
    with native_build.use_ops("native"):
        yield


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    """Relative agreement, with an absolute floor of rtol × the result's scale for values near 0."""
    scale = expected.abs().max().item() if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-3))


def _seeded(seed: int, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- upfirdn2d


@st.composite
def upfirdn2d_cases(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    up = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    down = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    pad = tuple(draw(st.integers(-4, 10)) for _ in range(4))
    separable = draw(st.booleans())
    fw = draw(st.integers(1, 16))
    fh = fw if separable else draw(st.integers(1, 16))
    case = dict(shape=(n, c, h, w), up=up, down=down, padding=pad, separable=separable, fsize=(fh, fw),
                flip_filter=draw(st.booleans()), gain=draw(st.sampled_from([1.0, 0.5, 4.0, 2.7])),
                seed=draw(st.integers(0, 2 ** 31 - 1)))
    try:
        kernels.upfirdn2d_out_size(h, w, fh, fw, up, down, pad)
    except ValueError:
        assume(False)
    return case


def make_filter(case, dtype=torch.float32) -> torch.Tensor:
    fh, fw = case["fsize"]
    shape = (fw,) if case["separable"] else (fh, fw)
    return _seeded(case["seed"] + 1, *shape, dtype=dtype).abs() + 0.1


def run_upfirdn2d(fn, x, f, case):
    return fn(x, f, up=case["up"], down=case["down"], padding=case["padding"], flip_filter=case["flip_filter"],
              gain=case["gain"])


@HYPOTHESIS
@given(case=upfirdn2d_cases())
def test_upfirdn2d_matches_reference(case):
    x = _seeded(case["seed"], *case["shape"])
    f = make_filter(case)
    expected = run_upfirdn2d(kernels.upfirdn2d_ref, x, f, case)
    actual = run_upfirdn2d(kernels.upfirdn2d, x, f, case)
    assert actual.shape == expected.shape
    assert_close(actual, expected)


@HYPOTHESIS
@given(case=upfirdn2d_cases())
def test_upfirdn2d_gradient_matches_reference(case):
    x = _seeded(case["seed"], *case["shape"]).requires_grad_()
    f = make_filter(case)
    dy = _seeded(case["seed"] + 2, *run_upfirdn2d(kernels.upfirdn2d_ref, x, f, case).shape)
    (expected,) = torch.autograd.grad(run_upfirdn2d(kernels.upfirdn2d_ref, x, f, case), x, dy)
    (actual,) = torch.autograd.grad(run_upfirdn2d(kernels.upfirdn2d, x, f, case), x, dy)
    assert_close(actual, expected)


def test_upfirdn2d_strided_input_and_none_filter():
    """Any input layout (here a transposed view) and f=None (identity tap) agree with the reference."""
    x = _seeded(3, 2, 3, 7, 6).transpose(2, 3)
    for f in (None, kernels.setup_filter([1, 3, 3, 1])):
        args = dict(up=2, down=1, padding=[1, 2, -1, 0])
        assert_close(kernels.upfirdn2d(x, f, **args), kernels.upfirdn2d_ref(x, f, **args))


@pytest.mark.parametrize("flip_filter", [False, True])
@pytest.mark.parametrize("down", [1, 2])
def test_upfirdn2d_unrolled_4x4_interior_matches_reference(flip_filter, down):
    """The compile-time 4×4 path (no upsampling, window inside the input) with an asymmetric filter."""
    x = _seeded(6, 2, 3, 11, 10)
    f = _seeded(7, 4, 4)
    args = dict(down=down, padding=[1, 2, 0, 3], flip_filter=flip_filter, gain=1.5)
    assert_close(kernels.upfirdn2d(x, f, **args), kernels.upfirdn2d_ref(x, f, **args))


@pytest.mark.parametrize("flip_filter", [False, True])
@pytest.mark.parametrize("padding", [[2, 1, 2, 1], [1, 2, 0, 3], [-1, 3, 2, -2], [0, 0, 0, 0]])
def test_upfirdn2d_2x_upsampling_4x4_stretch_matches_reference(flip_filter, padding):
    """The CPU loop for 2x upsampling with a 4x4 filter (the gradient of 2x downsampling), asymmetric taps,
    windows inside, across and outside the input."""
    x = _seeded(8, 2, 3, 9, 12)
    f = _seeded(9, 4, 4)
    args = dict(up=2, padding=padding, flip_filter=flip_filter, gain=2.5)
    assert_close(kernels.upfirdn2d(x, f, **args), kernels.upfirdn2d_ref(x, f, **args))


UPFIRDN2D_GRAD_CASES = [
    dict(up=2, padding=[2, 1, 2, 1]),  # the generator's upsampling
    dict(down=2, padding=1),  # the discriminator's downsampling
    dict(up=(3, 1), down=(1, 2), padding=[-1, 2, 3, 0], flip_filter=True, gain=3.0),
    dict(up=1, down=3, padding=[4, -2, 0, 5], separable=True),
]


@pytest.mark.parametrize("case", UPFIRDN2D_GRAD_CASES)
def test_upfirdn2d_gradcheck_and_gradgradcheck(case):
    case = dict(case)
    separable = case.pop("separable", False)
    f = kernels.setup_filter([1, 3, 3, 1], separable=separable).double()
    x = _seeded(0, 2, 2, 5, 6, dtype=torch.float64).requires_grad_()
    fn = lambda x: kernels.upfirdn2d(x, f, **case)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_upfirdn2d_float64_matches_reference_exactly_enough():
    x = _seeded(5, 1, 2, 6, 6, dtype=torch.float64)
    f = kernels.setup_filter([1, 3, 3, 1]).double()
    torch.testing.assert_close(kernels.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]),
                               kernels.upfirdn2d_ref(x, f, up=2, padding=[2, 1, 2, 1]), rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- bias_act


@st.composite
def bias_act_cases(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    return dict(shape=shape, dim=draw(st.integers(0, ndim - 1)), with_bias=draw(st.booleans()),
                act=draw(st.sampled_from(sorted(kernels.ACTIVATIONS))),
                alpha=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
                gain=draw(st.one_of(st.none(), st.floats(0.1, 3.0))),
                clamp=draw(st.one_of(st.none(), st.floats(0.0, 4.0))),
                seed=draw(st.integers(0, 2 ** 31 - 1)))


def bias_act_inputs(case, dtype=torch.float32):
    x = _seeded(case["seed"], *case["shape"], dtype=dtype) * 3
    b = _seeded(case["seed"] + 1, case["shape"][case["dim"]], dtype=dtype) if case["with_bias"] else None
    kwargs = dict(dim=case["dim"], act=case["act"], alpha=case["alpha"], gain=case["gain"], clamp=case["clamp"])
    return x, b, kwargs


@HYPOTHESIS
@given(case=bias_act_cases())
def test_bias_act_matches_reference(case):
    x, b, kwargs = bias_act_inputs(case)
    assert_close(kernels.bias_act(x, b, **kwargs), kernels.bias_act_ref(x, b, **kwargs))


@HYPOTHESIS
@given(case=bias_act_cases())
def test_bias_act_gradients_match_reference(case):
    x, b, kwargs = bias_act_inputs(case)
    inputs = [x.requires_grad_()] + ([b.requires_grad_()] if b is not None else [])
    dy = _seeded(case["seed"] + 2, *x.shape)
    expected = torch.autograd.grad(kernels.bias_act_ref(x, b, **kwargs), inputs, dy)
    actual = torch.autograd.grad(kernels.bias_act(x, b, **kwargs), inputs, dy)
    assert_close(actual[0], expected[0])
    if b is not None:
        # db sums x.numel() / len(b) terms of dx's size: rounding grows with that, not with db's size.
        terms = x.numel() // b.numel()
        floor = 1e-5 * terms * max(expected[0].abs().max().item(), 1e-3)
        torch.testing.assert_close(actual[1], expected[1], rtol=1e-5, atol=floor)


@pytest.mark.parametrize("act", sorted(kernels.ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_bias_act_gradcheck_and_gradgradcheck(act, clamp):
    # Away from the kinks (relu at 0, the clamp's edges) finite differences are exact enough.
    x = _seeded(1, 3, 4, 2, dtype=torch.float64)
    x = (x + 0.05 * torch.sign(x)).requires_grad_()
    b = torch.tensor([0.31, -0.27, 0.18, -0.44], dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: kernels.bias_act(x, b, dim=1, act=act, alpha=0.3, gain=1.7, clamp=clamp)  # noqa: E731
    z = (x + b.reshape(1, -1, 1)).detach()
    v = kernels.bias_act_ref(z, None, act=act, alpha=0.3, gain=1.7)
    assume_away_from_clamp = clamp is None or ((v.abs() - clamp).abs() > 1e-3).all()
    assert assume_away_from_clamp
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_bias_act_second_order_matches_reference():
    """d/dx of (d bias_act / dx · dy), as R1 regularisation computes it, agrees with the reference."""
    x = _seeded(2, 2, 3, 4).requires_grad_()
    b = _seeded(3, 3).requires_grad_()
    for act in sorted(kernels.ACTIVATIONS):
        grads = []
        for fn in (kernels.bias_act, kernels.bias_act_ref):
            (g,) = torch.autograd.grad(fn(x, b, act=act, clamp=2.0).square().sum(), x, create_graph=True)
            grads.append(torch.autograd.grad(g.sin().sum(), [x, b]))
        for a, e in zip(*grads):
            assert_close(a, e)


def test_bias_act_float64_and_no_bias():
    x = _seeded(4, 2, 5, dtype=torch.float64)
    torch.testing.assert_close(kernels.bias_act(x, None, act="swish", clamp=0.5),
                               kernels.bias_act_ref(x, None, act="swish", clamp=0.5), rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- switching


def test_ref_mode_does_not_touch_the_native_ops(monkeypatch):
    calls = []
    monkeypatch.setattr(kernels.native_ops, "upfirdn2d", lambda *a, **k: calls.append("upfirdn2d"))
    monkeypatch.setattr(kernels.native_ops, "bias_act", lambda *a, **k: calls.append("bias_act"))
    x = _seeded(0, 1, 1, 4, 4)
    with native_build.use_ops("ref"):
        kernels.upfirdn2d(x, None)
        kernels.bias_act(x, None, act="relu")
    assert calls == []
    monkeypatch.setenv(native_build.ENV_MODE, "ref")
    with native_build.use_ops(None):
        kernels.bias_act(x, None, act="relu")
        assert native_build.status("bias_act", "cpu") == ("ref", "STYLEGAN_ANIME_OPS=ref")
    assert calls == []
    kernels.upfirdn2d(x, None)
    kernels.bias_act(x, None, act="relu")
    assert calls == ["upfirdn2d", "bias_act"]


def test_bad_mode_is_rejected(monkeypatch):
    monkeypatch.setenv(native_build.ENV_MODE, "fast")
    with native_build.use_ops(None), pytest.raises(ValueError, match="STYLEGAN_ANIME_OPS"):
        kernels.bias_act(torch.zeros(2), None)


def test_cache_name_depends_on_sources_torch_and_device(monkeypatch):
    cpu = native_build.extension_name("upfirdn2d", "cpu")
    assert cpu != native_build.extension_name("upfirdn2d", "cuda")
    assert cpu != native_build.extension_name("bias_act", "cpu")
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert cpu != native_build.extension_name("upfirdn2d", "cpu")


def test_generator_native_equals_reference(small_G):
    """The whole generator, on the native ops by default, matches the reference path (float32, 1e-5)."""
    z = _seeded(7, 3, small_G.z_dim)
    with torch.no_grad(), native_build.use_ops("ref"):
        expected = small_G(z, psi=0.7)
    with torch.no_grad(), native_build.use_ops(None):
        assert native_build.ops_mode() in ("auto", "native")
        actual = small_G(z, psi=0.7)
    assert math.isfinite(expected.abs().max().item())
    assert_close(actual, expected)


def test_discriminator_r1_penalty_native_equals_reference(small_D):
    """R1 differentiates through D's input gradient: second order through both ops."""
    img = _seeded(8, 2, 3, 32, 32)
    grads = []
    for mode in ("ref", "native"):
        with native_build.use_ops(mode):
            x = img.clone().requires_grad_()
            (g,) = torch.autograd.grad(small_D(x, None).sum(), x, create_graph=True)
            small_D.zero_grad()
            g.square().sum().backward()
            grads.append([p.grad.clone() for p in small_D.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, e in zip(grads[1], grads[0]):
        assert_close(a, e, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_kernels_match_reference(dtype):
    rtol = 1e-5 if dtype == torch.float32 else 2e-3
    x = _seeded(0, 2, 8, 9, 7).cuda().to(dtype)
    b = _seeded(1, 8).cuda().to(dtype)
    f = kernels.setup_filter([1, 3, 3, 1], device="cuda")
    for args in UPFIRDN2D_GRAD_CASES[:3]:
        assert_close(kernels.upfirdn2d(x, f, **args).float(), kernels.upfirdn2d_ref(x.float(), f, **args), rtol)
    for act in sorted(kernels.ACTIVATIONS):
        assert_close(kernels.bias_act(x, b, act=act, clamp=1.0).float(),
                     kernels.bias_act_ref(x.float(), b.float(), act=act, clamp=1.0), rtol)
