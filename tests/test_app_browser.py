"""The studio in Debian's chromium (Playwright, no browser download), served on 127.0.0.1 only:
roll with attributes, keep, restart the server, find the favourite, morph, merge, animate; a bad
tag shows a message in the page. Screenshots go to tests' tmp folder (and docs/images by hand)."""
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
SERVER = Path(__file__).with_name("app_server.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port, db):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port), str(db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the studio did not start")


def _images(page, elem, count, timeout=60):
    """Wait for ``count`` images in gallery ``elem``; return them as PIL images (fetched from the page)."""
    loc = page.locator(f"#{elem} img")
    deadline = time.time() + timeout
    while loc.count() < count and time.time() < deadline:
        time.sleep(0.2)
    assert loc.count() >= count, f"{elem}: {loc.count()} images, wanted {count}"
    srcs = [loc.nth(i).get_attribute("src") for i in range(count)]
    return [Image.open(io.BytesIO(page.request.get(s).body())).convert("RGB") for s in srcs]


def _tab(page, name):
    page.get_by_role("tab", name=name).click()


def test_studio_in_chromium(tmp_path):
    db, shots = tmp_path / "fav.sqlite", tmp_path / "shots"
    shots.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = _serve(port, db)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(url)
            page.locator("#prompt textarea").fill("green hairr")
            page.locator("#roll").click()
            page.get_by_text("not understood").first.wait_for(timeout=30000)  # a message, not a traceback
            assert "Traceback" not in page.content()
            page.locator("#prompt textarea").fill("blonde hair")
            page.locator("#attr-glasses input").check()  # an attribute checkbox joins the prompt
            page.locator("#roll").click()
            rolled = _images(page, "rolled", 8)
            assert all(im.size == (64, 64) for im in rolled)
            assert page.get_by_text("glasses", exact=False).count() > 1  # the captions name it too
            page.screenshot(path=str(shots / "roll.png"), full_page=True)
            page.locator("#keep-name textarea").fill("Alice")
            page.locator("#keep").click()
            page.get_by_text("kept #1").wait_for(timeout=30000)
            page.locator("#keep-idx input").fill("2")
            page.locator("#keep-name textarea").fill("Bea")
            page.locator("#keep").click()
            page.get_by_text("kept #2").wait_for(timeout=30000)
        finally:
            server.terminate()
            server.wait(30)
        server = _serve(port, db)  # restart: the favourites must still be there
        try:
            page.goto(url)
            _tab(page, "Favourites")
            page.get_by_text("2 favourites").wait_for(timeout=30000)
            favs = _images(page, "favs", 2)
            assert [im.size for im in favs] == [(128, 128)] * 2
            page.screenshot(path=str(shots / "favourites.png"), full_page=True)
            _tab(page, "Morph")
            page.locator("#morph-id input").fill("1")
            page.locator("#morph-prompt textarea").fill("pink hair")
            page.locator("#morph").click()
            strip = _images(page, "morph-strip", 5)
            assert strip[0].tobytes() != strip[-1].tobytes() and strip[-1].size == (64, 64)
            assert strip[0].tobytes() == rolled[0].tobytes()  # the morph starts at the kept character
            page.screenshot(path=str(shots / "morph.png"), full_page=True)
            _tab(page, "Merge")
            page.locator("#merge-a input").fill("1")
            page.locator("#merge-b input").fill("2")
            page.locator("#merge").click()
            [merged] = _images(page, "merged", 1)
            assert merged.size == (64, 64) and merged.tobytes() not in (rolled[0].tobytes(), rolled[1].tobytes())
            page.screenshot(path=str(shots / "merge.png"), full_page=True)
            _tab(page, "Animate")
            page.locator("#anim-ids textarea").fill("1, 2")
            page.locator("#anim-frames input[type=number]").fill("4")
            page.locator("#animate").click()
            link = page.locator("#anim-file a").first
            link.wait_for(timeout=60000)
            with page.expect_download() as dl:
                link.click()
            gif = Image.open(dl.value.path())
            assert gif.size == (64, 64) and gif.n_frames == 8
            page.screenshot(path=str(shots / "animate.png"), full_page=True)
            _tab(page, "Project")
            rolled[0].save(tmp_path / "picture.png")
            page.locator("#proj-image input[type=file]").set_input_files(str(tmp_path / "picture.png"))
            page.locator("#proj-steps input[type=number]").fill("10")
            page.locator("#project").click()
            page.get_by_text("PSNR").wait_for(timeout=120000)
            [found] = _images(page, "proj-out", 1)
            assert found.size == (64, 64)
            page.locator("#proj-keep").click()
            page.get_by_text("kept #3").wait_for(timeout=30000)
            page.screenshot(path=str(shots / "project.png"), full_page=True)
        finally:
            browser.close()
            server.terminate()
            server.wait(30)
