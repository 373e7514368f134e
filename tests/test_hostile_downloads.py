"""Fuzz corpus, downloads: hostile HTTP servers on 127.0.0.1 (issue 20, item 4).

Each case is one server behaviour, spoken byte by byte over a raw socket (so that a server can send
what http.server would never send: a broken status line, 150 headers, a body cut off without
Content-Length, an endless stream). Every case must end in a one-line UserError within the time
limit and the memory budget (``tests/hostile.py``), with nothing in the cache: no file, no record,
no ``.part``.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import socket
import threading
from pathlib import Path
from typing import Callable

import pytest
import torch

import format_fixtures as ff
import stylegan_anime as sa
from stylegan_anime.cli import main
from stylegan_anime.io import formats, hub
from stylegan_anime.io.download import DownloadPolicy
from stylegan_anime.io.download_check import FORMAT_READERS
from hostile import refused
from test_hub import cache, files_in  # noqa: F401 - cache is an autouse fixture here too

MIB = 1 << 20
# small limits so that the bounded cases finish fast: a body of unpublished size may not pass 4 MiB
POLICY = DownloadPolicy(retries=1, backoff=0.0, timeout=0.5, chunk_size=64 * 1024, max_bytes=4 * MIB)
RSS_BUDGET_MIB = 96   # the gzip and xz bombs below unpack to 64 MiB; the endless body would never end

Route = Callable[[socket.socket], None]


def answer(status: str, headers: list[tuple[str, str]] = (), body: bytes = b"", raw: bytes | None = None) -> Route:
    """A route that sends one response (``raw``: these exact bytes) and hangs up."""
    def route(conn: socket.socket) -> None:
        if raw is not None:
            conn.sendall(raw)
            return
        head = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
        conn.sendall("\r\n".join(head).encode("latin-1") + body)
    return route


def sized(status: str, body: bytes, *headers: tuple[str, str]) -> Route:
    return answer(status, [("Content-Length", str(len(body))), *headers], body)


def redirect(location: str | None, status: str = "302 Found") -> Route:
    return answer(status, ([("Location", location)] if location is not None else []) + [("Content-Length", "0")])


def endless(conn: socket.socket) -> None:
    """200 without Content-Length, then zeros until the client hangs up."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    block = bytes(64 * 1024)
    while True:
        conn.sendall(block)


def silent(conn: socket.socket) -> None:
    conn.recv(1)  # returns when the client gives up and closes


def safetensors_bytes() -> bytes:
    """A tiny but complete safetensors file: one float32 tensor of 4096 values."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [4096], "data_offsets": [0, 16384]}}).encode()
    return len(header).to_bytes(8, "little") + header + bytes(range(256)) * 64


HTML = b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>try later</body></html>"
ZEROS_GZ = gzip.compress(bytes(64 * MIB), compresslevel=9)
ZEROS_XZ = lzma.compress(bytes(64 * MIB), preset=1)


class RawServer:
    """A TCP server on 127.0.0.1 that reads one request head and lets the route for its path answer."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                path = data.split(b" ", 2)[1].decode("latin-1")
                self.hits.append(path)
                self.routes.get(path, sized("404 Not Found", b"no"))(conn)
            except OSError:
                pass  # the client hung up on us: that is what the bounded cases do

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    srv = RawServer()
    yield srv
    srv.close()


cache_files = files_in  # test_hub's: the files in the cache's models/ folder


def loop_chain(base: str, n: int) -> dict[str, Route]:
    return {("/start" if i == 0 else f"/r{i}"): redirect(f"{base}/r{i + 1}") for i in range(n)}


