"""The native ops check themselves against their references, once per build and device.

The CUDA kernels are compiled in CI but have never run there (no GPU), and a kernel that is wrong
on a user's GPU gives wrong images or training silently. So the first time a process accepts a
native module (``native_build.load`` calls ``vetted``), the op runs on small random inputs next to
its plain-PyTorch reference: the forward and, for the ops training differentiates (upfirdn2d,
bias_act, winograd), the first and second derivatives, in float32 (and float16 on CUDA). The
reference runs in float64 on the same (rounded) inputs, so the error measured is the kernel's own.
A mismatch beyond ``TOLERANCE`` turns the module down: ``load`` then warns once, naming the op, the
device and the error, and the op runs on its reference.

The verdict is written beside the build (``<build dir>/self_check.json``, keyed by the device's
name, e.g. the GPU model, and the library's hash), so later processes read it instead of checking
again, and a rebuilt library is checked afresh.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from . import native_build

RECORD_FILE = "self_check.json"
# Max error relative to the reference's largest magnitude. Float32 kernels round at about 1e-6 of
# that (Winograd's transforms 1e-5); float16 stores results with 11 bits (5e-4).
TOLERANCE = {torch.float16: 1e-2, torch.float32: 1e-4, torch.float64: 1e-9}
# Dtypes checked per device kind: what the networks run in (float16 only on CUDA).
CHECK_DTYPES = {"cpu": (torch.float32,), "cuda": (torch.float32, torch.float16)}
ORDERS = ("forward", "1st derivative", "2nd derivative")


@dataclass(frozen=True)
class Comparison:
    """One quantity of one case: native vs reference, max |error| / max |reference|."""

    case: str
    quantity: str  # one of ORDERS
    dtype: torch.dtype
    error: float
    native_s: float = 0.0  # the case's times (on its forward comparison)
    ref_s: float = 0.0

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.dtype]

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance  # NaN fails too

    def describe(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return (f"{self.quantity} in {dtype} ({self.case}): max error {self.error:.1e} "
                f"(tolerance {self.tolerance:.0e})")


@dataclass
class Report:
    """The self-check of one op on one device. ``crash``: why the native op raised, if it did (a
    failure); ``inconclusive``: why a reference raised, if one did (the check's fault, not the kernel's)."""

    op: str
    device: str
    comparisons: list[Comparison]
    seconds: float
    crash: str = ""
    inconclusive: str = ""

    @property
    def ok(self) -> bool:
        return not self.crash and not self.inconclusive and all(c.ok for c in self.comparisons)

    def worst(self, quantity: str | None = None, dtype: torch.dtype | None = None) -> Comparison | None:
        """Among those selected: the first beyond its tolerance, else the one nearest to it."""
        chosen = [c for c in self.comparisons if quantity in (None, c.quantity) and dtype in (None, c.dtype)]
        return max(chosen, key=lambda c: (not c.ok, c.error / c.tolerance if c.ok else 0.0), default=None)

    @property
    def error(self) -> str:
        """One line: what went wrong ('' if nothing)."""
        if self.crash or self.inconclusive:
            return self.crash or self.inconclusive
        bad = self.worst()
        return "" if bad is None or bad.ok else bad.describe()


# --------------------------------------------------------------------------- measuring


def relative_error(actual: torch.Tensor | None, expected: torch.Tensor | None) -> float:
    """max |actual - expected| / max |expected| (a missing gradient counts as zeros)."""
    if actual is None or expected is None:
        if actual is None and expected is None:
            return 0.0
        actual = torch.zeros_like(expected) if actual is None else actual
        expected = torch.zeros_like(actual) if expected is None else expected
    a, e = actual.detach().double(), expected.detach().double()
    if a.shape != e.shape:
        return float("inf")
    if not e.numel():
        return 0.0
    scale = max(e.abs().max().item(), 1e-6)
    return (a - e).abs().max().item() / scale


def _randn(seed: int, shape: Sequence[int], like: torch.Tensor | None = None, device=None, dtype=None) -> torch.Tensor:
    """Normal samples from a private generator: the check must not move the user's global RNG
    (their seeds would then give other images)."""
    t = torch.randn(list(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return t.to(device=like.device if like is not None else device, dtype=like.dtype if like is not None else dtype)


def _run(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
         order: int) -> list[list[torch.Tensor | None]]:
    """[[y], first derivatives, second derivatives] of fn at inputs, up to ``order``.

    First: the vector-Jacobian product with a fixed random dy. Second: the gradient of
    <first, v> (v fixed random) with respect to the inputs and dy: the derivative of the backward
    pass itself, which R1 and path-length regularisation run.
    """
    xs = [t.detach().requires_grad_(order > 0) for t in inputs]
    y = fn(*xs)
    out: list[list[torch.Tensor | None]] = [[y.detach()]]
    if order >= 1:
        dy = _randn(101, y.shape, y).requires_grad_(order > 1)
        grads = torch.autograd.grad(y, xs, dy, create_graph=order > 1, allow_unused=True)
        out.append([None if g is None else g.detach() for g in grads])
        if order >= 2:
            terms = [(g * _randn(102 + i, g.shape, g)).sum() for i, g in enumerate(grads)
                     if g is not None and g.requires_grad]
            second = torch.autograd.grad(sum(terms), [*xs, dy], allow_unused=True) if terms else [None] * (len(xs) + 1)
            out.append(list(second))
    return out


class ReferenceFailed(Exception):
    """A reference raised: our check code is at fault, and it says nothing about the kernel."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _sync(t: torch.Tensor) -> None:
    """Wait for the GPU (its kernels run asynchronously), so that times mean something."""
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


