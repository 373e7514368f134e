"""A restricted unpickler for other people's weights pickles.

A pickle can name any importable callable and call it while loading, so an
ordinary ``pickle.load`` of a downloaded file runs whatever its author chose.
This unpickler resolves only the globals the public StyleGAN2 formats need:
numpy / torch array rebuilders, a few containers, and inert stand-ins for the
classes of the original code bases (``dnnlib.tflib.network.Network``,
``torch_utils.persistence._reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``),
which only record the state they are given and never import or execute the
module source embedded in the file. Anything else is refused by name.
"""
from __future__ import annotations

import collections
import io
import pickle
import re
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from ...errors import UserError


class UnsafePickleError(UserError):
    """The file names a global outside the allow list; nothing from it was run."""


class TFNetworkStub:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict
    (version, name, static_kwargs, components, build_module_src, build_func_name, variables)."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UserError("a dnnlib.tflib.network.Network in this pickle has no state dict")
        self.state = state

    @property
    def name(self) -> str:
        return str(self.state.get("name"))


class PersistentStub:
    """Stand-in for an object of a ``torch_utils.persistence`` class: the class name and
    the instance state (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``, ...).
    The ``module_src`` it was pickled with is kept as text and never executed."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
            raise UserError("a torch_utils.persistence object in this pickle has no state dict")
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.state = meta["state"]


class EasyDictStub(dict):
    """``dnnlib.EasyDict`` / ``dnnlib.util.EasyDict``: a plain dict here."""

    def __setstate__(self, state: Any) -> None:
        pass  # attribute state of a dict subclass is empty or a copy of the items


def _load_storage_from_bytes(data: bytes):
    # torch pickles a storage as a nested torch.save stream; read it with torch's own safe loader.
    if not isinstance(data, (bytes, bytearray)):
        raise UserError("a torch storage in this pickle is not a byte string")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        if m:
            raise UnsafePickleError(f"refused to load: a tensor storage asks for the global {m.group(1)}, which "
                                    f"weights files never need (nothing from the file was run)") from None
        raise


def _numpy_global(name: str):
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return getattr(multiarray, name)


def _allowed() -> dict[tuple[str, str], Callable]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("dnnlib.tflib.network", "Network"): TFNetworkStub,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentStub,
        ("dnnlib", "EasyDict"): EasyDictStub,
        ("dnnlib.util", "EasyDict"): EasyDictStub,
    }
    for name in ("set", "frozenset", "slice", "complex"):  # protocol 2 spells builtins as __builtin__
        allowed[("__builtin__", name)] = allowed[("builtins", name)]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _numpy_global("_reconstruct")
        allowed[(mod, "scalar")] = _numpy_global("scalar")
    for name in ("FloatStorage", "HalfStorage", "DoubleStorage", "LongStorage", "IntStorage", "BoolStorage",
                 "ByteStorage", "BFloat16Storage"):
        allowed[("torch", name)] = getattr(torch, name)
    allowed[("torch", "float32")] = torch.float32
    allowed[("torch", "float16")] = torch.float16
    return allowed


def _codecs_encode(text: str, encoding: str = "utf-8"):
    # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1'); only that harmless use is let through.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UserError("this pickle calls _codecs.encode with unexpected arguments")
    return text.encode(encoding)


ALLOWED = _allowed()


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from ``ALLOWED``; persistent ids are refused."""

    def find_class(self, module: str, name: str):
        obj = ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"refused to load: the pickle asks for the global {module}.{name}, "
                                    f"which weights files never need (nothing from the file was run)")
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refused to load: the pickle uses a persistent id ({str(pid)[:40]}), "
                                f"which these weights formats do not")


def safe_load(f: BinaryIO, what: str) -> Any:
    """Unpickle ``f`` with ``RestrictedUnpickler``. ``what`` names the file in errors.

    Refused globals raise ``UnsafePickleError``; truncated or corrupt data a one-line ``UserError``.
    """
    try:
        return RestrictedUnpickler(f).load()
    except UserError as e:
        raise type(e)(f"{what}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RuntimeError, OverflowError, UnicodeDecodeError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{what} is a truncated or corrupt pickle ({detail[:120]})") from None
