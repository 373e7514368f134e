"""Where the files bundled with the package are: the repository's top-level ``weights/`` and
``ops/``. A built wheel carries them as ``stylegan_anime/_bundled/<folder>`` (see setup.py); a
checkout or an editable install reads them where they are. Standard library only: the native
build, which also runs stand-alone, finds its sources here."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def bundled_dir(folder: str) -> Path:
    """``folder`` in {"weights", "ops"} → its directory (the installed copy when there is one)."""
    installed = PACKAGE_DIR / "_bundled" / folder
    return installed if installed.is_dir() else PACKAGE_DIR.parent / folder
