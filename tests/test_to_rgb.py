"""The toRGB layer's per-sample 1×1 conv + bias + clamp: the native op and torch's ops both equal
the definition (a grouped 1×1 conv), and gradients take torch's ops."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylegan_anime.ops import native_build
from stylegan_anime.ops.to_rgb import _torch_to_rgb, to_rgb, to_rgb_ref

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def cases(draw):
    """From 1 pixel to more than one 1024-pixel chunk with a partial vector at its end, 1 to 70
    channels in (past the prefetch distance), 1 to 5 out, bias and clamp present or not."""
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 70)), o=draw(st.integers(1, 5)),
                h=draw(st.integers(1, 40)), w=draw(st.integers(1, 37)), bias=draw(st.booleans()),
                clamp=draw(st.sampled_from([None, 0.0, 0.3, 2.0])), seed=draw(st.integers(0, 2 ** 31 - 1)))


def make_args(case: dict, dtype: torch.dtype) -> tuple:
    gen = torch.Generator().manual_seed(case["seed"])
    n, c, o = case["n"], case["c"], case["o"]
    x = torch.randn(n, c, case["h"], case["w"], generator=gen, dtype=dtype)
    w = torch.randn(n, o, c, generator=gen, dtype=dtype)
    b = torch.randn(o, generator=gen, dtype=dtype) if case["bias"] else None
    return x, w, b, case["clamp"]


@HYPOTHESIS
@given(case=cases(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_native_and_torch_equal_the_definition(native_cpu_ops, case, dtype):
    args = make_args(case, dtype)
    expected = to_rgb_ref(*args)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    with native_build.use_ops("native"):
        torch.testing.assert_close(to_rgb(*args), expected, **tol)
    torch.testing.assert_close(_torch_to_rgb(*args), expected, **tol)


def test_definition_by_hand():
    x = torch.tensor([[[[1.0, -2.0]], [[3.0, 4.0]]]], dtype=torch.float64)  # [1, 2, 1, 2]
    w = torch.tensor([[[2.0, 1.0]]], dtype=torch.float64)  # one output: 2 x0 + x1
    out = to_rgb_ref(x, w, torch.tensor([0.5], dtype=torch.float64), clamp=3.0)
    torch.testing.assert_close(out, torch.tensor([[[[3.0, 0.5]]]], dtype=torch.float64))  # 5.5 clamped, 0.5


def test_gradients_take_torchs_ops(native_cpu_ops):
    x, w, b, _ = make_args(dict(n=2, c=5, o=3, h=3, w=4, bias=True, clamp=None, seed=1), torch.float64)
    x.requires_grad_(True)
    with native_build.use_ops("native"):
        assert torch.autograd.gradcheck(lambda x, w: to_rgb(x, w, b, 1.5), (x, w.requires_grad_(True)))


def test_nan_stays_nan_as_in_torch(native_cpu_ops):
    x = torch.tensor([[[[float("nan"), -1.0, 3.0]]]])
    w = torch.ones(1, 1, 1)
    with native_build.use_ops("native"):
        out = to_rgb(x, w, None, 2.0)
    torch.testing.assert_close(out, _torch_to_rgb(x, w, None, 2.0), equal_nan=True)


def test_bad_arguments_are_rejected_with_a_reason(native_cpu_ops):
    module = native_cpu_ops["to_rgb"]
    x = torch.randn(1, 4, 3, 3)
    with pytest.raises(RuntimeError, match="w must be a contiguous"):
        module.to_rgb(x, torch.randn(1, 3, 5), torch.empty(0), -1.0)
    with pytest.raises(RuntimeError, match="bias must be"):
        module.to_rgb(x, torch.randn(1, 3, 4), torch.randn(2), -1.0)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        module.to_rgb(x.half(), torch.randn(1, 3, 4).half(), torch.empty(0), -1.0)
