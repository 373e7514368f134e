"""Harness for the fuzz corpus of hostile and broken inputs (issue "hostile inputs").

Each case is a callable that feeds one bad input to a reader (a file loader, a download, the data set
tool, ...). ``refused`` runs it and asserts what every reader promises:
- it raises ``UserError`` whose message is one line (the CLI prints it with exit code 2),
- no other exception escapes (no traceback),
- it returns within ``timeout_s`` (SIGALRM: a hang in Python code, e.g. a repr of a billion-laughs
  structure, is interrupted and reported),
- resident memory grows by at most ``rss_budget_mib`` while it runs (sampled every 5 ms),
- for pickles, the attacker's marker file does not exist afterwards.

``corpus_counts`` collects tried / refused / executed per area for the README's safety section
(``pytest -s`` prints them).
"""
from __future__ import annotations

import collections
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from stylegan_anime.errors import UserError

COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@contextmanager
def peak_rss_growth() -> Iterator[list[float]]:
    """Yields a one-element list that holds, after the block, the peak RSS growth in MiB."""
    base, peak, done = rss_mib(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib() - base)
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        done.set()
        t.join()
        peak[0] = max(peak[0], rss_mib() - base)


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refused(area: str, call: Callable[[], object], *, rss_budget_mib: float = 512, timeout_s: float = 20,
            marker: Path | None = None, match: str | None = None) -> str:
    """Run ``call`` (one hostile input); assert it is refused as promised; return the message."""
    COUNTS[area]["tried"] += 1
    try:
        with peak_rss_growth() as peak, time_limit(timeout_s):
            call()
    except UserError as e:
        message = str(e)
    except Hang as e:
        pytest.fail(f"{area}: hang: {e}")
    except Exception as e:  # noqa: BLE001 - the point: anything else is a traceback for the user
        pytest.fail(f"{area}: {type(e).__name__} escaped instead of a UserError: {e}"[:500])
    else:
        pytest.fail(f"{area}: accepted a hostile input")
    executed = marker is not None and marker.exists()
    COUNTS[area]["executed" if executed else "refused"] += 1
    assert not executed, f"{area}: the payload ran ({marker} exists)"
    assert "\n" not in message.strip(), f"{area}: the message is not one line: {message!r}"
    assert peak[0] <= rss_budget_mib, f"{area}: RSS grew by {peak[0]:.0f} MiB (budget {rss_budget_mib} MiB)"
    if match is not None:
        assert match.lower() in message.lower(), f"{area}: {message!r} does not name {match!r}"
    return message


def corpus_counts() -> dict[str, dict[str, int]]:
    return {area: dict(c) for area, c in sorted(COUNTS.items())}
