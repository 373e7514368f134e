"""``export --web DIR``: a static folder that generates from seeds in the browser.

DIR holds ``index.html``, ``app.js`` and ``seed_random.js`` (package data, ``export/web/``), the
generator as ``model.onnx``, ``model.json`` (its sizes and label names) and onnxruntime-web's
WebAssembly build: copied from a local npm install of ``onnxruntime-web`` when there is one, else
loaded from its public CDN.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from ..errors import UserError
from ..io.atomic import atomic_dir
from ..networks import Generator
from .onnx_export import OnnxExportConfig, require_onnx, to_onnx_bytes

ORT_WEB_VERSION = "1.31.1"  # the version the browser test ran; the CDN copy is pinned to it
ORT_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
# The wasm-only build of onnxruntime-web: its loader script, the threaded SIMD module and its worker.
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
PAGE_FILES = ("index.html", "app.js", "seed_random.js")
ORT_ENV = "STYLEGAN_ANIME_ORT_WEB"  # a node_modules/onnxruntime-web folder to vendor from
NPM_CACHE = Path.home() / ".cache" / "stylegan-anime-npm"


@dataclass(frozen=True)
class ModelInfo:
    """What the page needs to know about the model (written as model.json)."""

    name: str
    model: str
    z_dim: int
    c_dim: int
    resolution: int
    label_names: list[str]
    ort_base: str


@dataclass(frozen=True)
class WebExport:
    """The result of ``export_web``: where it went and where onnxruntime-web comes from."""

    directory: Path
    ort_source: str  # the vendored package folder, or the CDN URL

    @property
    def vendored(self) -> bool:
        return not self.ort_source.startswith("https://")


def find_ort_web() -> Path | None:
    """The local ``onnxruntime-web`` package folder holding ``dist/`` with ORT_FILES, if any:
    $STYLEGAN_ANIME_ORT_WEB, then ~/.cache/stylegan-anime-npm, then ./node_modules."""
    candidates = [Path(p) for p in [os.environ.get(ORT_ENV)] if p]
    candidates += [NPM_CACHE / "node_modules" / "onnxruntime-web", Path("node_modules") / "onnxruntime-web"]
    for folder in candidates:
        if all((folder / "dist" / f).is_file() for f in ORT_FILES):
            return folder
    return None


def label_names(G: Generator) -> list[str]:
    """Names for the page's attribute controls: the network's own, else label 0, label 1, …"""
    if G.c_dim == 0:
        return []
    from ..editing.tags import network_label_names
    try:
        return network_label_names(G)
    except UserError:
        return [f"label {i}" for i in range(G.c_dim)]


def check_target(directory: Path, force: bool) -> None:
    """Refuse a DIR that exists and holds anything, unless ``force``."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise UserError(f"{directory} exists and is not empty (use --force to replace it)")


def export_web(G: Generator, directory: str | Path, name: str = "model", force: bool = False,
               onnx_bytes: bytes | None = None, ort_web: Path | None | str = "auto") -> WebExport:
    """Write the page for G into ``directory`` (replaced as a whole only when complete).

    ``onnx_bytes``: an ONNX export of G made earlier (else made here, with a free batch axis);
    ``ort_web``: the onnxruntime-web package folder to vendor, None for the CDN, "auto" to look."""
    directory = Path(directory)
    check_target(directory, force)
    if G.img_channels != 3:
        raise UserError(f"the page draws RGB images; this network makes {G.img_channels} channel(s)")
    if onnx_bytes is None:
        require_onnx()
    data = onnx_bytes if onnx_bytes is not None else to_onnx_bytes(G, OnnxExportConfig(dynamic_batch=True))
    package = find_ort_web() if ort_web == "auto" else (Path(ort_web) if ort_web is not None else None)
    info = ModelInfo(name=name, model="model.onnx", z_dim=G.z_dim, c_dim=G.c_dim,
                     resolution=G.img_resolution, label_names=label_names(G),
                     ort_base="ort/" if package is not None else ORT_CDN)
    with atomic_dir(directory) as tmp:
        web = resources.files(__package__) / "web"
        for f in PAGE_FILES:
            text = (web / f).read_text(encoding="utf-8")
            if f == "index.html":
                text = text.replace("<!--ORT_SCRIPT-->", f'<script src="{info.ort_base}ort.wasm.min.js"></script>')
            (tmp / f).write_text(text, encoding="utf-8")
        (tmp / info.model).write_bytes(data)
        (tmp / "model.json").write_text(json.dumps(asdict(info), indent=1) + "\n", encoding="utf-8")
        if package is not None:
            (tmp / "ort").mkdir()
            for f in ORT_FILES:
                shutil.copyfile(package / "dist" / f, tmp / "ort" / f)
    return WebExport(directory, str(package) if package is not None else ORT_CDN)
