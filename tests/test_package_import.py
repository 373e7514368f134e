"""``import stylegan_anime as sa``: every public name resolves to what its module defines, and the import
itself loads none of the heavy or unrelated modules (they come on first use)."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import stylegan_anime as sa

STUB = Path(sa.__file__).with_name("__init__.pyi")


def _stub_names() -> dict[str, str]:
    """name → the module (absolute) that the stub imports it from."""
    names = {}
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = "stylegan_anime" + (f".{node.module}" if node.module else "")
            names.update({a.name: base for a in node.names})
    return names


def test_every_public_name_is_the_object_its_module_defines():
    names = _stub_names()
    assert sorted(names) == sa.__all__ and len(names) > 50
    for name, module in names.items():
        owner = importlib.import_module(module)
        expected = getattr(owner, name) if hasattr(owner, name) else importlib.import_module(f"{module}.{name}")
        assert getattr(sa, name) is expected, name
    assert sa.hub is importlib.import_module("stylegan_anime.io.hub")


def test_loading_and_generating_load_no_training_export_app_or_download_libraries(tmp_path):
    """A process that loads a model file and generates imports what that takes, not the rest."""
    code = f"""
import sys, importlib.util
import torch
import stylegan_anime as sa
real = lambda m: m in sys.modules and not isinstance(sys.modules[m], importlib.util._LazyModule)
heavy = ("requests", "urllib3", "PIL.Image", "stylegan_anime.training.loop", "stylegan_anime.export.onnx_export",
         "stylegan_anime.app.ui", "stylegan_anime.editing.projection", "stylegan_anime.metrics.evaluate")
loaded = [m for m in heavy + ("stylegan_anime.networks",) if real(m)]
G = sa.Generator(sa.GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8))
sa.save(G, {str(tmp_path / "g.safetensors")!r})
G = sa.load({str(tmp_path / "g.safetensors")!r})
assert G(sa.seeds_to_z([1], G.z_dim)).shape == (1, 3, 8, 8)
loaded += [m for m in heavy if real(m)]
print(",".join(loaded))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
