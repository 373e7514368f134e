"""A restricted unpickler for other people's weights pickles.

A pickle can name any importable callable and call it while loading, so an
ordinary ``pickle.load`` of a downloaded file runs whatever its author chose.
This unpickler resolves only the globals the public StyleGAN2 formats need:
numpy / torch array rebuilders, a few containers, and inert stand-ins for the
classes of the original code bases (``dnnlib.tflib.network.Network``,
``torch_utils.persistence._reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``),
which only record the state they are given and never import or execute the
module source embedded in the file. Anything else is refused by name.

It also builds nothing real from a file's say-so. BUILD (``__setstate__`` /
``setattr``) reaches only our stand-ins, as a plain dict, so a refused file cannot
patch a class for the rest of the process. numpy arrays and dtypes are rebuilt by
our code from checked (shape, dtype, bytes), tensors only as dense views of a
storage of their own size, and the whole tree is capped in operations, nesting
depth and expanded size (``object_limits``) before any reader walks it.
"""
from __future__ import annotations

import collections
import io
import math
import os
import pickle
import re
import struct
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from ...errors import UserError
from .object_limits import check_tree, default_children
from .tensor_layout import dense_layout_problem

# Pickle operations per file. Real weights pickles need ~20 per tensor (a 1024² ada snapshot:
# some 10⁵); each operation creates at most one small object, so this bounds the memory a
# file of tiny objects (10⁶ empty lists ≈ 60 MB) can take before the tree checks run.
MAX_OPS = 2_000_000
MAX_ARRAY_DIMS = 16
LARGE_BYTES = 1 << 16  # byte strings from this length on are read into bytearrays (see _bytes)


class UnsafePickleError(UserError):
    """The file names a global outside the allow list; nothing from it was run."""


class TFNetworkStub:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict
    (version, name, static_kwargs, components, build_module_src, build_func_name, variables)."""

    state: dict = {}

    def set_state(self, state: Any) -> None:
        # Called by the unpickler's BUILD; the state is stored as data, never set as attributes.
        if not isinstance(state, dict):
            raise UserError("a dnnlib.tflib.network.Network in this pickle has no state dict")
        self.state = dict(state)

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


class _DtypeStub:
    """A numpy dtype named by the file; BUILD may only set its byte order."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype


class _ArrayStub:
    """``numpy._reconstruct``'s empty array, waiting for BUILD's (shape, dtype, bytes)."""


class _NdarrayName:
    """``numpy.ndarray`` as a name: the first argument of ``_reconstruct``. Calling it would make
    a view of any shape and strides over any buffer (a 10⁹-element array over 4 bytes)."""

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError("refused to load: the pickle calls numpy.ndarray directly (an array view of "
                                "any size over any buffer), which weights files never do")


_NDARRAY = _NdarrayName()


def _dtype(name: Any, align: Any = False, copy: Any = False) -> _DtypeStub:
    if not isinstance(name, str) or len(name) > 8:
        raise UserError("this pickle names a numpy dtype that is not a plain number type")
    try:
        dt = np.dtype(name)
    except TypeError:
        raise UserError(f"this pickle names an unknown numpy dtype {name[:8]!r}") from None
    if dt.kind not in "biufc" or dt.shape != () or dt.fields is not None:
        raise UserError(f"this pickle names the numpy dtype {name!r}; weights are plain numbers")
    return _DtypeStub(dt)


def _build_dtype(stub: _DtypeStub, state: Any) -> None:
    # numpy's dtype state: (version, byte order, subarray, names, fields, elsize, alignment, flags).
    if not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", ">", "|", "=") \
            or any(v is not None for v in state[2:5]):
        raise UserError("a numpy dtype in this pickle has a malformed state")
    if state[1] in "<>":
        stub.dtype = stub.dtype.newbyteorder(state[1])


