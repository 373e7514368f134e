"""Build and load the native kernels in the repository's top-level ``ops/`` lazily, and choose between
them and the reference ops.

Nothing is compiled at import: the first call of an op on a device kind builds that op's
extension with ``torch.utils.cpp_extension.load`` (ninja) into
``$TORCH_EXTENSIONS_DIR/stylegan_anime/<name>``, where ``<name>`` carries a hash of the
sources, torch's version, the device kind and the flags, so a changed source or torch never
loads a stale library and never clobbers another build. Later processes import the finished
library directly. A build that cannot run (no compiler, no ninja, no nvcc, a compile error)
warns once with the reason and the op runs on its reference implementation.

The choice: ``STYLEGAN_ANIME_OPS=auto`` (default), ``native`` (build and wait; a build failure is an
error) or ``ref``; in Python ``set_ops_mode(...)`` or ``with use_ops(...)``.

``auto`` never makes a run wait for the compiler: it uses a finished build from the cache, and
otherwise runs the reference ops while one detached, low-priority process builds every op of that
device kind (``background_build``); the next run picks the result up. A build that failed is
remembered (``.failed`` in its build folder, with the reason) and not retried until its sources,
torch or flags change, or ``stylegan-anime doctor --build`` asks for it. Why not wait: on the 2-core
CPU a first build takes about two minutes, and for the bundled 64² model the native ops change
nothing (measured side by side: 1.0x); they pay from 256² on (``benchmarks/first_run.py``).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

import torch

try:
    from .bundled import bundled_dir
    from .locks import LockTimeout, held, is_held
    from .switches import Switch
except ImportError:  # run as a script (CI's CUDA check, the background build): this folder is on sys.path
    from bundled import bundled_dir
    from locks import LockTimeout, held, is_held
    from switches import Switch

OPS = ("upfirdn2d", "bias_act", "winograd", "layer_epilogue", "to_rgb")
# Ops with no CUDA kernel: on CUDA the networks use cuDNN's convolutions, which pick their own algorithms,
# and torch's elementwise kernels, which are not the bottleneck there that they are on a 2-core CPU.
CPU_ONLY_OPS = ("winograd", "layer_epilogue", "to_rgb")
DEVICE_KINDS = ("cpu", "cuda")
MODES = ("auto", "native", "ref")
ENV_MODE = "STYLEGAN_ANIME_OPS"
OPS_MODE = Switch(ENV_MODE, MODES, "ops mode")


SOURCE_DIR = bundled_dir("ops")
# A build that another live process holds the lock for is waited on this long at most.
LOCK_TIMEOUT_S = float(os.environ.get("STYLEGAN_ANIME_OPS_LOCK_TIMEOUT", "1200"))
COMPLETE_MARKER = ".complete"
FAILED_MARKER = ".failed"  # the first line of the reason a build failed

# at::parallel_for runs serially unless the extension itself is compiled with OpenMP.
# -fno-trapping-math (as torch itself is built) lets GCC turn the per-element branches (activation
# kinks, clamps) into selects and vectorise the loops; it changes no result, only FP-exception traps.
CXX_FLAGS = ("-O3", "-fopenmp", "-fno-trapping-math")
LD_FLAGS = ("-fopenmp",)
NVCC_FLAGS = ("-O3",)


class BuildError(RuntimeError):
    """A native op could not be built or loaded; the message's first line says why."""


@dataclass
class BuildResult:
    """What happened to one op on one device kind in this process."""

    op: str
    device_kind: str
    module: ModuleType | None
    reason: str  # "built in 41 s", "loaded from cache", or why the reference is used
    build_dir: Path | None = None


class _State:
    """Process-wide choices: the Python override of the mode and the results of builds."""

    results: dict[tuple[str, str], BuildResult] = {}
    started: set[tuple[str, str]] = set()  # background builds this process started


# --------------------------------------------------------------------------- mode


def ops_mode() -> str:
    """The current mode: the Python override, else $STYLEGAN_ANIME_OPS, else "auto"."""
    return OPS_MODE.get()


def set_ops_mode(mode: str | None) -> None:
    """Choose "auto", "native" or "ref" for this process; None goes back to the environment."""
    OPS_MODE.set(mode)


def use_ops(mode: str | None):
    """``with use_ops("ref"): ...`` runs the block with the given ops mode."""
    return OPS_MODE.use(mode)


# --------------------------------------------------------------------------- sources and cache


