"""The hub: downloads from a local HTTP server that misbehaves on purpose (drops, ignores Range),
checksums, the cache, the registry and the download / models commands."""
from __future__ import annotations

import hashlib
import json
import lzma
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.io import download as dl
from stylegan_anime.io import hub
from stylegan_anime.cli import main
from stylegan_anime.io.download import ChecksumError, DownloadPolicy
from stylegan_anime.errors import UserError

FAST = DownloadPolicy(retries=3, backoff=0.0, timeout=5.0, chunk_size=4096)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and srv.honour_range:
            start, status = int(m.group(1)), 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if srv.drops > 0:  # send half the body, then hang up mid-transfer
            srv.drops -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        for i in range(0, len(body), 8192):
            self.wfile.write(body[i:i + 8192])
            time.sleep(srv.delay)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.log, srv.drops, srv.honour_range, srv.delay = {}, [], 0, True, 0.0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(hub.CACHE_ENV, str(root))
    monkeypatch.delenv(hub.REGISTRY_ENV, raising=False)
    return root


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in (root / "models").rglob("*") if p.is_file()) if (root / "models").exists() else []


def payload(n: int = 200_000, seed: int = 0) -> bytes:
    """n bytes that pass the download's sniff (a pickle's PROTO opcode first, STOP last), random between."""
    return b"\x80\x04" + np.random.default_rng(seed).integers(0, 256, n - 3, dtype=np.uint8).tobytes() + b"."


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_registry(path: Path, *entries: dict) -> Path:
    base = dict(resolution=32, format="safetensors", licence="test", source="local test")
    path.write_text(json.dumps({"models": [{**base, **e} for e in entries]}))
    return path


def test_a_dropped_connection_resumes_with_range_and_verifies(server, cache):
    data = payload()
    server.files["/m.pkl"] = data
    server.drops = 1
    path = hub.fetch_remote(hub.RemoteFile(server.url + "/m.pkl", "m.pkl", sha256=sha(data), size=len(data)),
                            policy=FAST, progress=False)
    assert path.read_bytes() == data
    assert [r[0] for r in server.log] == ["/m.pkl", "/m.pkl"] and server.log[0][1] is None
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", server.log[1][1]).group(1))
    assert 0 < resumed_at <= len(data) // 2  # asked only for what the first attempt did not get
    assert files_in(cache) == sorted([path, path.with_name("m.pkl.sha256.json")])
    assert json.loads(path.with_name("m.pkl.sha256.json").read_text())["sha256"] == sha(data)


def test_a_server_that_ignores_range_restarts_from_zero(server):
    data = payload(seed=1)
    server.files["/m.pkl"] = data
    server.drops, server.honour_range = 1, False
    path = hub.fetch_remote(hub.RemoteFile(server.url + "/m.pkl", "m.pkl", sha256=sha(data)), policy=FAST,
                            progress=False)
    assert path.read_bytes() == data  # appending the 200 body to the half part would double bytes
    assert server.log[1][1] is not None and server.log[1][1] != "bytes=0-"


@pytest.mark.parametrize("wrong", ["sha256", "size"])
def test_a_wrong_checksum_is_refused_and_leaves_nothing(server, cache, wrong):
    data = payload(seed=2)
    server.files["/m.pkl"] = data
    server.drops = 1  # even a resumed download is checked as a whole
    remote = hub.RemoteFile(server.url + "/m.pkl", "m.pkl", sha256="0" * 64 if wrong == "sha256" else sha(data),
                            size=len(data) + 1 if wrong == "size" else None)
    with pytest.raises(ChecksumError) as e:
        hub.fetch_remote(remote, policy=FAST, progress=False)
    assert "\n" not in str(e.value) and "deleted" in str(e.value)
    assert files_in(cache) == []