def compare(case: str, native: Callable[..., torch.Tensor], reference: Callable[..., torch.Tensor],
            inputs: Sequence[torch.Tensor], order: int = 0) -> list[Comparison]:
    """Run ``native`` on inputs (one dtype) and ``reference`` on the same values in float64; one
    Comparison per derivative order up to ``order``."""
    dtype = inputs[0].dtype
    start = time.perf_counter()
    got = _run(native, inputs, order)
    _sync(inputs[0])
    middle = time.perf_counter()
    try:
        want = _run(reference, [t.detach().double() for t in inputs], order)
    except Exception as e:  # noqa: BLE001
        raise ReferenceFailed(f"the reference for {case!r} raised {_first_line(e)}") from e
    _sync(inputs[0])
    times = (middle - start, time.perf_counter() - middle)
    return [Comparison(case, ORDERS[i], dtype, max(relative_error(a, e) for a, e in zip(got[i], want[i])),
                       *(times if i == 0 else (0.0, 0.0))) for i in range(order + 1)]


# --------------------------------------------------------------------------- the cases, op by op


def _away_from(z: torch.Tensor, kinks: Sequence[float], margin: float = 0.02) -> torch.Tensor:
    """z with values within ``margin`` of a kink pushed 2·margin away: at a kink (an activation's
    corner, a clamp's edge) a derivative jumps, and float32 vs float64 sums may fall either side."""
    for k in kinks:
        near = (z - k).abs() < margin
        z = torch.where(near, z + torch.where(z >= k, 2 * margin, -2 * margin), z)
    return z


def check_upfirdn2d(device: torch.device, dtype: torch.dtype) -> list[Comparison]:
    """Upsampling (as the synthesis layers), downsampling with a 2-D filter (as the discriminator's),
    and a flipped blur; derivatives to second order."""
    from . import kernels, native_ops

    def native(f, up, down, pad, flip, gain):
        up, down, pad = kernels.parse_scaling(up), kernels.parse_scaling(down), kernels.parse_padding(pad)
        return lambda x: native_ops.upfirdn2d(x, native_ops.filter_2d(f, x), up, down, pad, flip, gain)

    def reference(f, up, down, pad, flip, gain):  # the taps are made on the CPU: x's device and dtype
        return lambda x: kernels.upfirdn2d_ref(x, f.to(x), up, down, pad, flip, gain)

    blur = kernels.setup_filter([1, 3, 3, 1], separable=True)
    taps = _randn(7, (3, 4), device="cpu", dtype=torch.float32).abs() + 0.1
    lopsided = kernels.setup_filter([1, 2, 4, 1], separable=True)  # flipping it matters
    cases = {"up 2, separable": (blur, 2, 1, [2, 1, 2, 1], False, 4.0),
             "down 2, 2-D filter": (taps, 1, 2, [1, 2, 0, 1], False, 1.0),
             "flipped, separable": (lopsided, 1, 1, [1, 2, 2, 1], True, 0.5)}
    out = []
    for i, (name, args) in enumerate(cases.items()):
        x = _randn(10 + i, (2, 3, 7, 6), device=device, dtype=dtype)
        out += compare(name, native(*args), reference(*args), [x], order=2)
    return out