def _resolve_dtype(dt: Any) -> np.dtype:
    if not isinstance(dt, _DtypeStub):
        raise UserError("a numpy array in this pickle has no valid dtype")
    return dt.dtype


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _ArrayStub:
    if subtype is not _NDARRAY or shape != (0,) or dtype not in (b"b", "b"):
        raise UserError("this pickle calls numpy's _reconstruct with unexpected arguments")
    return _ArrayStub()


def _build_array(state: Any) -> np.ndarray:
    """numpy's array state (version, shape, dtype, is_fortran, raw bytes) → a writable array of the
    bytes, after checking that they are exactly what the shape and dtype need."""
    if isinstance(state, tuple) and len(state) == 4:
        state = (1, *state)
    if not isinstance(state, tuple) or len(state) != 5:
        raise UserError("a numpy array in this pickle has a malformed state")
    _, shape, dt, fortran, data = state
    dt = _resolve_dtype(dt)
    if not isinstance(shape, tuple) or len(shape) > MAX_ARRAY_DIMS or \
            not all(type(n) is int and n >= 0 for n in shape):
        raise UserError(f"a numpy array in this pickle has an invalid shape {str(shape)[:60]}")
    if isinstance(data, str):
        data = data.encode("latin1")  # Python 2 pickles hold the bytes as a latin-1 str
    if not isinstance(data, (bytes, bytearray)):
        raise UserError("a numpy array in this pickle holds objects, not numbers")
    need = math.prod(shape) * dt.itemsize
    if len(data) != need:
        raise UserError(f"a numpy array in this pickle declares shape {list(shape)} of {dt} ({need:,} bytes) "
                        f"but holds {len(data):,} bytes")
    array = np.frombuffer(data, dtype=dt).reshape(shape, order="F" if fortran else "C")
    # Large byte strings arrive as bytearrays (``_bytes``): the array is a writable view, no copy.
    return array if array.flags.writeable else array.copy(order="K")


def _scalar(dt: Any, data: Any) -> Any:
    dt = _resolve_dtype(dt)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dt.itemsize:
        raise UserError("a numpy scalar in this pickle has the wrong number of bytes")
    return np.frombuffer(data, dtype=dt)[0]


def _load_storage_from_bytes(data: bytes):
    # torch pickles a storage as a nested torch.save stream; read it with torch's own safe loader.
    if not isinstance(data, (bytes, bytearray)):
        raise UserError("a torch storage in this pickle is not a byte string")
    if data[:4] == b"PK\x03\x04":
        # torch pickles storages in its legacy stream format; a zip here could hold a deflated bomb.
        raise UserError("a torch storage in this pickle is a zip archive, which torch never writes there")
    try:
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        if m:
            raise UnsafePickleError(f"refused to load: a tensor storage asks for the global {m.group(1)}, which "
                                    f"weights files never need (nothing from the file was run)") from None
        raise
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        # e.g. a record declaring more elements than its bytes hold: torch compares before copying.
        detail = "declares more bytes than it holds" if "wrong byte size" in str(e) else \
            f"is truncated or corrupt ({str(e).splitlines()[0][:60]})"
        raise UserError(f"a torch storage in this pickle {detail}") from None
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UserError(f"a torch storage in this pickle holds a {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UserError("a tensor in this pickle has no torch storage")
    if not isinstance(size, tuple) or not isinstance(stride, tuple):
        raise UserError("a tensor in this pickle has a malformed size or stride")
    problem = dense_layout_problem(size, stride, storage_offset, storage._size())
    if problem is not None:
        raise UserError(f"a tensor in this pickle has {problem}, which weights files never do")
    if backward_hooks or metadata:
        raise UserError("a tensor in this pickle carries hooks or metadata, which weights files never do")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, bool(requires_grad),
                                           collections.OrderedDict())


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise UserError("a torch parameter in this pickle is not a plain tensor")
    return torch.nn.Parameter(data, bool(requires_grad))