def sources(op: str, device_kind: str) -> list[Path]:
    """The files compiled for ``op``: its .cpp, plus its .cu for CUDA."""
    if op not in OPS or device_kind not in DEVICE_KINDS:
        raise ValueError(f"unknown op/device kind {op!r}/{device_kind!r}")
    files = [SOURCE_DIR / f"{op}.cpp"]
    if device_kind == "cuda" and op not in CPU_ONLY_OPS:
        files.append(SOURCE_DIR / f"{op}.cu")
    return files


def cpu_isa_flags() -> list[str]:
    """``-mavx2 -mfma`` where torch runs its own AVX2 (or AVX-512) kernels, else nothing.

    The CPU loops work on 8-float vectors (``ops/simd.h``); without AVX each is two SSE halves
    that spill through the stack, 3-4x slower. Builds happen on the machine that runs them, and
    the flags are part of the cache key, so a CPU without AVX2 never loads this build.
    """
    return ["-mavx2", "-mfma"] if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else []


def _flags(device_kind: str) -> dict[str, list[str]]:
    """Fresh lists each time: cpp_extension.load appends to the lists it is given."""
    cflags = [*CXX_FLAGS, *cpu_isa_flags()]
    if device_kind == "cuda":
        return dict(extra_cflags=[*cflags, "-DSA_WITH_CUDA"], extra_cuda_cflags=[*NVCC_FLAGS, "-DSA_WITH_CUDA"],
                    extra_ldflags=list(LD_FLAGS))
    return dict(extra_cflags=cflags, extra_cuda_cflags=[], extra_ldflags=list(LD_FLAGS))


def extension_name(op: str, device_kind: str) -> str:
    """``sa_<op>_<kind>_<hash>``: the hash covers every source and header, torch's version, Python's
    version, the flags and (CUDA) the architecture list."""
    h = hashlib.sha256()
    for path in sorted(SOURCE_DIR.glob("*.h")) + sources(op, device_kind):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    key = [torch.__version__, sys.version.split()[0], device_kind, repr(_flags(device_kind))]
    if device_kind == "cuda":
        key.append(os.environ.get("TORCH_CUDA_ARCH_LIST", ""))
    h.update("\0".join(key).encode())
    return f"sa_{op}_{device_kind}_{h.hexdigest()[:12]}"


def cache_root() -> Path:
    """$TORCH_EXTENSIONS_DIR (torch's own default otherwise) / stylegan_anime."""
    base = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(base) / "stylegan_anime"


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """Hold a kernel lock beside ``build_dir`` for the build (``locks.held``: released when its
    process dies), so a killed build never leaves it held; torch's own lock file inside the
    build dir, which a killed build does leave behind, is therefore stale whenever we hold
    ours, and is removed instead of being waited on forever."""
    try:
        with held(build_dir.with_name(build_dir.name + ".flock"), LOCK_TIMEOUT_S, poll=0.5):
            (build_dir / "lock").unlink(missing_ok=True)
            yield
    except LockTimeout:
        raise BuildError(f"another process has been building {build_dir.name} for over {LOCK_TIMEOUT_S:.0f} s") from None


# --------------------------------------------------------------------------- build and load


