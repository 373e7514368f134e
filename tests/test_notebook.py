"""The Colab notebook cannot rot silently: valid nbformat v4, every code cell compiles, every sa.<name> exists."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import stylegan_anime as sa

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "stylegan_anime.ipynb"


def code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def python_of(cell: str) -> str:
    """The cell without IPython shell (!) and magic (%) lines, which are not Python."""
    return "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in cell.splitlines())


def test_notebook_is_valid_nbformat_v4():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and len(code_cells()) >= 8


def test_every_code_cell_compiles():
    for i, cell in enumerate(code_cells()):
        compile(python_of(cell), f"{NOTEBOOK.name}[code cell {i}]", "exec")


def test_every_sa_name_exists():
    used = set()
    for cell in code_cells():
        for node in ast.walk(ast.parse(python_of(cell))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sa":
                used.add(node.attr)
    missing = sorted(n for n in used if not hasattr(sa, n))
    assert not missing, f"the notebook uses sa.{', sa.'.join(missing)}, which stylegan_anime does not have"
    assert {"load", "generate_images", "edit_grid", "project", "tag_labels"} <= used


def test_shell_lines_use_existing_commands():
    from stylegan_anime.cli import command_modules
    commands = {n.replace("_", "-") for n in command_modules()}
    for cell in code_cells():
        for line in cell.splitlines():
            words = line.lstrip().lstrip("!").split()
            if line.lstrip().startswith("!") and words[0] == "stylegan-anime":
                assert words[1] in commands, line