def _codecs_encode(text: str, encoding: str = "utf-8"):
    # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1'); only that harmless use is let through.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UserError("this pickle calls _codecs.encode with unexpected arguments")
    return text.encode(encoding)


def _empty_bytes(*args) -> bytes:
    # Protocol 2 spells b"" (an empty array's data) as a call of bytes() with no arguments.
    if args:
        raise UserError("this pickle calls bytes() with arguments")
    return b""


def _allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _dtype,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("dnnlib.tflib.network", "Network"): TFNetworkStub,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentStub,
        ("dnnlib", "EasyDict"): EasyDictStub,
        ("dnnlib.util", "EasyDict"): EasyDictStub,
        ("torch", "float32"): torch.float32,
        ("torch", "float16"): torch.float16,
    }
    allowed[("builtins", "bytes")] = _empty_bytes
    for name in ("set", "frozenset", "slice", "complex", "bytes"):  # protocol 2 spells builtins as __builtin__
        allowed[("__builtin__", name)] = allowed[("builtins", name)]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _reconstruct
        allowed[(mod, "scalar")] = _scalar
    return allowed


ALLOWED = _allowed()
# Classes the file may create with NEWOBJ (``cls.__new__(cls)``, no arguments).
_NEWOBJ_CLASSES = (TFNetworkStub, EasyDictStub, collections.OrderedDict, set)


class _BoundedFile:
    """The file, refusing reads longer than what is left: a length field of 2⁶² must not make
    ``read`` allocate before it finds the file is short."""

    def __init__(self, f: BinaryIO):
        self._f = f
        start = f.tell()
        self._end = f.seek(0, os.SEEK_END)
        self.size = self._end - start
        f.seek(start)

    def _check(self, n: int) -> None:
        if n is not None and n > self._end - self._f.tell():
            # EOFError: safe_load reports it as a truncated file, which is what it most likely is.
            raise EOFError(f"a length of {n:,} bytes where the file has {self._end - self._f.tell():,} left")

    def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0:
            self._check(n)
        return self._f.read(n)

    def readinto(self, buf) -> int:
        self._check(len(buf))
        return self._f.readinto(buf)

    def readline(self) -> bytes:
        return self._f.readline()


class _Memo(dict):
    """The unpickler's memo; remembers where each array stand-in was stored, so BUILD can put
    the finished array there too (pickle memoizes an object before BUILD gives it its state)."""

    def __init__(self):
        super().__init__()
        self.stub_keys: dict[int, Any] = {}

    def __setitem__(self, key, value):
        if isinstance(value, _ArrayStub):
            self.stub_keys[id(value)] = key
        super().__setitem__(key, value)