# name → (routes for the server at ``base``, extra RemoteFile fields, a word the message must hold)
CASES: dict[str, Callable[[str], tuple[dict[str, Route], dict, str]]] = {
    # redirects: only http(s), at most DownloadPolicy.max_redirects, never in a circle
    "redirect loop": lambda b: ({"/start": redirect(f"{b}/other"), "/other": redirect("/start")}, {}, "loop"),
    "redirect to itself": lambda b: ({"/start": redirect("/start")}, {}, "loop"),
    "endless redirect chain": lambda b: (loop_chain(b, 40), {}, "redirects"),
    "redirect to file://": lambda b: ({"/start": redirect("file:///etc/passwd")}, {}, "only http and https"),
    "redirect to ftp://": lambda b: ({"/start": redirect("ftp://127.0.0.1/m.pkl", "301 Moved")}, {}, "only http"),
    "redirect to javascript:": lambda b: ({"/start": redirect("javascript:alert(1)")}, {}, "only http"),
    "redirect to a broken IPv6 host": lambda b: ({"/start": redirect("http://[::1/m.pkl")}, {}, "malformed"),
    "redirect to port 99999": lambda b: ({"/start": redirect("http://127.0.0.1:99999/m")}, {}, "malformed"),
    "redirect to no host": lambda b: ({"/start": redirect("https:///m.pkl", "307 Temporary")}, {}, "no host"),
    "redirect without Location": lambda b: ({"/start": redirect(None)}, {}, "without a Location"),
    "redirect to https on a plain port": lambda b: ({"/start": redirect(b.replace("http:", "https:") + "/x")}, {},
                                                    "cannot download"),
    # bodies that are not what they claim
    "broken gzip body": lambda b: ({"/start": sized("200 OK", b"\x1f\x8b\x08\x00garbage" * 50,
                                                    ("Content-Encoding", "gzip"))}, {}, "gzip"),
    "gzip body cut short": lambda b: ({"/start": answer("200 OK", [("Content-Encoding", "gzip")],
                                                        gzip.compress(HTML)[:40])}, {}, "end marker"),
    "gzip bomb (64 MiB of zeros)": lambda b: ({"/start": sized("200 OK", ZEROS_GZ, ("Content-Encoding", "gzip"))},
                                              {}, "longer than"),
    "brotli body": lambda b: ({"/start": sized("200 OK", b"\x0b\x02\x80", ("Content-Encoding", "br"))}, {},
                              "Content-Encoding"),
    "HTML error page with 200": lambda b: ({"/start": sized("200 OK", HTML, ("Content-Type", "text/html"))}, {},
                                           "HTML"),
    "JSON API error with 200": lambda b: ({"/start": sized("200 OK", b'{"error": "rate limited"}')}, {}, "JSON"),
    "empty 200": lambda b: ({"/start": sized("200 OK", b"")}, {}, "empty"),
    "safetensors cut half way, no Content-Length": lambda b: (
        {"/start": answer("200 OK", [], safetensors_bytes()[:8000])}, {}, "incomplete"),
    "pickle cut half way, no Content-Length": lambda b: (
        {"/start": answer("200 OK", [], b"\x80\x02cdnnlib.tflib.network\nNetwork\n" + bytes(3000))}, {}, "STOP"),
    "zip checkpoint cut half way, no Content-Length": lambda b: (
        {"/start": answer("200 OK", [], b"PK\x03\x04" + bytes(5000))}, {}, "zip"),
    "endless body, no Content-Length": lambda b: ({"/start": endless}, {}, "longer than"),
    "Content-Length of a petabyte": lambda b: ({"/start": answer("200 OK", [("Content-Length", str(10 ** 15))])},
                                               {}, "announces"),
    "body longer than the published size": lambda b: ({"/start": answer("200 OK", [], safetensors_bytes())},
                                                      {"size": 1000}, "published size"),
    "safetensors where the registry says rosinality": lambda b: (
        {"/start": sized("200 OK", safetensors_bytes())}, {"format": "rosinality"}, "registry says rosinality"),
    "HTML where an .xz is expected": lambda b: ({"/start": sized("200 OK", HTML)},
                                                {"compression": "xz", "filename": "m.pkl.xz"}, ".xz"),
    "an .xz of an HTML page": lambda b: ({"/start": sized("200 OK", lzma.compress(HTML))},
                                         {"compression": "xz", "filename": "m.pkl.xz"}, "HTML"),
    "xz bomb (64 MiB of zeros)": lambda b: ({"/start": sized("200 OK", ZEROS_XZ)},
                                            {"compression": "xz", "filename": "m.pkl.xz"}, "more than"),
    # HTTP itself broken
    "not HTTP at all": lambda b: ({"/start": answer("", raw=b"SSH-2.0-OpenSSH_9.6\r\n\r\n")}, {}, "not valid HTTP"),
    "hangs up without a word": lambda b: ({"/start": answer("", raw=b"")}, {}, "hung up"),
    "never answers": lambda b: ({"/start": silent}, {}, "no answer within"),
    "150 headers": lambda b: ({"/start": answer("200 OK", [(f"X-H{i}", "v") for i in range(150)], HTML)}, {},
                              "100 headers"),
    "a 70 kB header line": lambda b: ({"/start": answer("200 OK", [("X-Long", "v" * 70_000)], HTML)}, {},
                                      "not valid HTTP"),
    "broken chunked encoding": lambda b: ({"/start": answer("200 OK", [("Transfer-Encoding", "chunked")],
                                                            b"zz\r\nhello\r\n0\r\n\r\n")}, {}, "chunked"),
    "304 Not Modified": lambda b: ({"/start": answer("304 Not Modified")}, {}, "HTTP 304"),
    "206 of another range": lambda b: ({"/start": sized("206 Partial Content", HTML,
                                                        ("Content-Range", f"bytes 500-{499 + len(HTML)}/9999"))}, {},
                                       "another byte range"),
    "429 forever": lambda b: ({"/start": sized("429 Too Many Requests", b"slow down")}, {}, "HTTP 429"),
    "404 page": lambda b: ({"/start": sized("404 Not Found", HTML)}, {}, "HTTP 404"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_server_is_one_line_and_leaves_nothing(name, server, cache):
    routes, fields, word = CASES[name](server.base)
    server.routes.update(routes)
    url = server.base + "/start"
    remote = hub.RemoteFile(**{"url": url, "filename": "m.pkl", **fields})
    message = refused("downloads", lambda: hub.fetch_remote(remote, progress=False, policy=POLICY),
                      rss_budget_mib=RSS_BUDGET_MIB, timeout_s=15, match=word)
    assert url in message or "sent" in message or ".xz" in message
    assert cache_files(cache) == []   # nothing cached, nothing pinned, no .part


def test_the_cli_answers_a_hostile_server_with_exit_2_and_one_line(server, cache, capsys):
    server.routes["/start"] = redirect("file:///etc/passwd")
    assert main(["download", server.base + "/start"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("stylegan-anime download: error: cannot download")
    assert cache_files(cache) == []


def test_redirects_within_the_bound_are_followed_and_the_file_cached(server, cache):
    """The bound is not a ban: five http redirects (relative and absolute) still reach the file."""
    data = safetensors_bytes()
    server.routes.update(loop_chain(server.base, 5))
    server.routes["/r5"] = sized("200 OK", data)
    path = hub.fetch_remote(hub.RemoteFile(server.base + "/start", "m.safetensors"), progress=False, policy=POLICY)
    assert path.read_bytes() == data and server.hits == ["/start", "/r1", "/r2", "/r3", "/r4", "/r5"]
    record = json.loads(path.with_name("m.safetensors.sha256.json").read_text())
    assert record["sha256"] is None  # unpublished and not loaded yet: not pinned


def test_a_gzip_encoded_body_is_decoded_and_checked_like_any_other(server, cache):
    data = safetensors_bytes()
    server.routes["/start"] = sized("200 OK", gzip.compress(data), ("Content-Encoding", "gzip"))
    path = hub.fetch_remote(hub.RemoteFile(server.base + "/start", "m.safetensors"), progress=False, policy=POLICY)
    assert path.read_bytes() == data


@pytest.fixture
def weights_files(tmp_path, small_G, small_D) -> dict[str, Path]:
    """One small file per registry format, written as the real tools lay them out."""
    marker = tmp_path / "ran"
    return {"safetensors": sa.save(small_G, tmp_path / "g.safetensors"),
            "tf-pickle": ff.write_tf_pickle(tmp_path / "g.pkl", small_G, small_G, small_D, marker),
            "ada-pickle": ff.write_ada_pickle(tmp_path / "a.pkl", small_G, small_G, small_D, marker),
            "rosinality": ff.write_rosinality(tmp_path / "g.pt", small_G)}


@pytest.mark.parametrize("fmt", list(FORMAT_READERS))
def test_each_format_passes_whole_loads_and_is_pinned_but_is_refused_cut_anywhere(fmt, weights_files, small_G,
                                                                                  server, cache, capsys):
    """The sniff accepts real files of every format (served without Content-Length, so nothing but the
    file itself says where it ends) and refuses the same bytes cut at any of several points."""
    data = weights_files[fmt].read_bytes()
    for i, cut in enumerate((9, len(data) // 3, len(data) // 2, len(data) - 1)):
        server.routes[f"/cut{i}"] = answer("200 OK", [], data[:cut])
        remote = hub.RemoteFile(server.base + f"/cut{i}", "m.bin", format=fmt)
        refused("downloads", lambda: hub.fetch_remote(remote, progress=False, policy=POLICY), timeout_s=15,
                rss_budget_mib=RSS_BUDGET_MIB, match="incomplete" if cut > 9 else "sent")
    assert cache_files(cache) == []
    server.routes["/m.bin"] = answer("200 OK", [], data)
    remote = hub.RemoteFile(server.base + "/m.bin", "m.bin", format=fmt)
    path = hub.fetch_remote(remote, progress=False, policy=POLICY)
    assert path.read_bytes() == data and json.loads(hub._record_path(path).read_text())["sha256"] is None
    G = sa.load(remote.url)   # loads from the cache, then pins the hash it had
    z = torch.randn(2, small_G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():     # the network that was served, not just some network
        torch.testing.assert_close(G.mapping(z, None), small_G.mapping(z, None), rtol=1e-5, atol=1e-5)
    assert json.loads(hub._record_path(path).read_text())["sha256"] == hashlib.sha256(data).hexdigest()
    assert "trust on first use" in capsys.readouterr().err and server.hits.count("/m.bin") == 1


def test_a_resumed_range_that_comes_back_compressed_restarts_from_zero(server, cache):
    """Cut once with Content-Length (the part is kept), then the Range request is answered gzip-encoded:
    decoded bytes appended to the kept half would make a wrong file, so the part restarts."""
    data = safetensors_bytes()
    replies = iter([answer("200 OK", [("Content-Length", str(len(data)))], data[:5000]),
                    sized("206 Partial Content", gzip.compress(data[5000:]), ("Content-Encoding", "gzip"),
                          ("Content-Range", f"bytes 5000-{len(data) - 1}/{len(data)}")),
                    sized("200 OK", data)])
    server.routes["/m.safetensors"] = lambda conn: next(replies)(conn)
    path = hub.fetch_remote(hub.RemoteFile(server.base + "/m.safetensors", "m.safetensors"), progress=False,
                            policy=DownloadPolicy(retries=3, backoff=0.0, timeout=2.0))
    assert path.read_bytes() == data and server.hits == ["/m.safetensors"] * 3


def test_every_registry_format_maps_to_readers_that_exist():
    """A renamed reader would make every download of that format refused: the map must follow."""
    names = {r.name for r in formats.READERS}
    assert set(FORMAT_READERS) == set(hub.FORMATS)
    assert all(set(readers) <= names for readers in FORMAT_READERS.values())
