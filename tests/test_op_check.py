"""The native ops check themselves against their references: a wrong kernel is caught, warned about
once and replaced by the reference; the verdict is remembered beside the build per device, and
checked again when the library changes.

Most cases serve the real CPU modules through ``native_build.build`` from build dirs in tmp_path
(so that verdicts are written there), some with one function made slightly wrong."""
from __future__ import annotations

import json
import shutil
import types
import warnings
from pathlib import Path

import pytest
import torch

from stylegan_anime import cli
from stylegan_anime.ops import kernels, layer_epilogue, native_build, op_check, to_rgb, winograd_op
from stylegan_anime.diagnostics import network_check

from test_native_build import run_python

pytestmark = pytest.mark.usefixtures("native_cpu_ops")

TRAINING_OPS = ("upfirdn2d", "bias_act", "winograd")


class Impostor(types.ModuleType):
    """A native module with one function replaced (or none); everything else is the real module's.
    Its library is a file of our own, whose bytes stand for the build."""

    def __init__(self, real: types.ModuleType, library: Path, name: str | None = None, fn=None):
        super().__init__(real.__name__)
        self.__file__ = str(library)
        self._real = real
        if name is not None:
            setattr(self, name, fn)

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def served(monkeypatch, tmp_path, native_cpu_ops):
    """``served(op, name=None, fn=None)``: from now on ``native_build.build(op, "cpu")`` returns the real
    module (with ``name`` replaced by ``fn``) from tmp_path/op; the other ops are served unchanged. No
    op is loaded in this process yet, and the ops mode is "auto"."""
    monkeypatch.setattr(native_build._State, "results", {})
    monkeypatch.setattr(native_build.OPS_MODE, "_override", [None])
    monkeypatch.delenv(native_build.ENV_MODE, raising=False)
    modules: dict[str, types.ModuleType] = {}

    def module_for(op: str) -> types.ModuleType:
        if op not in modules:
            library = tmp_path / op / "library.so"
            library.parent.mkdir(exist_ok=True)
            library.write_bytes(b"build 1")
            modules[op] = Impostor(native_cpu_ops[op], library)
        return modules[op]

    def fake_build(op, device_kind="cpu", verbose=False, check_only=False):
        assert device_kind == "cpu"
        return native_build.BuildResult(op, device_kind, module_for(op), "loaded from cache", tmp_path / op)

    def serve(op: str, name: str | None = None, fn=None) -> Path:
        library = module_for(op).__file__
        modules[op] = Impostor(native_cpu_ops[op], Path(library), name, fn)
        return tmp_path / op

    monkeypatch.setattr(native_build, "build", fake_build)
    return serve


@pytest.fixture
def check_runs(monkeypatch) -> list[str]:
    """The ops whose self-check runs from now on, in order."""
    runs: list[str] = []
    real = op_check.run_check

    def counting(result, *args, **kwargs):
        runs.append(result.op)
        return real(result, *args, **kwargs)

    monkeypatch.setattr(op_check, "run_check", counting)
    return runs


def forget_loaded_ops(monkeypatch) -> None:
    """As a new process would start: nothing loaded, nothing checked in memory."""
    monkeypatch.setattr(native_build._State, "results", {})


def verdicts(build_dir: Path) -> dict:
    return json.loads((build_dir / op_check.RECORD_FILE).read_text())


# --------------------------------------------------------------------------- the real kernels pass


@pytest.mark.parametrize("op", native_build.OPS)
def test_each_native_op_matches_its_reference_on_the_cpu(op):
    report = op_check.run_check(native_build.build(op, "cpu"))
    assert report.ok, report.error
    quantities = {c.quantity for c in report.comparisons}
    assert quantities == (set(op_check.ORDERS) if op in TRAINING_OPS else {"forward"})
    assert all(c.dtype == torch.float32 and c.error < 1e-5 for c in report.comparisons)


@pytest.mark.parametrize("op", native_build.OPS)
def test_the_checks_run_in_other_dtypes(op):
    """What CUDA adds is float16, which the CPU kernels lack; float64 takes the same casts here."""
    report = op_check.run_check(native_build.build(op, "cpu"), dtypes=[torch.float64])
    assert report.ok, report.error
    assert report.comparisons and {c.dtype for c in report.comparisons} == {torch.float64}
    assert all(c.error < 1e-12 for c in report.comparisons)


def _half_upfirdn2d(error: float = 0.0):
    """A float16 upfirdn2d as a CUDA kernel computes it (float32 arithmetic, float16 results), off by
    ``error`` relative: the CPU kernels have no float16."""
    def upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain):
        y = kernels.upfirdn2d_ref(x.float(), f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip, gain)
        return (y * (1 + error)).to(x.dtype)
    return types.SimpleNamespace(upfirdn2d=upfirdn2d)


