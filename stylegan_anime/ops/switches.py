"""Process-wide switches: a mode read from an environment variable, which Python code can override
for the process (``set``) or for a block (``use``). The native-op mode (``$STYLEGAN_ANIME_OPS``) and
the Winograd mode (``$STYLEGAN_ANIME_WINOGRAD``) are two of them. No imports beyond the standard
library: ``native_build.py`` also runs stand-alone."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class Switch:
    """``env``: the variable; ``choices``: its values, the first being the default; ``what``: its name
    in messages ("ops mode")."""

    env: str
    choices: tuple[str, ...]
    what: str
    _override: list[str | None] = field(default_factory=lambda: [None])

    def get(self) -> str:
        """The Python override, else the environment, else the default; ValueError on a bad value."""
        mode = self._override[0] or os.environ.get(self.env, "").strip().lower() or self.choices[0]
        if mode not in self.choices:
            raise ValueError(f"{self.env}={mode!r}: expected one of {', '.join(self.choices)}")
        return mode

    def set(self, mode: str | None) -> None:
        """Override for this process; None goes back to the environment."""
        if mode is not None and mode not in self.choices:
            raise ValueError(f"{self.what} must be one of {', '.join(self.choices)}, got {mode!r}")
        self._override[0] = mode

    @property
    def override(self) -> str | None:
        return self._override[0]

    @contextlib.contextmanager
    def use(self, mode: str | None) -> Iterator[None]:
        """``with switch.use("ref"): ...``: the block runs with ``mode`` (None: the environment's)."""
        previous = self._override[0]
        self.set(mode)
        try:
            yield
        finally:
            self._override[0] = previous