def check_bias_act(device: torch.device, dtype: torch.dtype) -> list[Comparison]:
    """Leaky ReLU with clamp on [N, C, H, W] (the conv layers) and swish, whose second derivative
    is not zero, on [N, C] (a fully connected layer); derivatives to second order."""
    from . import kernels, native_ops

    out = []
    cases = {"lrelu, clamp": ((2, 5, 4, 3), "lrelu", 1.0), "swish": ((3, 6), "swish", None)}
    for i, (name, (shape, act, clamp)) in enumerate(cases.items()):
        alpha, gain, clamp_arg = kernels.resolve_bias_act_args(act, None, None, clamp)
        kinks = [0.0] + ([clamp / gain, -clamp / (gain * alpha)] if clamp is not None else [])
        b = _randn(20 + i, shape[1:2], device=device, dtype=torch.float64)
        z = _away_from(_randn(30 + i, shape, device=device, dtype=torch.float64), kinks)
        dims = [-1 if d == 1 else 1 for d in range(len(shape))]
        x = (z - b.reshape(dims)).to(dtype)
        native = lambda x, b, act=act, a=alpha, g=gain, c=clamp_arg: native_ops.bias_act(x, b, 1, act, a, g, c)
        reference = lambda x, b, act=act, c=clamp: kernels.bias_act_ref(x, b, 1, act, clamp=c)
        out += compare(name, native, reference, [x, b.to(dtype)], order=2)
    return out


def check_winograd(device: torch.device, dtype: torch.dtype) -> list[Comparison]:
    """The differentiable 3x3 conv to second order (every transform and adjoint), the modulated one,
    the stride-2 transposed conv, and the fused convs with their epilogue and toRGB."""
    from . import winograd_op as wo
    from .layer_epilogue import Finish, layer_epilogue_ref
    from .to_rgb import ToRgb, to_rgb_ref

    x, w = _randn(40, (2, 5, 9, 7), device=device, dtype=dtype), _randn(41, (4, 5, 3, 3), device=device, dtype=dtype)
    out = compare("3x3 conv", lambda x, w: wo.conv3x3(x, w, native=True),
                  lambda x, w: F.conv2d(x, w, padding=1), [x, w], order=2)
    s = _randn(42, (2, 5), device=device, dtype=dtype).abs() + 0.5
    modulated = lambda x, w, s: F.conv2d(x * s[:, :, None, None], w, padding=1)
    out += compare("modulated", lambda x, w, s: wo.conv3x3_transformed(x, wo.weight_transform(w), True, s),
                   modulated, [x, w, s])
    x8 = _randn(43, (2, 5, 8, 6), device=device, dtype=dtype)  # 8 rows: the edge taps fill the last one
    transposed = lambda x, w, s: F.conv_transpose2d(x * s[:, :, None, None], w.transpose(0, 1), stride=2)
    out += compare("stride-2 transposed", lambda x, w, s: wo.conv_transpose3x3_s2_transformed(
        x, wo.up_filters(w), True, s), transposed, [x8, w, s])
    if dtype != torch.float32:  # the fused convs are float32 only
        return out
    out += compare("fused stride-2 transposed", lambda x, w, s: wo.conv_transpose3x3_s2_fused(x, wo.up_filters(w), s),
                   transposed, [x8, w, s])
    o, b, noise = _randn(44, (2, 4), x).abs() + 0.5, _randn(45, (4,), x), _randn(46, (1, 1, 9, 7), x)
    rgb_w, rgb_b, skip = _randn(47, (2, 3, 4), x), _randn(48, (3,), x), _randn(49, (2, 3, 9, 7), x)

    def fused(x, w, s, o, b, noise, rgb_w, rgb_b, skip):
        finish = Finish(o, b, noise, 0.7, 0.2, None)
        y, img = wo.conv3x3_fused_rgb(x, wo.weight_transform(w), s, finish, ToRgb(rgb_w, rgb_b, None, skip, True))
        return torch.cat([y.flatten(), img.flatten()])

    def fused_ref(x, w, s, o, b, noise, rgb_w, rgb_b, skip):
        y = layer_epilogue_ref(modulated(x, w, s), None, o, b, noise, 0.7, 0.2, None)
        return torch.cat([y.flatten(), (to_rgb_ref(y, rgb_w, rgb_b) + skip).flatten()])

    return out + compare("fused, epilogue and toRGB", fused, fused_ref, [x, w, s, o, b, noise, rgb_w, rgb_b, skip])