def test_the_float16_tolerance_passes_float16_rounding_and_not_more():
    for error, ok in [(0.0, True), (2e-2, False)]:
        result = native_build.BuildResult("upfirdn2d", "cpu", _half_upfirdn2d(error), "", None)
        report = op_check.run_check(result, dtypes=[torch.float16])
        assert report.ok is ok and not report.crash
        assert all(c.dtype == torch.float16 for c in report.comparisons) and len(report.comparisons) == 9
        if ok:  # rounding to 11 bits, 5e-4, against a tolerance of 1e-2
            assert max(c.error for c in report.comparisons) < 2e-3


# --------------------------------------------------------------------------- a wrong kernel is caught


def _scaled(fn, factor=1 + 1e-3, when=lambda *args: True):
    """fn's result times ``factor`` where ``when(*args)`` holds: a kernel slightly wrong there."""
    return lambda *args: fn(*args) * (factor if when(*args) else 1.0)


def _wrong(native_cpu_ops, op, name, **kwargs):
    return name, _scaled(getattr(native_cpu_ops[op], name), **kwargs)


x4 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
blur = kernels.setup_filter([1, 3, 3, 1])
# Each op's public path, with the reference result it must give once the native module is turned down.
USES = {
    "bias_act": (lambda: kernels.bias_act(x4, torch.ones(3), act="lrelu", clamp=0.5),
                 lambda: kernels.bias_act_ref(x4, torch.ones(3), act="lrelu", clamp=0.5)),
    "upfirdn2d": (lambda: kernels.upfirdn2d(x4, blur, up=2, padding=[2, 1, 2, 1]),
                  lambda: kernels.upfirdn2d_ref(x4, blur, up=2, padding=[2, 1, 2, 1])),
    "winograd": (lambda: winograd_op.native_available(x4), lambda: False),
    "layer_epilogue": (lambda: layer_epilogue.layer_epilogue(x4.clone(), bias=torch.ones(3), clamp=0.5),
                       lambda: layer_epilogue.layer_epilogue_ref(x4, bias=torch.ones(3), clamp=0.5)),
    "to_rgb": (lambda: to_rgb.to_rgb(x4, torch.ones(2, 1, 3), None, 0.5),
               lambda: to_rgb.to_rgb_ref(x4, torch.ones(2, 1, 3), None, 0.5)),
}


