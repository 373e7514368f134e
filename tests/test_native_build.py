"""Building the native ops never gets in the way: a broken toolchain falls back to the
reference with one warning, and a lock left by a killed build is not waited on.

Each case runs in a subprocess with its own cache dir, so that it neither pollutes nor
rebuilds the shared one in $TORCH_EXTENSIONS_DIR."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from stylegan_anime import cli
from stylegan_anime.ops import native_build

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str, cache: Path, timeout: float = 300, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter with its own extension cache; it prints one JSON line."""
    full_env = {k: v for k, v in os.environ.items() if k != native_build.ENV_MODE}
    full_env.update(TORCH_EXTENSIONS_DIR=str(cache), **env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=full_env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


BROKEN_COMPILER_SCRIPT = """
    import json, warnings
    import torch
    from stylegan_anime.ops import kernels, layer_epilogue, native_build, to_rgb
    from stylegan_anime.networks import winograd
    x = torch.randn(2, 3, 6, 6)
    f = kernels.setup_filter([1, 3, 3, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = []
        for _ in range(2):
            same.append(torch.equal(kernels.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]),
                                    kernels.upfirdn2d_ref(x, f, up=2, padding=[2, 1, 2, 1])))
            same.append(torch.equal(kernels.bias_act(x, None, act="lrelu", clamp=1.0),
                                    kernels.bias_act_ref(x, None, act="lrelu", clamp=1.0)))
            with winograd.use_winograd("always"):  # no native transforms: the direct convolution
                same.append(not winograd.f43_usable(torch.randn(1, 8, 8, 8), (8, 8, 3, 3), 1))
            same.append(torch.equal(layer_epilogue.layer_epilogue(x.clone(), bias=torch.ones(3), clamp=1.0),
                                    layer_epilogue.layer_epilogue_ref(x, bias=torch.ones(3), clamp=1.0)))
            same.append(torch.allclose(to_rgb.to_rgb(x, torch.ones(2, 1, 3), None, 1.0),
                                       to_rgb.to_rgb_ref(x, torch.ones(2, 1, 3), None, 1.0)))
    print(json.dumps({"same": same, "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
                      "status": [native_build.status(op, "cpu") for op in native_build.OPS]}))
"""


def wait_for_markers(cache: Path, marker: str, timeout: float = 300) -> list[Path]:
    """The build folders in ``cache`` holding ``marker`` once every op has one (a background build's end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted((cache / "stylegan_anime").glob(f"sa_*_cpu_*/{marker}"))
        if len(found) == len(native_build.OPS):
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {marker} for every op in {cache} after {timeout} s")


def test_broken_compiler_warns_once_and_uses_the_reference(tmp_path):
    """Auto mode hands the build to the background and runs the reference at once; the build's
    failure is remembered, so the next run warns once per op and does not try again."""
    cache = tmp_path / "cache"
    first = run_python(BROKEN_COMPILER_SCRIPT, cache, CXX="/bin/false")
    assert first["same"] == [True] * 10
    assert first["warnings"] == []  # a build in progress is no fault: one line on stderr, no warning
    assert all(s[0] == "ref" and s[1].startswith("being built in the background") for s in first["status"])
    failed = wait_for_markers(cache, native_build.FAILED_MARKER)
    second = run_python(BROKEN_COMPILER_SCRIPT, cache, CXX="/bin/false")
    assert second["same"] == [True] * 10
    assert len(second["warnings"]) == len(native_build.OPS)  # one per op, not one per call
    assert all("build failed" in w and "/bin/false" in w for w in second["warnings"])
    assert [s[0] for s in second["status"]] == ["ref"] * len(native_build.OPS)
    assert sorted((cache / "stylegan_anime").glob("sa_*_cpu_*/.failed")) == failed  # not retried


def test_auto_mode_never_waits_and_the_next_run_uses_the_background_build(tmp_path, native_cpu_ops):
    """The shared builds are copied without their completion markers, so only the background
    process (ninja finds nothing to recompile) can make them usable."""
    cache = tmp_path / "cache"
    for op in native_build.OPS:
        name = native_build.extension_name(op, "cpu")
        shutil.copytree(native_build.cache_root() / name, cache / "stylegan_anime" / name)
        (cache / "stylegan_anime" / name / native_build.COMPLETE_MARKER).unlink()
    code = """
        import json, sys, torch
        from stylegan_anime.ops import kernels, native_build
        x = torch.randn(3, 4, 5, 5)
        same = torch.equal(kernels.bias_act(x, None, act="lrelu"), kernels.bias_act_ref(x, None, act="lrelu"))
        print(json.dumps({"same": same, "status": [native_build.status(op, "cpu") for op in native_build.OPS]}))
    """
    first = run_python(code, cache)
    assert first["same"]  # bit-exact: the reference ran
    assert [s[0] for s in first["status"]] == ["ref"] * len(native_build.OPS)
    wait_for_markers(cache, native_build.COMPLETE_MARKER)
    second = run_python(code, cache)
    assert [s[0] for s in second["status"]] == ["native"] * len(native_build.OPS)
    log = (cache / "stylegan_anime" / "background-cpu.log").read_text()
    assert all(f"{op} cpu: ok" in log for op in native_build.OPS), log


def test_native_mode_turns_a_build_failure_into_an_error(tmp_path):
    code = """
        import json, torch
        from stylegan_anime.ops import kernels, native_build
        try:
            kernels.bias_act(torch.zeros(3), None)
            print(json.dumps({"raised": None}))
        except native_build.BuildError as e:
            print(json.dumps({"raised": str(e)}))
    """
    result = run_python(code, tmp_path / "cache", CXX="/bin/false", STYLEGAN_ANIME_OPS="native")
    assert result["raised"] and "build failed" in result["raised"]


def test_stale_lock_from_a_killed_build_is_cleared(tmp_path, native_cpu_ops):
    """A killed build leaves torch's lock file behind; the next build must clear it, not wait forever.

    The shared build is copied (so ninja has nothing to recompile) and its completion marker
    removed, which sends the next load through the locked build path."""
    name = native_build.extension_name("bias_act", "cpu")
    cache = tmp_path / "cache"
    build_dir = cache / "stylegan_anime" / name
    shutil.copytree(native_build.cache_root() / name, build_dir)
    (build_dir / native_build.COMPLETE_MARKER).unlink()
    (build_dir / "lock").write_text("")
    code = """
        import json, torch
        from stylegan_anime.ops import kernels, native_build
        result = native_build.build("bias_act", "cpu")
        x = torch.randn(4, 5)
        with native_build.use_ops("native"):
            same = torch.allclose(kernels.bias_act(x, None, act="tanh"), kernels.bias_act_ref(x, None, act="tanh"))
        print(json.dumps({"reason": result.reason, "same": same}))
    """
    result = run_python(code, cache, timeout=240)
    assert result["reason"].startswith("built in") and result["same"]
    assert not (build_dir / "lock").exists()
    assert (build_dir / native_build.COMPLETE_MARKER).exists()


def test_doctor_reports_each_op_and_device(capsys, native_cpu_ops, monkeypatch):
    monkeypatch.delenv(native_build.ENV_MODE, raising=False)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    lines = {tuple(ln.split()[:3]) for ln in out.splitlines() if ln.split()[:1] in ([op] for op in native_build.OPS)}
    assert {(op, "cpu", "native") for op in native_build.OPS} <= lines
    if not torch.cuda.is_available():
        assert ("upfirdn2d", "cuda", "ref") in lines
    assert "native CPU builds: vector flags" in out
    monkeypatch.setenv(native_build.ENV_MODE, "ref")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    refs = {tuple(ln.split()[:4]) for ln in out.splitlines()}
    assert {(op, "cpu", "ref", "STYLEGAN_ANIME_OPS=ref") for op in native_build.OPS} <= refs
