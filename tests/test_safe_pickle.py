"""Hostile files: every one is refused with a one-line error naming the global it asked for,
and the marker file its payload would create never appears."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch

import stylegan_anime as sa
from stylegan_anime.errors import UserError
from stylegan_anime.io.formats.safe_pickle import UnsafePickleError

import format_fixtures as ff


class Reduce:
    """Pickles as a call of ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _touch_py(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


def _global_call(module: str, attr: str, arg: str) -> bytes:
    """Protocol 0: GLOBAL module attr, one string argument, REDUCE."""
    return b"c" + module.encode() + b"\n" + attr.encode() + b"\n(" + b"V" + arg.encode() + b"\ntR."


def _stack_global_call(module: str, attr: str, arg: str) -> bytes:
    """Protocol 4: STACK_GLOBAL module attr, one string argument, REDUCE."""
    def u(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b
    return b"\x80\x04" + u(module) + u(attr) + b"\x93" + u(arg) + b"\x85R."


HOSTILE = [
    ("os.system", lambda m: pickle.dumps(Reduce(os.system, f"touch {m}"), protocol=2), os.system.__module__ + ".system"),
    ("posix.system by name", lambda m: _global_call("posix", "system", f"touch {m}"), "posix.system"),
    ("builtins.eval", lambda m: pickle.dumps(Reduce(eval, _touch_py(m)), protocol=4), "builtins.eval"),
    ("builtins.exec", lambda m: pickle.dumps(Reduce(exec, _touch_py(m)), protocol=4), "builtins.exec"),
    ("builtins.getattr", lambda m: _stack_global_call("builtins", "getattr", "x"), "builtins.getattr"),
    ("builtins.__import__", lambda m: _stack_global_call("builtins", "__import__", "os"), "builtins.__import__"),
    ("subprocess.Popen", lambda m: pickle.dumps(Reduce(subprocess.Popen, ["touch", str(m)]), protocol=3),
     "subprocess.Popen"),
    ("importlib.import_module", lambda m: _stack_global_call("importlib", "import_module", "os"),
     "importlib.import_module"),
    ("INST opcode", lambda m: b"(V" + f"touch {m}".encode() + b"\nios\nsystem\n.", "os.system"),
    ("OBJ opcode", lambda m: b"(cos\nsystem\nV" + f"touch {m}".encode() + b"\no.", "os.system"),
    ("stub name, hostile module", lambda m: _global_call("dnnlib.tflib.network.os", "system", f"touch {m}"),
     "dnnlib.tflib.network.os.system"),
    ("stub module, hostile name", lambda m: _stack_global_call("dnnlib.tflib.network", "exec", _touch_py(m)),
     "dnnlib.tflib.network.exec"),
    ("hostile module, stub name", lambda m: _global_call("os", "Network", "x"), "os.Network"),
    ("functools.partial", lambda m: _stack_global_call("functools", "partial", "x"), "functools.partial"),
]


@pytest.mark.parametrize("build,global_name", [pytest.param(b, g, id=n) for n, b, g in HOSTILE])
def test_hostile_pickles_are_refused_and_nothing_runs(tmp_path, build, global_name):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(build(marker))
    with pytest.raises(UnsafePickleError) as e:
        sa.load(path)
    msg = str(e.value)
    assert global_name in msg and "\n" not in msg and "evil.pkl" in msg
    assert not marker.exists()


def test_the_payloads_are_live(tmp_path):
    """The os.system and eval payloads do create the marker under plain pickle (so the test above means
    something). Run in a child process that does nothing else."""
    for i, build in enumerate([HOSTILE[0][1], HOSTILE[2][1], HOSTILE[9][1]]):
        marker = tmp_path / f"live{i}"
        path = tmp_path / f"live{i}.pkl"
        path.write_bytes(build(marker))
        subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"], check=True,
                       capture_output=True)
        assert marker.exists()


def test_nested_reduce_inside_an_allowed_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    net = ff.Network(dict(version=4, name="G", static_kwargs={}, components={}, build_module_src="",
                          build_func_name="G_main", variables=[("dlatent_avg", Reduce(os.system, f"touch {marker}"))]))
    with ff.fake_modules(**{"dnnlib.tflib.network": {"Network": ff.Network}}):
        (tmp_path / "n.pkl").write_bytes(pickle.dumps((net, net, net), protocol=4))
    with pytest.raises(UnsafePickleError, match=r"\.system"):
        sa.load(tmp_path / "n.pkl")
    assert not marker.exists()


def test_embedded_module_source_is_never_executed(tmp_path):
    """TF and ada pickles carry their network code as text; loading reads the state only."""
    marker = tmp_path / ff.MARKER_NAME
    from test_formats import make_nets
    G_ema, G, D = make_nets()
    for path in (ff.write_tf_pickle(tmp_path / "tf.pkl", G_ema, G, D, marker),
                 ff.write_ada_pickle(tmp_path / "ada.pkl", G_ema, G, D, marker)):
        sa.load(path)
    assert not marker.exists()
    # A persistent object that is nothing but hostile source and a class name.
    meta = dict(type="class", version=6, module_src=ff.hostile_source(marker), class_name="Generator",
                state={"_parameters": {}})
    with ff.fake_modules(**{"torch_utils.persistence": {"_reconstruct_persistent_obj":
                                                        ff._reconstruct_persistent_obj}}):
        (tmp_path / "src.pkl").write_bytes(pickle.dumps({"G_ema": Reduce(ff._reconstruct_persistent_obj, meta)}))
    with pytest.raises(UserError, match="no _init_kwargs"):
        sa.load(tmp_path / "src.pkl")
    assert not marker.exists()


def test_torch_zip_naming_os_system_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"g_ema": Reduce(os.system, f"touch {marker}")}, tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError, match=r"global (posix|nt)\.system") as e:
        sa.load(tmp_path / "evil.pt")
    assert "\n" not in str(e.value)
    assert not marker.exists()


def test_storage_bytes_are_read_with_torchs_safe_loader(tmp_path):
    """A tensor's storage inside a plain pickle is itself a torch.save stream: a hostile one is refused."""
    marker = tmp_path / "pwned"
    import io
    inner = io.BytesIO()
    torch.save(Reduce(os.system, f"touch {marker}"), inner, _use_new_zipfile_serialization=False)
    payload = Reduce(torch.storage._load_from_bytes, inner.getvalue())
    (tmp_path / "s.pkl").write_bytes(pickle.dumps({"G_ema": payload}, protocol=2))
    with pytest.raises(UserError):
        sa.load(tmp_path / "s.pkl")
    assert not marker.exists()