def check_layer_epilogue(device: torch.device, dtype: torch.dtype) -> list[Comparison]:
    """After an upsampling conv (the 4-tap blur, scale, noise, bias, clamp) and after a plain one."""
    from .layer_epilogue import Fir, layer_epilogue, layer_epilogue_ref

    blur = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
    fir = Fir(blur.to(device), blur.to(device), 1)
    y, s = _randn(50, (2, 3, 9, 8), device=device, dtype=dtype), _randn(51, (2, 3), device=device, dtype=dtype)
    b, noise = _randn(52, (3,), device=device, dtype=dtype), _randn(53, (1, 1, 8, 7), device=device, dtype=dtype)
    out = compare("blur", lambda y, s, b, n: layer_epilogue(y, fir, s, b, n, 0.5, 0.2, 0.8),
                  lambda y, s, b, n: layer_epilogue_ref(y, fir, s, b, n, 0.5, 0.2, 0.8), [y, s, b, noise])
    noise = _randn(54, (2, 1, 9, 8), y)
    # Without a filter the op overwrites its input: give it a copy.
    return out + compare("no filter", lambda y, s, b, n: layer_epilogue(y.clone(), None, s, b, n, 0.5, 0.2, None),
                         lambda y, s, b, n: layer_epilogue_ref(y, None, s, b, n, 0.5, 0.2, None), [y, s, b, noise])


def check_to_rgb(device: torch.device, dtype: torch.dtype) -> list[Comparison]:
    """Per-sample weights to 3 channels, with a bias and a clamp."""
    from .to_rgb import to_rgb, to_rgb_ref

    x, w = _randn(60, (2, 6, 5, 7), device=device, dtype=dtype), _randn(61, (2, 3, 6), device=device, dtype=dtype)
    b = _randn(62, (3,), device=device, dtype=dtype)
    return compare("bias, clamp", lambda x, w, b: to_rgb(x, w, b, 1.5), lambda x, w, b: to_rgb_ref(x, w, b, 1.5),
                   [x, w, b])


CHECKS: dict[str, Callable[[torch.device, torch.dtype], list[Comparison]]] = {
    "upfirdn2d": check_upfirdn2d, "bias_act": check_bias_act, "winograd": check_winograd,
    "layer_epilogue": check_layer_epilogue, "to_rgb": check_to_rgb}


# --------------------------------------------------------------------------- running one op's check


def device_name(device_kind: str) -> str:
    """What the verdict is remembered under: the GPU model and compute capability, or the CPU model."""
    if device_kind == "cuda":
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda: {props.name} (sm_{props.major}{props.minor})"
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"cpu: {model or platform.processor() or platform.machine()}"