def _wrong_kernels(m):
    """(op, function name, its wrong version, the quantity that shows it) for the real modules m."""
    up = m["upfirdn2d"].upfirdn2d
    return [
        ("bias_act", *_wrong(m, "bias_act", "bias_act", when=lambda *a: a[-1] == 0), "forward"),
        # Right forwards and first derivatives; only the second-order kernel (order 2) is off.
        ("bias_act", *_wrong(m, "bias_act", "bias_act", when=lambda *a: a[-1] == 2), "2nd derivative"),
        # Ignores flip_filter: wrong gradients (they flip the filter: caught first), and forwards of
        # lopsided flipped filters.
        ("upfirdn2d", "upfirdn2d", lambda x, f, *a: up(x, f, *a[:-2], False, a[-1]), "1st derivative"),
        ("winograd", *_wrong(m, "winograd", "input_adjoint"), "1st derivative"),
        ("layer_epilogue", *_wrong(m, "layer_epilogue", "layer_epilogue"), "forward"),
        ("to_rgb", *_wrong(m, "to_rgb", "to_rgb", factor=0.999), "forward"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_wrong_kernel_is_caught_warned_about_once_and_replaced_by_the_reference(case, served, native_cpu_ops):
    op, name, fn, quantity = _wrong_kernels(native_cpu_ops)[case]
    build_dir = served(op, name, fn)
    use, reference = USES[op]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [use() for _ in range(3)]
    expected = reference()
    for result in results:
        assert result is expected if isinstance(expected, bool) else torch.allclose(result, expected, atol=1e-6)
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(messages) == 1, messages
    device = op_check.device_name("cpu")
    assert f"native {op} for cpu" in messages[0] and "self-check" in messages[0] and device in messages[0]
    assert quantity in messages[0] and "max error" in messages[0]
    assert "\n" not in messages[0]
    path, why = native_build.status(op, "cpu")
    assert path == "ref" and quantity in why
    record = verdicts(build_dir)[device]
    assert record["ok"] is False and quantity in record["error"]


def test_native_mode_refuses_a_wrong_kernel(served, native_cpu_ops):
    served("to_rgb", *_wrong(native_cpu_ops, "to_rgb", "to_rgb"))
    with native_build.use_ops("native"), pytest.raises(native_build.BuildError, match="self-check"):
        to_rgb.to_rgb(x4, torch.ones(2, 1, 3))


def test_a_check_that_crashes_counts_as_a_failure(served, native_cpu_ops):
    def broken(*args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")

    served("bias_act", "bias_act", broken)
    with pytest.warns(RuntimeWarning, match="the check raised RuntimeError: CUDA error: an illegal memory"):
        assert native_build.load("bias_act", "cpu") is None


def test_a_reference_that_raises_leaves_the_kernel_in_use_unchecked(served, monkeypatch):
    """The check's own fault (say, on a GPU no test has seen) must not turn a kernel down for good."""
    build_dir = served("bias_act")

    def broken(*args, **kwargs):
        raise TypeError("a bug in the check")

    monkeypatch.setattr(kernels, "bias_act_ref", broken)
    with pytest.warns(RuntimeWarning, match="could not self-check the native bias_act on cpu.*a bug in the check"):
        assert native_build.load("bias_act", "cpu") is not None
    assert not (build_dir / op_check.RECORD_FILE).exists()


# --------------------------------------------------------------------------- the verdict is remembered


def test_the_verdict_is_remembered_per_build_and_device(served, check_runs, monkeypatch, native_cpu_ops):
    build_dir = served("bias_act")
    assert native_build.load("bias_act", "cpu") is not None
    assert check_runs == ["bias_act"]
    device = op_check.device_name("cpu")
    assert verdicts(build_dir)[device]["ok"] is True

    forget_loaded_ops(monkeypatch)  # a new process: the file answers
    assert native_build.load("bias_act", "cpu") is not None
    assert check_runs == ["bias_act"]

    # A wrong kernel in the same library would not be checked again (the verdict is the library's) ...
    served("bias_act", *_wrong(native_cpu_ops, "bias_act", "bias_act"))
    forget_loaded_ops(monkeypatch)
    assert native_build.load("bias_act", "cpu") is not None
    assert check_runs == ["bias_act"]
    # ... but a rebuilt library is, and a failure is remembered too.
    (build_dir / "library.so").write_bytes(b"build 2")
    forget_loaded_ops(monkeypatch)
    with pytest.warns(RuntimeWarning, match="self-check"):
        assert native_build.load("bias_act", "cpu") is None
    forget_loaded_ops(monkeypatch)
    with pytest.warns(RuntimeWarning, match="self-check"):
        assert native_build.load("bias_act", "cpu") is None
    assert check_runs == ["bias_act"] * 2

    # Another device (another GPU model under the same cache) gets its own check and verdict.
    monkeypatch.setattr(op_check, "device_name", lambda kind: "cuda: Another GPU (sm_80)")
    served("bias_act")
    forget_loaded_ops(monkeypatch)
    assert native_build.load("bias_act", "cpu") is not None
    assert check_runs == ["bias_act"] * 3
    assert verdicts(build_dir)["cuda: Another GPU (sm_80)"]["ok"] is True and not verdicts(build_dir)[device]["ok"]


def test_an_unreadable_or_unwritable_record_means_checking_again(served, check_runs, monkeypatch):
    build_dir = served("to_rgb")
    (build_dir / op_check.RECORD_FILE).write_text("{not json")
    assert native_build.load("to_rgb", "cpu") is not None
    assert verdicts(build_dir)[op_check.device_name("cpu")]["ok"] is True
    (build_dir / op_check.RECORD_FILE).unlink()
    (build_dir / op_check.RECORD_FILE).mkdir()  # cannot be replaced by a file: the verdict is not kept
    forget_loaded_ops(monkeypatch)
    assert native_build.load("to_rgb", "cpu") is not None
    forget_loaded_ops(monkeypatch)
    assert native_build.load("to_rgb", "cpu") is not None
    assert check_runs == ["to_rgb"] * 3


def test_the_check_leaves_the_callers_rng_and_grad_mode_alone(served, check_runs):
    """The first use may come inside inference_mode (generation); the check needs gradients, and must
    not draw from the global RNG that the caller's seeds set."""
    served("upfirdn2d")
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    with torch.inference_mode():
        y = kernels.upfirdn2d(x4, blur, up=2, padding=[2, 1, 2, 1])
        assert torch.is_inference_mode_enabled()
    assert check_runs == ["upfirdn2d"] and native_build.status("upfirdn2d", "cpu")[0] == "native"
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(y, kernels.upfirdn2d_ref(x4, blur, up=2, padding=[2, 1, 2, 1]))


def test_the_next_process_reuses_the_verdict_until_the_library_changes(tmp_path):
    """Real builds through the real load, in fresh interpreters: the first checks and writes its
    verdict beside the build, the second reads it, a changed library is checked again."""
    name = native_build.extension_name("bias_act", "cpu")
    build_dir = tmp_path / "cache" / "stylegan_anime" / name
    shutil.copytree(native_build.cache_root() / name, build_dir)
    (build_dir / op_check.RECORD_FILE).unlink(missing_ok=True)  # the shared build's own verdict
    code = """
        import json, torch
        from stylegan_anime.ops import kernels, native_build, op_check
        runs = []
        real = op_check.run_check
        op_check.run_check = lambda result: runs.append(result.op) or real(result)
        y = kernels.bias_act(torch.randn(4, 5), None, act="lrelu")
        print(json.dumps({"runs": runs, "status": native_build.status("bias_act", "cpu")[0]}))
    """
    first = run_python(code, tmp_path / "cache")
    second = run_python(code, tmp_path / "cache")
    with open(build_dir / f"{name}.so", "ab") as fh:  # a rebuild: other bytes (the loader ignores these)
        fh.write(b"\0" * 16)
    third = run_python(code, tmp_path / "cache")
    assert [first["runs"], second["runs"], third["runs"]] == [["bias_act"], [], ["bias_act"]]
    assert first["status"] == second["status"] == third["status"] == "native"
    assert verdicts(build_dir)[op_check.device_name("cpu")]["ok"] is True


# --------------------------------------------------------------------------- whole networks, doctor --check


def test_the_generator_check_catches_what_the_op_check_cannot_see(monkeypatch, native_cpu_ops):
    """A kernel wrong only on larger inputs than the self-check's passes it; the generator shows it."""
    real = native_cpu_ops["upfirdn2d"]
    fn = _scaled(real.upfirdn2d, when=lambda x, *a: x.numel() > 2000)  # the check's inputs have < 1000
    impostor = Impostor(real, Path(real.__file__), "upfirdn2d", fn)
    result = native_build.BuildResult("upfirdn2d", "cpu", impostor, "loaded from cache", None)
    assert op_check.run_check(result).ok
    monkeypatch.setitem(native_build._State.results, ("upfirdn2d", "cpu"), result)
    assert not network_check.check_generator(torch.device("cpu"), "grouped modconv").ok
    monkeypatch.setitem(native_build._State.results, ("upfirdn2d", "cpu"),
                        native_build.BuildResult("upfirdn2d", "cpu", real, "loaded from cache", None))
    assert network_check.check_generator(torch.device("cpu"), "grouped modconv").ok


def _table(out: str) -> dict[str, list[str]]:
    """doctor --check's rows by their first column (names may hold one space: 'generator 64², ...')."""
    rows = {}
    for line in out.splitlines():
        head = line[:30].strip()
        if head and not line.startswith(("no CUDA", "checking", "FAILED")):
            rows[head] = line[30:].split()
    return rows


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the GPU there")
def test_doctor_check_prints_a_table_of_errors_and_times(capsys, served, check_runs):
    assert cli.main(["doctor", "--check"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "no CUDA device: checking the CPU"
    rows = _table(out)
    for op in native_build.OPS:
        dtype, forward, first, second, native_ms, _, ref_ms, _, verdict = rows[op]
        assert dtype == "float32" and float(forward) < 1e-5 and verdict == "ok"
        assert (first, second) != ("-", "-") if op in TRAINING_OPS else (first, second) == ("-", "-")
    for name in [*(f"generator 64², {p}" for p in network_check.GENERATOR_PATHS), "training step, 16²"]:
        assert rows[name][-1] == "ok", out
    assert "FAILED" not in out
    assert sorted(check_runs) == sorted(native_build.OPS)  # doctor checks afresh (the networks reuse that)


def test_doctor_check_names_a_failing_op_and_exits_1(capsys, served, native_cpu_ops, monkeypatch):
    build_dir = served("layer_epilogue", *_wrong(native_cpu_ops, "layer_epilogue", "layer_epilogue"))
    monkeypatch.setattr(network_check, "check_networks", lambda device: [])  # the test above runs them
    assert cli.main(["doctor", "--check", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert _table(out)["layer_epilogue"][-3:] == ["FAILED", "(tolerance", "1e-04)"]
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED layer_epilogue: forward in float32")
    assert str(build_dir / op_check.RECORD_FILE) in failed[0]