def _import_built(name: str, build_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, build_dir / f"{name}.so")
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot import {build_dir / name}.so")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _first_error_line(text: str) -> str:
    """The line of a compiler / ninja log that says what went wrong."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for pattern in (r"\berror\b", r"not found|No such file|required|cannot|failed|FAILED"):
        for ln in lines:
            if re.search(pattern, ln, re.IGNORECASE) and not ln.startswith("Error building extension"):
                return ln[:300]
    return (lines[0] if lines else "unknown error")[:300]


def _compile(op: str, device_kind: str, name: str, build_dir: Path, verbose: bool,
             check_only: bool) -> ModuleType | None:
    from torch.utils import cpp_extension

    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    try:
        module = cpp_extension.load(name=name, sources=[str(p) for p in sources(op, device_kind)],
                                    extra_include_paths=[str(SOURCE_DIR)], build_directory=str(build_dir),
                                    with_cuda=device_kind == "cuda", verbose=verbose, **_flags(device_kind))
    except Exception as e:  # noqa: BLE001 - every failure of the toolchain means "use the reference"
        (build_dir / "build.log").write_text(f"{type(e).__name__}: {e}\n")
        built = not str(e).startswith("Error building extension") and (build_dir / f"{name}.so").exists()
        if check_only and built:  # compiled and linked; importing may need a GPU driver that is not here
            (build_dir / COMPLETE_MARKER).write_text(f"{name}\n")
            return None
        reason = f"build failed: {_first_error_line(str(e))} (log: {build_dir / 'build.log'})"
        (build_dir / FAILED_MARKER).write_text(reason + "\n")
        raise BuildError(reason) from e
    (build_dir / FAILED_MARKER).unlink(missing_ok=True)
    (build_dir / COMPLETE_MARKER).write_text(f"{name}\n")
    return module


def build(op: str, device_kind: str = "cpu", verbose: bool = False, check_only: bool = False) -> BuildResult:
    """Build (or load from the cache) one op's extension; raises BuildError with the reason.

    ``check_only``: compile and link without needing to import the result (CI builds the CUDA
    extension on a machine without a GPU); the result's module may then be None.
    """
    if device_kind == "cuda" and op in CPU_ONLY_OPS:
        raise BuildError(f"{op} is a CPU-only op")
    name = extension_name(op, device_kind)
    build_dir = cache_root() / name
    if (build_dir / COMPLETE_MARKER).exists() and (build_dir / f"{name}.so").exists():
        if check_only:
            return BuildResult(op, device_kind, None, "found in cache", build_dir)
        return BuildResult(op, device_kind, _import_built(name, build_dir), "loaded from cache", build_dir)
    if device_kind == "cuda":
        _check_cuda_toolkit()
    start = time.monotonic()
    print(f"stylegan-anime: compiling the native {op} op for {device_kind} (once, about a minute)...",
          file=sys.stderr, flush=True)
    with _build_lock(build_dir):
        if (build_dir / COMPLETE_MARKER).exists():  # another process finished it while we waited
            if check_only:
                return BuildResult(op, device_kind, None, "found in cache", build_dir)
            return BuildResult(op, device_kind, _import_built(name, build_dir), "loaded from cache", build_dir)
        module = _compile(op, device_kind, name, build_dir, verbose, check_only)
    return BuildResult(op, device_kind, module, f"built in {time.monotonic() - start:.0f} s", build_dir)


def _check_cuda_toolkit() -> None:
    from torch.utils import cpp_extension

    if torch.version.cuda is None:
        raise BuildError("torch has no CUDA support (a CPU build of torch)")
    if cpp_extension.CUDA_HOME is None:
        raise BuildError("no CUDA toolkit found (set CUDA_HOME to the folder holding bin/nvcc)")


def build_state(op: str, device_kind: str) -> tuple[str, str]:
    """What the cache holds for this op's current sources, without building or importing anything:
    ("built" | "failed" | "building" | "none", detail)."""
    name = extension_name(op, device_kind)
    build_dir = cache_root() / name
    if (build_dir / COMPLETE_MARKER).exists() and (build_dir / f"{name}.so").exists():
        return "built", f"cache {build_dir}"
    if (build_dir / FAILED_MARKER).exists():
        return "failed", (build_dir / FAILED_MARKER).read_text().strip() + " (retry: stylegan-anime doctor --build)"
    if background_running(device_kind):
        return "building", f"being built in the background (log: {background_log(device_kind)})"
    return "none", "not built yet"


def load(op: str, device_kind: str) -> ModuleType | None:
    """The op's native module for the device kind, or None for the reference path.

    Mode "native" builds and waits, and raises when it cannot build. Mode "auto" uses a finished
    build, else starts the background build and returns None (one line on stderr, no warning);
    a build that failed gives one warning per op."""
    key = (op, device_kind)
    result = _State.results.get(key)
    if result is None:
        result = _State.results[key] = _first_load(op, device_kind, wait=ops_mode() == "native")
    if result.module is None and ops_mode() == "native":
        if result.reason.startswith("being built") or result.reason == "not built yet":
            result = _State.results[key] = _first_load(op, device_kind, wait=True)
        if result.module is None:
            raise BuildError(f"{ENV_MODE}=native but the native {op} for {device_kind} is unavailable: {result.reason}")
    return result.module


def _first_load(op: str, device_kind: str, wait: bool) -> BuildResult:
    """This process's first use of the op: load, build, or hand the build to the background."""
    state, detail = build_state(op, device_kind)
    if not wait and state in ("building", "none"):
        start_background_build(device_kind)
        return BuildResult(op, device_kind, None, f"being built in the background (log: {background_log(device_kind)})")
    if not wait and state == "failed":
        result = BuildResult(op, device_kind, None, detail)
    else:
        try:
            from .op_check import vetted  # compared with the reference once per build and device
            result = vetted(build(op, device_kind))
        except BuildError as e:
            result = BuildResult(op, device_kind, None, str(e).splitlines()[0])
        except Exception as e:  # noqa: BLE001 - an unexpected failure must not take the networks down
            result = BuildResult(op, device_kind, None, f"load failed: {type(e).__name__}: {e}".splitlines()[0])
    if result.module is None and not wait:
        warnings.warn(f"stylegan_anime: native {op} for {device_kind} is unavailable, using the "
                      f"reference implementation ({result.reason})", RuntimeWarning, stacklevel=5)
    return result


