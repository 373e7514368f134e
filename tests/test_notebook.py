"""The Colab notebook cannot rot silently: it is what notebooks/make_notebook.py writes, it names the repository
that pyproject.toml names, every code cell compiles and every sa.<name> exists, and it runs top to bottom on the
CPU (quick settings) without one error line, each interactive callback drawing what it should."""
from __future__ import annotations

import ast
import base64
import importlib.util
import io
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stylegan_anime as sa

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "stylegan_anime.ipynb"
# CI runs the whole notebook, kernel start included, on a CPU in at most 3 minutes.
TIME_BUDGET_S = 180
ERROR_LINE = re.compile(r"error:|Traceback", re.IGNORECASE)


def make_notebook():
    spec = importlib.util.spec_from_file_location("make_notebook", ROOT / "notebooks" / "make_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def python_of(cell: str) -> str:
    """The cell with IPython shell (!) and magic (%) lines made `pass` at their indentation: not Python, but
    they may be the body of an if."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("!", "%"))
                     else line for line in cell.splitlines())


def test_notebook_is_what_make_notebook_writes():
    pytest.importorskip("nbformat")
    pytest.importorskip("tomllib")  # make_notebook reads pyproject.toml with it (Python 3.11+)
    assert NOTEBOOK.read_text() == make_notebook().text(), \
        "notebooks/stylegan_anime.ipynb is stale: run python notebooks/make_notebook.py"


def test_install_cell_names_pyprojects_repository():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Repository"]
    install = code_cells()[0]
    assert re.findall(r'^REPO = "([^"]+)"', install, re.MULTILINE) == [url]
    assert 'git+{REPO}"' in install
    # named once: nowhere else in the notebook
    assert NOTEBOOK.read_text().count(url) == 1


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
    assert {"load", "generate_images", "edit_grid", "project", "prompt_labels"} <= used


def test_shell_lines_use_existing_commands():
    from stylegan_anime.cli import command_modules
    commands = {n.replace("_", "-") for n in command_modules()}
    for cell in code_cells():
        for line in cell.splitlines():
            words = line.lstrip().lstrip("!").split()
            if line.lstrip().startswith("!") and words[0] == "stylegan-anime":
                assert words[1] in commands, line


# ------------------------------------------------------------------------------------------ running it

# Appended after the notebook's own cells, each its own cell so that its display is its output. They call
# every @interact callback with values that are not the sliders' defaults.
CHECK_CELLS = {
    "facts": """import json, stylegan_anime
print(json.dumps({"package": stylegan_anime.__file__, "resolution": G.img_resolution, "quick": QUICK,
                  "frames": FRAMES, "projection_steps": PROJECTION_STEPS}))""",
    # psi = 0 puts every seed on the average w: two seeds, one picture
    "truncation_17": "show_truncation(seed=17, psi=0.0)",
    "truncation_18": "show_truncation(seed=18, psi=0.0)",
    "truncation_3": "show_truncation(seed=3, psi=0.7)",
    "edit_0": "show_edit(seed=3, tags='glasses', keep='', strength=0.0)",
    "edit_2": "show_edit(seed=3, tags='glasses', keep='', strength=2.5)",
    # the bundled network is conditional: the prompt box steers it, the same seed under two prompts
    "prompt_blonde": "show_prompt('long blonde hair, glasses', seed=5)",
    "prompt_black": "show_prompt('short black hair, no glasses', seed=5)",
}


def kernel_env(work: Path) -> dict[str, str]:
    """The notebook runs on this checkout without installing anything: the kernel imports it through
    PYTHONPATH, and its `!stylegan-anime` lines find a stand-in command first on PATH that runs this
    checkout's CLI with the test's Python (the console script may belong to another install)."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "stylegan-anime"
    cli.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stylegan_anime.cli "$@"\n')
    cli.chmod(0o755)
    env = dict(os.environ)
    env.update(STYLEGAN_ANIME_NOTEBOOK_QUICK="1", STYLEGAN_ANIME_NOTEBOOK_INSTALL="skip",
               PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]))
    return env


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """(notebook with outputs, its folder, wall time in s, {check cell name: cell})."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    work = tmp_path_factory.mktemp("notebook")
    run_dir = work / "run"
    run_dir.mkdir()
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    checks = {}
    for name, src in CHECK_CELLS.items():
        checks[name] = nbformat.v4.new_code_cell(src)
        nb.cells.append(checks[name])
    # allow_errors: run every cell and report all the failures, not only the first
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=TIME_BUDGET_S, allow_errors=True,
                                     resources={"metadata": {"path": str(run_dir)}})
    # No stand-in for the Output widget (which @interact draws into): nbclient's answers to it go out on the
    # shell channel while it awaits the cell's reply there, and now and then that reply is then seen only when
    # the cell's timeout runs out (a 180 s stall after the truncation slider's cell here; cf. nbclient#312).
    # Without it the callbacks' pictures simply land in the cell's outputs.
    client.widget_registry = {}
    start = time.perf_counter()
    client.execute(env=kernel_env(work))
    wall = time.perf_counter() - start
    nbformat.write(nb, str(run_dir / "executed.ipynb"))  # to look at when a check fails
    print(f"\nthe notebook ran in {wall:.0f} s")
    return nb, run_dir, wall, checks


def displayed(cell, mime: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(o["data"][mime])))
            for o in cell.get("outputs", []) if mime in o.get("data", {})]


def facts(executed) -> dict:
    text = "".join(o.get("text", "") for o in executed[3]["facts"].outputs if o["output_type"] == "stream")
    return json.loads(text)


def test_notebook_runs_without_an_error_line_within_budget(executed):
    nb, _, wall, _ = executed
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                problems.append(f"cell {i}: {out['ename']}: {out['evalue']}")
            elif out["output_type"] == "stream":
                problems += [f"cell {i} ({out['name']}): {line}" for line in out["text"].splitlines()
                             if ERROR_LINE.search(line)]
    assert not problems, "\n".join(problems)
    assert wall <= TIME_BUDGET_S, f"the notebook took {wall:.0f} s, over the {TIME_BUDGET_S} s budget"


def test_notebook_ran_this_checkout_quick_without_installing(executed):
    nb = executed[0]
    f = facts(executed)
    assert Path(f["package"]).resolve().is_relative_to(ROOT) and f["quick"] is True
    install = next(c for c in nb.cells if c.cell_type == "code")
    assert "%pip install" in install.source and install.outputs == []  # %pip would have printed


def test_truncation_callback(executed):
    checks, res = executed[3], facts(executed)["resolution"]
    (a,), (b,), (c,) = (displayed(checks[k], "image/png") for k in ("truncation_17", "truncation_18", "truncation_3"))
    assert a.size == b.size == c.size == (res, res)
    assert np.array_equal(np.asarray(a), np.asarray(b)), "psi = 0 should give every seed the average face"
    assert np.abs(np.asarray(a, float) - np.asarray(c, float)).mean() > 2


def test_edit_callback(executed):
    checks, res = executed[3], facts(executed)["resolution"]
    (plain,), (still,), (edited,) = (displayed(checks[k], "image/png") for k in ("truncation_3", "edit_0", "edit_2"))
    assert still.size == edited.size == (res, res)
    # strength 0 leaves seed 3 as the truncation slider draws it; 2.5 standard deviations move it
    assert np.abs(np.asarray(still, float) - np.asarray(plain, float)).max() <= 2
    assert np.abs(np.asarray(edited, float) - np.asarray(still, float)).mean() > 1


def test_prompt_callback(executed):
    res = facts(executed)["resolution"]
    (blonde,), (black,) = (displayed(executed[3][k], "image/png") for k in ("prompt_blonde", "prompt_black"))
    assert blonde.size == black.size == (res, res)
    assert np.abs(np.asarray(blonde, float) - np.asarray(black, float)).mean() > 5


def gif_frames(image: Image.Image) -> int:
    return getattr(image, "n_frames", 1)


def test_gifs_have_their_frames(executed):
    nb, run_dir, _, _ = executed
    f = facts(executed)
    res = f["resolution"]
    shown = {src: displayed(cell, "image/gif") for cell in nb.cells if cell.cell_type == "code"
             for src in ("walk.gif", "projection.gif") if f'"{src}"' in cell.source}
    (walk,), (projection,) = shown["walk.gif"], shown["projection.gif"]
    assert walk.size == (256, 256) and gif_frames(walk) == f["frames"]
    # target | projection side by side, one frame per step
    assert projection.size == (2 * res, res) and gif_frames(projection) == f["projection_steps"]
    assert gif_frames(Image.open(run_dir / "walk.gif")) == f["frames"]


def test_fine_tune_wrote_a_snapshot(executed):
    _, run_dir, _, _ = executed
    assert list((run_dir / "runs" / "mine").glob("snapshot-*.safetensors"))
    assert len(list((run_dir / "my_pictures").glob("*.png"))) == 32
