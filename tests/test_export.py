"""ONNX export and the browser page (issue 23): onnxruntime against PyTorch, and the exported page in
Debian's chromium (Playwright, no browser download) against Python, pixel for pixel within 2/255.

The dynamo exporter takes ~20 s per network, so the default network is exported once (through the
CLI, --onnx and --web together) and every test here reads that one export."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.errors import UserError
from stylegan_anime.editing.tags import seed_labels
from stylegan_anime.export import onnx_export, web_page
from stylegan_anime.features.interpolation import slerp
from stylegan_anime.networks import Generator

from conftest import randomize_buffers, small_g_config

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
CHROMIUM = Path("/usr/bin/chromium")


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def default_G() -> Generator:
    return sa.load("default")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, default_G):
    """(path of model.onnx, web folder) for the default network, made by the CLI."""
    root = tmp_path_factory.mktemp("export")
    assert main(["export", "--network", "default", "--onnx", str(root / "g.onnx"), "--web", str(root / "web")]) == 0
    return root / "g.onnx", root / "web"


def test_onnx_matches_pytorch_for_seeds_psi_and_batch_sizes(exported, default_G):
    model = onnx.load(str(exported[0]))
    assert {n.domain for n in model.graph.node} <= {""}  # standard operators only: no custom op
    assert model.opset_import[0].version >= 17
    session = ort.InferenceSession(str(exported[0]))
    assert [i.name for i in session.get_inputs()] == (["z", "c", "psi"] if default_G.c_dim else ["z", "psi"])
    for seeds, psi in [([0], 0.7), ([1, 2, 3], 1.0), ([7, 42, 1000, 2**32 - 1], 0.5)]:
        z = sa.seeds_to_z(seeds, default_G.z_dim)
        c = seed_labels(default_G, seeds) if default_G.c_dim else None
        feeds = {"z": z.numpy(), "psi": np.array(psi, dtype=np.float32)}
        if c is not None:
            feeds["c"] = c.numpy()
        out = session.run(None, feeds)[0]
        with torch.no_grad():
            ref = default_G(z, c, psi=psi).numpy()
        assert out.shape == (len(seeds), 3, 64, 64)
        assert rel_err(out, ref) <= 1e-4, (seeds, psi)


LABELS = ["red hair", "smile", "glasses"]


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """(G, model.onnx, web folder) of a small conditional network with named labels, via the CLI."""
    root = tmp_path_factory.mktemp("cond")
    torch.manual_seed(3)
    G = randomize_buffers(Generator(small_g_config(img_resolution=16, c_dim=3))).eval()
    G.cfg.extra["label_names"] = json.dumps(LABELS)
    net = sa.save(G, root / "cond.safetensors")
    assert main(["export", "--network", str(net), "--onnx", str(root / "c.onnx"), "--web", str(root / "web")]) == 0
    return G, root / "c.onnx", root / "web"


def test_conditional_network_matches_pytorch(conditional):
    G, path, web = conditional
    session = ort.InferenceSession(str(path))
    assert [(i.name, len(i.shape)) for i in session.get_inputs()] == [("z", 2), ("c", 2), ("psi", 0)]
    images = []
    for seeds, c, psi in [([5, 6, 7], torch.eye(3), 0.6), ([5, 6, 7], torch.tensor([[1.0, 1, 0]] * 3), 1.0),
                          ([8, 9], torch.eye(3)[[2, 0]], 0.3)]:
        z = sa.seeds_to_z(seeds, G.z_dim)
        got = session.run(None, {"z": z.numpy(), "c": c.numpy(), "psi": np.array(psi, dtype=np.float32)})[0]
        with torch.no_grad():
            ref = G(z, c, psi=psi).numpy()
        assert rel_err(got, ref) <= 1e-4
        images.append(got)
    assert np.abs(images[0] - images[1]).max() > 0.05  # the labels reach the graph
    assert json.loads((web / "model.json").read_text())["label_names"] == LABELS


def test_fixed_batch(tmp_path, small_G):
    data = onnx_export.to_onnx_bytes(small_G, onnx_export.OnnxExportConfig(dynamic_batch=False, batch=2))
    session = ort.InferenceSession(data)
    assert [i.shape for i in session.get_inputs()] == [[2, 32], []]
    z = sa.seeds_to_z([1, 2], small_G.z_dim)
    got = session.run(None, {"z": z.numpy(), "psi": np.array(0.8, dtype=np.float32)})[0]
    with torch.no_grad():
        assert rel_err(got, small_G(z, psi=0.8).numpy()) <= 1e-4
    with pytest.raises(Exception):  # a fixed batch is fixed
        session.run(None, {"z": z[:1].numpy(), "psi": np.array(1, dtype=np.float32)})


def test_web_folder_holds_the_page_model_and_runtime(exported, default_G):
    onnx_path, web = exported
    assert {"index.html", "app.js", "seed_random.js", "model.onnx", "model.json"} <= {p.name for p in web.iterdir()}
    assert (web / "model.onnx").read_bytes() == onnx_path.read_bytes()
    info = json.loads((web / "model.json").read_text())
    assert (info["z_dim"], info["c_dim"], info["resolution"]) == (default_G.z_dim, default_G.c_dim, 64)
    html = (web / "index.html").read_text()
    assert f'src="{info["ort_base"]}ort.wasm.min.js"' in html
    if web_page.find_ort_web() is not None:
        assert info["ort_base"] == "ort/"
        assert all((web / "ort" / f).is_file() for f in web_page.ORT_FILES)
    else:
        assert info["ort_base"] == web_page.ORT_CDN


def test_nonempty_folder_is_refused_unless_forced(tmp_path, default_G, capsys):
    target = tmp_path / "site"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert main(["export", "--web", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err and "--force" in err
    assert (target / "keep.txt").read_text() == "mine"
    web_page.export_web(default_G, target, force=True, onnx_bytes=b"stand-in", ort_web=None)
    assert not (target / "keep.txt").exists() and (target / "model.onnx").read_bytes() == b"stand-in"


def test_what_cannot_be_exported_is_named(small_G, capsys):
    class PatchedLayer(type(small_G.synthesis.b8.conv1)):
        pass
    small_G.synthesis.b8.conv1.__class__ = PatchedLayer
    with pytest.raises(UserError, match=r"synthesis\.b8\.conv1 of type PatchedLayer"):
        onnx_export.check_exportable(small_G)
    G = Generator(small_g_config(w_avg_beta=None))
    with pytest.raises(UserError, match="w_avg"):
        onnx_export.check_exportable(G)
    assert main(["export", "--network", "default"]) == 2
    assert "--onnx" in capsys.readouterr().err


def test_an_exporter_failure_is_one_line(small_G, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Unsupported: aten::weird_op\n" + "   at a very long trace\n" * 50)
    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(UserError) as info:
        onnx_export.to_onnx_bytes(small_G)
    assert str(info.value) == "torch's ONNX exporter could not express this network: Unsupported: aten::weird_op"


# --------------------------------------------------------------------------- the page in chromium


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; scripts/setup_browser.sh)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(exported, conditional, tmp_path_factory):
    """URLs on 127.0.0.1 of the exported page, of a copy whose model.onnx is missing, of the
    conditional network's page, and of a copy whose model.onnx is garbage."""
    from stylegan_anime.export.web_server import start_server
    broken = tmp_path_factory.mktemp("broken") / "web"
    shutil.copytree(exported[1], broken)
    (broken / "model.onnx").unlink()
    corrupt = broken.parent / "corrupt"
    shutil.copytree(exported[1], corrupt)
    (corrupt / "model.onnx").write_bytes(b"not an onnx model")
    servers = [start_server(d) for d in (exported[1], broken, conditional[2], corrupt)]
    yield [f"http://127.0.0.1:{s.server_port}/" for s in servers]
    for s in servers:
        s.shutdown()


