"""The favourites store: round trip, two writers at once, a corrupt file moved aside, zip export."""
import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from stylegan_anime.app.favourites import FavouritesStore, network_id, read_zip
from stylegan_anime.errors import UserError
from stylegan_anime.networks import Generator, GeneratorConfig


def _fav(store, network="net-a", name="alice", seed=3):
    rng = np.random.default_rng(seed)
    w, z = rng.standard_normal((6, 8)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    fid = store.add(network, name, w, 0.7, b"\x89PNG-thumb", seed=seed, labels=[1.0, 0.0, 0.5], z=z)
    return fid, w, z


def test_round_trip_rename_delete_and_networks_kept_apart(tmp_path):
    store = FavouritesStore(tmp_path / "fav.sqlite")
    fid, w, z = _fav(store)
    other, _, _ = _fav(store, network="net-b", name="bob", seed=4)
    again = FavouritesStore(tmp_path / "fav.sqlite")  # a restart: a new store on the same file
    [f] = again.list("net-a")
    assert (f.id, f.name, f.seed, f.psi, f.labels, f.thumbnail) == (fid, "alice", 3, pytest.approx(0.7),
                                                                     [1.0, 0.0, 0.5], b"\x89PNG-thumb")
    np.testing.assert_array_equal(f.w, w)
    np.testing.assert_array_equal(f.z, z)
    assert again.other_networks("net-a") == {"net-b": 1}
    again.rename(fid, "  Alice II ")
    assert again.get(fid).name == "Alice II"
    again.delete(other)
    assert [x.id for x in again.list()] == [fid]
    with pytest.raises(UserError, match="no favourite number"):
        again.delete(other)
    with pytest.raises(UserError, match="empty"):
        again.rename(fid, "  ")


def _writer(path, tag, count):
    store = FavouritesStore(path)
    for i in range(count):
        store.add("net", f"{tag}-{i}", np.full((2, 3), i, np.float32), 1.0, b"")


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "fav.sqlite"
    FavouritesStore(path)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, tag, 40)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    names = sorted(f.name for f in FavouritesStore(path).list("net"))
    assert names == sorted([f"a-{i}" for i in range(40)] + [f"b-{i}" for i in range(40)])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_corrupt_file_is_moved_aside_with_one_message(tmp_path, capsys):
    path = tmp_path / "fav.sqlite"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    store = FavouritesStore(path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "moved to fav.sqlite.corrupt-" in err[0] and store.notice in err[0]
    [aside] = tmp_path.glob("fav.sqlite.corrupt-*")
    assert aside.read_bytes() == junk  # kept, never silently emptied
    assert store.list() == []
    _fav(store)
    assert len(FavouritesStore(path).list()) == 1 and capsys.readouterr().err == ""


def test_export_is_a_zip_of_latents_that_import_reads_back(tmp_path):
    store = FavouritesStore(tmp_path / "fav.sqlite")
    _, w, z = _fav(store, name="Alice / the 1st")
    _fav(store, network="net-b")
    out = store.export_zip("net-a", tmp_path / "favs.zip")
    [(name, latent)] = read_zip(out)
    assert name == "Alice   the 1st"
    np.testing.assert_array_equal(latent.w.numpy(), w)
    np.testing.assert_array_equal(latent.z.numpy(), z)
    np.testing.assert_allclose(latent.c.numpy(), [1.0, 0.0, 0.5])
    with pytest.raises(UserError, match="no favourites"):
        store.export_zip("net-c", tmp_path / "none.zip")
    (tmp_path / "bad.zip").write_bytes(b"nope")
    with pytest.raises(UserError, match="not a zip"):
        read_zip(tmp_path / "bad.zip")


def test_network_id_is_the_content():
    cfg = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1, channel_base=64, channel_max=8)
    a = Generator(cfg)
    b = Generator(cfg)
    b.load_state_dict(a.state_dict())
    assert network_id(a) == network_id(b)
    c = Generator(cfg)
    assert network_id(c) != network_id(a)