def test_offline_is_one_line_with_url_and_cause_after_bounded_backoff(cache, monkeypatch, capsys):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/m.pkl"
    sleeps = []
    monkeypatch.setattr(dl.time, "sleep", sleeps.append)
    assert main(["download", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and url in err and "connection refused" in err
    assert sleeps == [1.0, 2.0, 4.0, 8.0]  # DownloadPolicy(): 4 retries, doubling from 1 s
    assert files_in(cache) == []


def test_http_404_is_not_retried(server):
    with pytest.raises(UserError, match="HTTP 404"):
        hub.fetch(server.url + "/missing.pkl", policy=FAST, progress=False)
    assert len(server.log) == 1


def test_a_url_is_fetched_once_and_loads(server, small_G, tmp_path):
    path = sa.save(small_G, tmp_path / "net.safetensors")
    server.files["/net.safetensors"] = path.read_bytes()
    url = server.url + "/net.safetensors"
    G = sa.load(url)
    expected = small_G.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in G.state_dict().items()) and len(expected) == len(G.state_dict())
    sa.load(url)
    assert len(server.log) == 1
    assert hub.fetch(url) == hub.cached_file(hub.RemoteFile(url, "net.safetensors"))


def test_unpublished_sha_is_pinned_once_it_loads_and_a_corrupted_copy_refetched(server, small_G, tmp_path, capsys):
    data = sa.save(small_G, tmp_path / "net.safetensors").read_bytes()
    server.files["/net.safetensors"] = data
    url = server.url + "/net.safetensors"
    path = hub.fetch(url, policy=FAST, progress=False)
    record = json.loads(path.with_name("net.safetensors.sha256.json").read_text())
    assert record["sha256"] is None and record["unverified_sha256"] == sha(data)  # not trusted before it loads
    assert capsys.readouterr().err == ""
    sa.load(url)
    err = capsys.readouterr().err
    assert f"sha256 {sha(data)} is now recorded" in err and "trust on first use" in err
    assert len(err.strip().splitlines()) == 1
    assert json.loads(path.with_name("net.safetensors.sha256.json").read_text())["sha256"] == sha(data)
    raw = bytearray(path.read_bytes())
    raw[-1000] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert hub.fetch(url, policy=FAST, progress=False).read_bytes() == data
    assert "does not match its recorded sha256" in capsys.readouterr().err
    assert len(server.log) == 2


def test_a_cached_file_that_does_not_load_says_to_use_force_and_is_not_pinned(server, tmp_path):
    server.files["/m.pkl"] = payload(seed=7)  # a pickle by its first and last byte, garbage inside
    url = server.url + "/m.pkl"
    with pytest.raises(UserError) as e:
        sa.load(url)
    assert "\n" not in str(e.value) and f"stylegan-anime download {url} --force" in str(e.value)
    record = json.loads(hub.fetch(url).with_name("m.pkl.sha256.json").read_text())
    assert record["sha256"] is None and len(server.log) == 1


def test_concurrent_fetches_of_one_url_download_it_once(server):
    data = payload(300_000, seed=4)
    server.files["/m.pkl"] = data
    server.delay = 0.002
    remote = hub.RemoteFile(server.url + "/m.pkl", "m.pkl", sha256=sha(data))
    results = []
    threads = [threading.Thread(target=lambda: results.append(hub.fetch_remote(remote, policy=FAST, progress=False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2 and results[0] == results[1] and results[0].read_bytes() == data
    assert len(server.log) == 1


def test_download_and_models_commands_with_a_local_registry(server, cache, tmp_path, monkeypatch, capsys):
    data = payload(seed=5)
    server.files["/tiny.pt"] = data
    reg = write_registry(tmp_path / "reg.json", dict(name="tiny", url=server.url + "/tiny.pt", sha256=sha(data),
                                                     size=len(data), format="tf-pickle"))
    monkeypatch.setenv(hub.REGISTRY_ENV, str(reg))
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny "))
    assert row.split() == ["tiny", "32", "tf-pickle", "195.3", "KiB", "test", "no"]
    assert main(["download", "tiny"]) == 0
    out = capsys.readouterr().out.strip()
    assert Path(out).read_bytes() == data and Path(out).is_relative_to(cache)
    main(["models"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny "))
    assert row.split()[-1] == "cached"
    assert main(["download", "tiny"]) == 0 and len(server.log) == 1  # already verified in the cache
    assert main(["download", "tiny", "--force"]) == 0 and len(server.log) == 2


def test_a_manual_model_is_filed_from_a_local_xz_and_verified(tmp_path, monkeypatch, capsys, small_G):
    data = sa.save(small_G, tmp_path / "w.safetensors").read_bytes()  # weights of the entry's format, 32²
    packed = lzma.compress(data)
    reg = write_registry(tmp_path / "reg.json", dict(name="byhand", manual_url="https://example.invalid/page",
                                                     filename="m.pkl.xz", compression="xz", sha256=sha(packed)))
    monkeypatch.setenv(hub.REGISTRY_ENV, str(reg))
    assert main(["download", "byhand"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "https://example.invalid/page" in err and "--from FILE" in err
    bad = tmp_path / "bad.pkl.xz"
    bad.write_bytes(lzma.compress(data[:-1]))
    assert main(["download", "byhand", "--from", str(bad)]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err
    good = tmp_path / "m.pkl.xz"
    good.write_bytes(packed)
    assert main(["download", "byhand", "--from", str(good)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "m.pkl" and path.read_bytes() == data
    assert hub.fetch("byhand") == path  # from the cache, no network


def test_bundled_entries_resolve_beside_their_registry(tmp_path, small_G):
    sa.save(small_G, tmp_path / "w" / "small.safetensors")
    reg = write_registry(tmp_path / "w" / "reg.json", dict(name="small", file="small.safetensors"))
    assert hub.fetch("small", registry_path=reg) == (tmp_path / "w" / "small.safetensors").resolve()


@pytest.mark.parametrize("entry,message", [
    (dict(name="x", url="http://a/b", file="b"), "exactly one of"),
    (dict(name="x", url="http://a/b", sha256="abc"), "64 hex"),
    (dict(name="x", url="http://a/b", colour="red"), "unknown field"),
    (dict(name="x", url="http://a/b", compression="zip"), "compression"),
    (dict(name="x", url="http://a/b", format="onnx"), "format must be one of"),
    (dict(name="x", url="http://a/b", resolution=500), "power of two"),
])
def test_bad_registry_entries_are_one_line_errors(tmp_path, entry, message):
    reg = write_registry(tmp_path / "reg.json", entry)
    with pytest.raises(UserError, match=message) as e:
        hub.registry(reg)
    assert "\n" not in str(e.value)


def test_the_bundled_registry_parses_and_names_sources():
    repo = Path(__file__).resolve().parents[1]
    for entry in hub.registry().values():
        assert entry.resolution > 0
        if entry.bundled:  # our own model: its source is the model card in the repository
            assert (repo / entry.source).is_file()
        else:
            assert entry.source.startswith("https://") and entry.remote().filename


def test_a_host_that_does_not_resolve_is_not_retried(monkeypatch, cache):
    calls = []

    def unresolvable(self, url, **kwargs):
        calls.append(url)
        e = dl.requests.ConnectionError("Max retries exceeded")
        e.__cause__ = socket.gaierror(-2, "Name or service not known")
        raise e

    monkeypatch.setattr(dl.requests.Session, "get", unresolvable)
    with pytest.raises(UserError) as e:
        hub.fetch("https://example.invalid/m.pkl", progress=False)
    assert len(calls) == 1 and "does not resolve (offline?)" in str(e.value) and "\n" not in str(e.value)
    assert files_in(cache) == []


def test_models_shows_the_bundled_model_s_real_file_size(capsys):
    entry = hub.registry()["default"]
    assert entry.bundled and entry.size is None   # the registry does not repeat it ...
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("default "))
    size = Path(entry.file).stat().st_size / 2 ** 20
    assert f"{size:.1f} MiB" in row.split("safetensors")[1]   # ... the table reads it from the file


@pytest.mark.parametrize("argv", [["download", "tadne512"],
                                  ["generate", "--network", "tadne512", "--seeds", "0", "-o", "out"]])
def test_an_unknown_model_name_lists_the_known_ones(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"stylegan-anime {argv[0]}: error: 'tadne512'")
    known = err.split("known:")[1]
    assert all(name in known for name in hub.registry())
    with pytest.raises(UserError, match="known: .*default"):
        sa.load("tadne512")


@pytest.mark.parametrize("text,where", [
    ('{"models": [\n  {"name": "a", "url": "http://a/b"},\n  {"name": "b" "url": "http://a/c"}\n]}\n', "line 3 column"),
    ('{"models": [\n  {"name": "a", "url": "http://a/b"},\n]}\n', "line 3 column"),   # trailing comma
    ('{"models": [\n', "line 2 column"),                                                # cut short
])
def test_a_registry_that_is_not_json_names_the_file_and_the_line(tmp_path, monkeypatch, capsys, text, where):
    reg = tmp_path / "my registry.json"
    reg.write_text(text)
    monkeypatch.setenv(hub.REGISTRY_ENV, str(reg))
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("stylegan-anime models: error: ")
    assert str(reg) in err and where in err


@pytest.mark.parametrize("content,message", [
    (b'[{"name": "a"}]', "must hold"),
    (b'{"models": {"name": "a"}}', "must hold"),
    (b'{"models": ["a"]}', "must hold"),
    (b'{"models": []}\xff', "not UTF-8"),
])
def test_a_registry_of_the_wrong_shape_is_one_line(tmp_path, content, message):
    reg = tmp_path / "reg.json"
    reg.write_bytes(content)
    with pytest.raises(UserError, match=message) as e:
        hub.registry(reg)
    assert str(reg) in str(e.value) and "\n" not in str(e.value)
