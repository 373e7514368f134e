"""`stylegan-anime doctor --check`: every native op, a generator forward and a training step, native
against the reference on this machine's device (the GPU if there is one), as a table of max errors
and times. The ops' verdicts are written beside their builds, as the automatic self-check does."""
from __future__ import annotations

import argparse

import torch

from ..ops import native_build, op_check
from ..diagnostics import network_check

ROW = "{:<30} {:<8} {:>8} {:>9} {:>9} {:>10} {:>10}  {}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true",
                   help="compare the native ops, a generator and a training step with the reference ops")
    p.add_argument("--device", choices=native_build.DEVICE_KINDS, default=None,
                   help="with --check: the device to check (default: cuda if there is one, else cpu)")


def _device_kind(requested: str | None) -> str | None:
    """The device kind to check, after one line saying which and why; None if it is not there."""
    if requested == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check on cuda")
        return None
    if requested is None and not torch.cuda.is_available():
        print("no CUDA device: checking the CPU")
    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _err(c: op_check.Comparison | None) -> str:
    return "-" if c is None else f"{c.error:.1e}"


def _op_rows(report: op_check.Report) -> list[str]:
    """One row per dtype: the worst error of each derivative order, the native and reference times."""
    rows = []
    for dtype in dict.fromkeys(c.dtype for c in report.comparisons):
        mine = [c for c in report.comparisons if c.dtype == dtype]
        worst = [report.worst(q, dtype) for q in op_check.ORDERS]
        bad = [c for c in mine if not c.ok]
        verdict = "ok" if not bad else f"FAILED (tolerance {bad[0].tolerance:.0e})"
        rows.append(ROW.format(report.op, str(dtype).removeprefix("torch."), *map(_err, worst),
                               _ms(sum(c.native_s for c in mine)), _ms(sum(c.ref_s for c in mine)), verdict))
    if report.crash:
        rows.append(ROW.format(report.op, "-", "-", "-", "-", "-", "-", f"FAILED: {report.crash}"))
    if report.inconclusive:
        rows.append(ROW.format(report.op, "-", "-", "-", "-", "-", "-", f"NOT CHECKED: {report.inconclusive}"))
    return rows


def _check_ops(kind: str) -> list[str]:
    """Check each op the device kind has, print its rows, remember its verdict; the failures' lines."""
    failures = []
    for op in native_build.OPS:
        if kind == "cuda" and op in native_build.CPU_ONLY_OPS:
            continue
        try:
            result = native_build.build(op, kind)
        except native_build.BuildError as e:
            print(ROW.format(op, "-", "-", "-", "-", "-", "-", f"unavailable: {str(e).splitlines()[0]}"))
            continue
        report = op_check.run_check(result)
        if not report.inconclusive:
            op_check.remember(result, report)
        for row in _op_rows(report):
            print(row)
        if report.inconclusive:
            failures.append(f"{op}: not checked: {report.inconclusive}")
        elif not report.ok:
            failures.append(f"{op}: {report.error}; the reference runs instead "
                            f"(verdict in {op_check.record_path(result)})")
    return failures


def _check_networks(kind: str) -> list[str]:
    """Print the network rows (generator forwards, training step); the failures' lines."""
    failures = []
    for net in network_check.check_networks(torch.device(kind)):
        training = net.tolerance == network_check.TRAINING_TOLERANCE
        errors = ("-", f"{net.error:.1e}", "-") if training else (f"{net.error:.1e}", "-", "-")
        verdict = "ok" if net.ok else f"FAILED (tolerance {net.tolerance:.0e})"
        print(ROW.format(net.name, "float32", *errors, _ms(net.native_s), _ms(net.ref_s), verdict))
        if not net.ok:
            failures.append(f"{net.name}: error {net.error:.1e} (tolerance {net.tolerance:.0e})")
    return failures


def run_check(args: argparse.Namespace) -> int:
    """The whole comparison on one device; 0 if everything matches, 1 otherwise."""
    kind = _device_kind(getattr(args, "device", None))
    if kind is None:
        return 1
    if native_build.ops_mode() == "ref":
        print(f"${native_build.ENV_MODE}=ref turns the native ops off; checking them anyway")
    print(f"checking {op_check.device_name(kind)}: native vs reference ops, max |error| / max |reference| "
          f"(training step: relative L2 error of all the gradients, R1 and path length included)")
    print(ROW.format("check", "dtype", "forward", "1st deriv", "2nd deriv", "native", "reference", "result"))
    failures = _check_ops(kind)
    failures += _check_networks(kind)
    for line in failures:
        print(f"FAILED {line}")
    return 1 if failures else 0
