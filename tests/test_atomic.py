"""Atomic writes: all or nothing, and the result is an ordinary file people can open."""
from __future__ import annotations

import os
import stat
import tempfile

import pytest

from stylegan_anime.io.atomic import atomic_dir, atomic_path


def test_a_written_file_gets_the_usual_permissions_and_no_temp_files_remain(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.png") as tmp:
            tmp.write_bytes(b"x")
        with atomic_path(tmp_path / "b.bin") as tmp:  # a writer that swaps in its own private temp file
            fd, other = tempfile.mkstemp(dir=tmp_path)
            os.close(fd)
            os.replace(other, tmp)
        with atomic_dir(tmp_path / "d") as d:
            (d / "f").write_bytes(b"y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.bin", "d"]


def test_a_failed_write_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