@contextlib.contextmanager
def _candidate(result: native_build.BuildResult) -> Iterator[None]:
    """Let the op's dispatchers find the module under test (they call ``native_build.load``), and
    run with gradients on and autocast off, whatever the caller had (the first load can happen
    under ``torch.inference_mode()`` or autocast)."""
    key = (result.op, result.device_kind)
    results = native_build._State.results
    previous = results.get(key)
    results[key] = result
    try:
        with torch.inference_mode(False), torch.enable_grad(), torch.autocast(result.device_kind, enabled=False):
            yield
    finally:
        if previous is None:
            results.pop(key, None)
        else:
            results[key] = previous


def run_check(result: native_build.BuildResult, dtypes: Sequence[torch.dtype] | None = None) -> Report:
    """Compare ``result.module`` (an op's native module) with the reference on the current device
    of its kind; never raises (an exception from the native op is a failed check)."""
    device = torch.device(result.device_kind, torch.cuda.current_device()) if result.device_kind == "cuda" \
        else torch.device("cpu")
    start = time.perf_counter()
    comparisons: list[Comparison] = []
    crash = inconclusive = ""
    try:
        with _candidate(result):
            for dtype in dtypes or CHECK_DTYPES[result.device_kind]:
                comparisons += CHECKS[result.op](device, dtype)
    except ReferenceFailed as e:
        inconclusive = str(e)
    except Exception as e:  # noqa: BLE001 - a kernel that raises on valid inputs has failed its check
        crash = f"the check raised {_first_line(e)}"
    return Report(result.op, device_name(result.device_kind), comparisons, time.perf_counter() - start, crash,
                  inconclusive)


# --------------------------------------------------------------------------- remembering the verdict


def library_hash(module) -> str:
    """sha256 of the module's shared library (a rebuild in place changes it), '' if it has no file."""
    path = getattr(module, "__file__", None)
    if not path or not Path(path).is_file():
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def record_path(result: native_build.BuildResult) -> Path | None:
    """``self_check.json`` in the op's build dir (else beside its library), or None if neither is known."""
    if result.build_dir is not None:
        return Path(result.build_dir) / RECORD_FILE
    path = getattr(result.module, "__file__", None)
    return Path(path).parent / RECORD_FILE if path else None


def read_records(path: Path | None) -> dict:
    """The verdicts in a record file, by device name ({} if it is missing or unreadable)."""
    if path is None:
        return {}
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def recall(result: native_build.BuildResult, device: str) -> dict | None:
    """The remembered verdict for this build on this device, or None if there is none (or it was
    for another library)."""
    record = read_records(record_path(result)).get(device)
    if not isinstance(record, dict) or record.get("library") != library_hash(result.module):
        return None
    return record


def remember(result: native_build.BuildResult, report: Report) -> None:
    """Write the verdict beside the build; a cache we cannot write to is checked again next time."""
    from ..io.atomic import atomic_path

    path = record_path(result)
    if path is None:
        return
    records = read_records(path)
    records[report.device] = {"library": library_hash(result.module), "ok": report.ok, "error": report.error,
                              "seconds": round(report.seconds, 3), "torch": torch.__version__,
                              "checked": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with contextlib.suppress(OSError):
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(records, indent=1) + "\n")


# --------------------------------------------------------------------------- the hook


def vetted(result: native_build.BuildResult) -> native_build.BuildResult:
    """``native_build.load``'s hook where it accepts a built module: the result as it is if the
    module passes its self-check on this device (checked now, or remembered), else a result
    without a module whose reason says which check failed, so that the reference runs."""
    if result.module is None or result.op not in CHECKS:
        return result
    device = device_name(result.device_kind)
    record = recall(result, device)
    if record is None:
        report = run_check(result)
        if report.inconclusive:  # not the kernel's fault: use it unchecked, and try again next time
            warnings.warn(f"stylegan_anime: could not self-check the native {result.op} on {device}, using it "
                          f"unchecked ({report.inconclusive})", RuntimeWarning, stacklevel=5)
            return result
        remember(result, report)
        record = {"ok": report.ok, "error": report.error}
    if record.get("ok"):
        return result
    return dataclasses.replace(result, module=None,
                               reason=f"it failed its self-check on {device}: {record.get('error') or 'unknown'}")