def _counted(fn: Callable) -> Callable:
    def op(self):
        self.ops += 1
        if self.ops > MAX_OPS:
            raise UserError(f"the pickle runs more than {MAX_OPS:,} operations, far more than weights files need")
        return fn(self)
    return op


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcodes can be overridden, unlike the C one's) with
    globals only from ``ALLOWED``, BUILD / NEWOBJ / item-setting only on our own objects or
    plain containers, persistent ids refused and every operation counted."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f: BinaryIO):
        bounded = _BoundedFile(f)
        super().__init__(bounded)
        self._size = bounded.size
        self.memo = _Memo()
        self.ops = 0

    def find_class(self, module: str, name: str):
        obj = ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"refused to load: the pickle asks for the global {module}.{name}, "
                                    f"which weights files never need (nothing from the file was run)")
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refused to load: the pickle uses a persistent id ({str(pid)[:40]}), "
                                f"which these weights formats do not")

    def _bytes(self, n: int):
        # A weights array's bytes read into a bytearray, which numpy can view writably (bytes would
        # need a copy, doubling the peak). The length is checked against the file before allocating.
        if n < LARGE_BYTES:
            return self.read(n)
        if n > self._size:
            raise EOFError(f"a length of {n:,} bytes in a file of {self._size:,}")
        buf = bytearray(n)
        if self.readinto(buf) != n:
            raise EOFError("the file ends inside a byte string")
        return buf

    def load_binbytes(self):
        self.append(self._bytes(struct.unpack("<I", self.read(4))[0]))

    def load_binbytes8(self):
        self.append(self._bytes(struct.unpack("<Q", self.read(8))[0]))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        kind = type(inst)
        if kind is TFNetworkStub:
            inst.set_state(state)
        elif kind is _DtypeStub:
            _build_dtype(inst, state)
        elif kind is _ArrayStub:
            array = self.stack[-1] = _build_array(state)
            key = self.memo.stub_keys.pop(id(inst), None)
            if key is not None:
                dict.__setitem__(self.memo, key, array)
        elif kind in (EasyDictStub, collections.OrderedDict) and (state is None or isinstance(state, dict)):
            pass  # a dict's attribute state (e.g. a state dict's _metadata) carries no weights
        else:
            what = inst.__name__ if isinstance(inst, type) else kind.__name__
            raise UnsafePickleError(f"refused to load: the pickle sets the state of {what} (BUILD), which "
                                    f"weights files never need (nothing from the file was applied)")

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.stack.append(self._new(cls, args, {}))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.stack.append(self._new(cls, args, kwargs))

    @staticmethod
    def _new(cls, args, kwargs):
        if cls not in _NEWOBJ_CLASSES or args or kwargs:
            what = getattr(cls, "__name__", type(cls).__name__)
            raise UnsafePickleError(f"refused to load: the pickle creates {what} with NEWOBJ, which weights "
                                    f"files never need")
        return cls.__new__(cls)

    def load_append(self):
        value = self.stack.pop()
        self._target(list).append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._target(list).extend(items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(dict)[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target(dict)
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        self._target(set).update(items)

    def _target(self, kind: type):
        # Only plain containers take items: SETITEM on a tensor or array would write into it.
        obj = self.stack[-1]
        if not isinstance(obj, kind) or type(obj) not in (kind, EasyDictStub, collections.OrderedDict):
            raise UnsafePickleError(f"refused to load: the pickle adds items to a {type(obj).__name__}, which "
                                    f"weights files never do")
        return obj

    for _code, _name in ((pickle.BUILD, "load_build"), (pickle.BINBYTES, "load_binbytes"),
                         (pickle.BINBYTES8, "load_binbytes8"), (pickle.NEWOBJ, "load_newobj"),
                         (pickle.NEWOBJ_EX, "load_newobj_ex"), (pickle.APPEND, "load_append"),
                         (pickle.APPENDS, "load_appends"), (pickle.SETITEM, "load_setitem"),
                         (pickle.SETITEMS, "load_setitems"), (pickle.ADDITEMS, "load_additems")):
        dispatch[_code[0]] = locals()[_name]
    dispatch = {code: _counted(fn) for code, fn in dispatch.items()}
    del _code, _name


def _children(obj: Any):
    if isinstance(obj, (TFNetworkStub, PersistentStub)):
        return [obj.state]
    if isinstance(obj, (_ArrayStub, _DtypeStub)):
        raise UserError("the pickle leaves a numpy array or dtype without its state")
    return default_children(obj)


def safe_load(f: BinaryIO, what: str) -> Any:
    """Unpickle ``f`` with ``RestrictedUnpickler`` and check the tree's size and depth.
    ``what`` names the file in errors.

    Refused globals raise ``UnsafePickleError``; truncated, corrupt or absurd data a one-line
    ``UserError``. A refused file leaves nothing behind: no class or object outside the file's
    own tree was touched.
    """
    try:
        data = RestrictedUnpickler(f).load()
        check_tree(data, what, _children)
        return data
    except UserError as e:
        message = str(e)
        raise type(e)(message if message.startswith(f"{what}:") else f"{what}: {message}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RuntimeError, OverflowError, UnicodeDecodeError, RecursionError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{what} is a truncated or corrupt pickle ({detail[:120]})") from None
