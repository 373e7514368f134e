"""Any other Python pickle: read with the restricted unpickler, then recognised by content.

The TF and ada readers sniff their class names in the first bytes; this one catches
pickles whose names come later (or never), so a hostile or foreign pickle still gets a
one-line answer saying what it is, and nothing from it runs.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import UserError
from . import ada_pickle, tf_pickle
from .native import Networks
from .safe_pickle import TFNetworkStub, safe_load

_PROTO0 = re.compile(rb"^(\(|c[\w.]+\n[\w.]+\n|\(dp0|\(lp0)")
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."


def sniff(head: bytes) -> bool:
    return head[:1] == b"\x80" or bool(_PROTO0.match(head))


def describe(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(sorted(str(k) for k in data)[:6])
        return f"a dict with keys {keys}" if keys else "an empty dict"
    if isinstance(data, (tuple, list)):
        return f"a {type(data).__name__} of {len(data)} items"
    return f"a {type(data).__name__}"


def read_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        return safe_load(f, path.name)


def load(path: Path, device) -> Networks:
    data = read_pickle(path)
    if tf_pickle.is_tf_tuple(data):
        return tf_pickle.networks_from_tf(data, path, device)
    if isinstance(data, TFNetworkStub):
        return tf_pickle.networks_from_tf_gs(data, path, device)
    if ada_pickle.is_ada_dict(data):
        return ada_pickle.networks_from_ada(data, path, device)
    raise UserError(f"{path.name} is a Python pickle of {describe(data)}; expected an NVlabs TensorFlow "
                    f"(G, D, Gs) tuple or Gs network, or a stylegan2-ada-pytorch snapshot with G_ema")