def page_labels(G, n: int) -> torch.Tensor | None:
    """The labels the page starts with: its first attribute box ticked, the others not."""
    if not G.c_dim:
        return None
    c = torch.zeros([n, G.c_dim])
    c[:, 0] = 1
    return c


def open_page(browser, url):
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=120_000)
    page.evaluate("window.saPage.ready")  # the first grid and the interpolation strip are drawn
    return page


def canvas_tiles(page, canvas_id: str, count: int, per_row: int, r: int) -> np.ndarray:
    """The first ``count`` r×r tiles of a canvas as uint8 [count, r, r, 3]."""
    flat = page.evaluate(f"""() => {{ const c = document.getElementById('{canvas_id}');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }}""")
    width = per_row * r
    rgba = np.array(flat, dtype=np.uint8).reshape(-1, width, 4)[..., :3]
    return np.stack([rgba[(i // per_row) * r:(i // per_row + 1) * r, (i % per_row) * r:(i % per_row + 1) * r]
                     for i in range(count)])


def test_browser_z_equals_numpy_for_100_seeds(browser, served):
    page = open_page(browser, served[0])
    seeds = list(range(100)) + [123456789, 2**31, 2**32 - 1]
    got = np.array(page.evaluate("(s) => s.map((x) => Array.from(SeedRandom.seedToZ(x, 512)))", seeds),
                   dtype=np.float64)
    expected = np.stack([np.random.RandomState(s).randn(512) for s in seeds]).astype(np.float32)
    np.testing.assert_array_equal(got.astype(np.float32), expected)
    page.close()


def test_browser_draws_the_python_images(browser, served, default_G):
    page = open_page(browser, served[0])
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    with torch.no_grad():
        expected = sa.to_uint8(default_G(sa.seeds_to_z([0, 1, 2, 3], default_G.z_dim), page_labels(default_G, 4),
                                         psi=0.7)).numpy()
    got = canvas_tiles(page, "grid", 4, 3, 64)
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 2, f"max difference {diff.max()}/255"

    # The interpolation strip: seed 0 to seed 1 along sa's slerp, frames at t = 0, 0.2, ... 1.
    z = sa.seeds_to_z([0, 1], default_G.z_dim)
    t = torch.linspace(0, 1, 6)
    with torch.no_grad():
        frames = sa.to_uint8(default_G(slerp(z[:1].expand(6, -1), z[1:].expand(6, -1), t), page_labels(default_G, 6),
                                       psi=0.7)).numpy()
    assert np.abs(canvas_tiles(page, "interp", 6, 6, 64).astype(int) - frames.astype(int)).max() <= 2

    page.evaluate("window.saPage.drawGrid()")  # warm now: time a second grid
    timing = page.evaluate("window.saPage.lastTiming")
    print(f"\nbrowser: {timing['msPerImage']:.1f} ms per image (batch {timing['images']}, "
          f"WebAssembly, {timing['threads']} threads)")
    assert timing["threads"] == 2  # the server makes the page cross-origin isolated
    page.close()


@pytest.mark.parametrize("which, words", [(1, ["model.onnx", "404"]), (3, ["Could not load the model"])])
def test_browser_says_when_the_model_is_missing_or_broken(browser, served, which, words):
    page = open_page(browser, served[which])
    assert page.evaluate("document.body.dataset.state") == "error"
    status = page.inner_text("#status")
    assert all(w in status for w in words), status
    assert page.evaluate("getComputedStyle(document.getElementById('status')).color") == "rgb(176, 0, 32)"
    painted = page.evaluate("""() => { const c = document.getElementById('grid');
        return Array.from(c.getContext('2d').getImageData(0, 0, 4, 4).data).some((v) => v > 0); }""")
    assert painted  # a message, not a blank canvas
    page.close()


def test_browser_attribute_controls_steer_like_labels(browser, served, conditional):
    G = conditional[0]
    page = open_page(browser, served[2])
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    assert page.inner_text("#attributes").split() == " ".join(LABELS).split()
    page.fill("#seed", "10")
    page.check("#attributes input[data-index='2']")  # labels now [1, 0, 1]: the first is on by default
    page.wait_for_function("document.body.dataset.state === 'done'")
    page.evaluate("window.saPage.drawGrid()")
    c = torch.tensor([[1.0, 0, 1]]).expand(9, -1)
    with torch.no_grad():
        expected = sa.to_uint8(G(sa.seeds_to_z(list(range(10, 19)), G.z_dim), c, psi=0.7)).numpy()
    got = canvas_tiles(page, "grid", 9, 3, 16)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    page.close()