def status(op: str, device_kind: str) -> tuple[str, str]:
    """("native" | "ref", why) for one op and device kind: what a run would use now, and why.
    Builds nothing."""
    mode = ops_mode()
    if mode == "ref":
        return "ref", f"{ENV_MODE}=ref"
    if device_kind == "cuda" and not torch.cuda.is_available():
        return "ref", "no CUDA device"
    result = _State.results.get((op, device_kind))
    if result is not None:
        return ("native", f"{result.reason}, cache {result.build_dir}") if result.module else ("ref", result.reason)
    state, detail = build_state(op, device_kind)
    if state == "built":
        return "native", f"built, {detail}"
    if mode == "native":
        return "native", f"{detail}: the first use builds it and waits ({ENV_MODE}=native)"
    if state == "none":
        return "ref", "not built yet: the first run that needs it starts a background build, later runs use it"
    return "ref", detail


# --------------------------------------------------------------------------- background build


def background_log(device_kind: str) -> Path:
    return cache_root() / f"background-{device_kind}.log"


def _background_lock(device_kind: str) -> Path:
    return cache_root() / f"background-{device_kind}.flock"


def background_running(device_kind: str) -> bool:
    """Whether a background build of this device kind holds its lock now."""
    return is_held(_background_lock(device_kind))


def start_background_build(device_kind: str) -> None:
    """Start one detached, low-priority process that builds every op of ``device_kind`` (once per
    process; a build already running elsewhere is left to finish). It outlives this process."""
    import subprocess

    if ("background", device_kind) in _State.started or background_running(device_kind):
        return
    _State.started.add(("background", device_kind))
    log = background_log(device_kind)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        subprocess.Popen([sys.executable, str(Path(__file__).resolve()), device_kind, "--background"],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    print(f"stylegan-anime: this run uses the reference ops; the native {device_kind} ops are being built in "
          f"the background (about two minutes, once; log: {log})", file=sys.stderr, flush=True)


def wait_for_background_build(device_kind: str, timeout: float = LOCK_TIMEOUT_S) -> bool:
    """Wait until no background build of ``device_kind`` runs; False on timeout."""
    deadline = time.monotonic() + timeout
    time.sleep(1.0)  # the child takes its lock a moment after it starts
    while background_running(device_kind):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@contextlib.contextmanager
def _holding_background_lock(device_kind: str) -> Iterator[bool]:
    """Yields False when another background build of this kind holds the lock."""
    try:
        with held(_background_lock(device_kind), timeout=0):
            yield True
    except LockTimeout:
        yield False


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python stylegan_anime/ops/native_build.py cuda --check-only``: build ahead of first use (CI
    checks the CUDA sources this way; the file runs stand-alone, needing only torch)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("device_kind", choices=DEVICE_KINDS)
    ap.add_argument("--ops", nargs="+", choices=OPS, help="default: every op the device kind has")
    ap.add_argument("--check-only", action="store_true", help="compile and link; do not require importing")
    ap.add_argument("--verbose", action="store_true", help="show the compiler's output")
    ap.add_argument("--background", action="store_true",
                    help="(started by auto mode) build at low priority, holding the background lock")
    args = ap.parse_args(argv)
    args.ops = args.ops or [op for op in OPS if args.device_kind == "cpu" or op not in CPU_ONLY_OPS]
    if args.background:
        os.nice(10)  # the user's own run goes first
        with _holding_background_lock(args.device_kind) as mine:
            return _build_all(args) if mine else 0
    return _build_all(args)


def _build_all(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    def one(op: str) -> bool:
        try:
            result = build(op, args.device_kind, verbose=args.verbose, check_only=args.check_only)
            print(f"{op} {args.device_kind}: ok ({result.reason}; {result.build_dir})", flush=True)
            return True
        except BuildError as e:
            print(f"{op} {args.device_kind}: FAILED: {e}", flush=True)
            return False

    # The ops build side by side: one op's .cu file alone would keep a single core busy.
    with ThreadPoolExecutor(len(args.ops)) as pool:
        return 0 if all(pool.map(one, args.ops)) else 1


if __name__ == "__main__":
    sys.exit(main())
