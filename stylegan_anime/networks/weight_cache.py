"""Tensors derived from a layer's weights (squared tap sums, transposed layouts, Winograd
filters), made once and kept between inference forwards inside ``cached_weights()``.

A forward of a 512² generator spends about 5% of its time deriving such tensors from weights
that did not change since the last forward. Outside the context nothing is kept: every forward
derives them afresh. Inside it, each (parameter, kind) is derived once and again whenever the
parameter changes in a way PyTorch records: in-place ops under ``no_grad`` (optimiser steps,
``load_state_dict``, EMA updates) bump its version counter, and assigning ``.data`` gives it new
storage. In-place edits *through* ``.data`` bypass both: make them outside the context.

The generation, interpolation and video paths run inside the context; so can any loop of
forwards (``with cached_weights(): ...``). Contexts nest; the outermost one owns the cache.
"""
from __future__ import annotations

import contextlib
import contextvars
import weakref
from typing import Any, Callable, Iterator, TypeVar

import torch

T = TypeVar("T")
_Entry = tuple[weakref.ref, tuple, Any]
_CACHE: contextvars.ContextVar[dict[tuple[int, str], _Entry] | None] = contextvars.ContextVar(
    "stylegan_anime_weight_cache", default=None)


@contextlib.contextmanager
def cached_weights() -> Iterator[None]:
    """Keep derived weight tensors for the duration of the block (see the module docstring)."""
    if _CACHE.get() is not None:
        yield
        return
    token = _CACHE.set({})
    try:
        yield
    finally:
        _CACHE.reset(token)


def active() -> bool:
    """Whether derived tensors are being kept (inside ``cached_weights()``)."""
    return _CACHE.get() is not None


def derived(param: torch.Tensor, kind: str, make: Callable[[], T]) -> T:
    """``make()``, a value computed from ``param`` alone and named ``kind``; kept while the
    cache is active and ``param`` is unchanged. Not kept when autograd would record ``make()``."""
    cache = _CACHE.get()
    if cache is None or (torch.is_grad_enabled() and param.requires_grad):
        return make()
    key = (id(param), kind)
    stamp = (param._version, param.data_ptr(), param.dtype, param.device, tuple(param.shape))
    entry = cache.get(key)
    if entry is not None and entry[0]() is param and entry[1] == stamp:
        return entry[2]
    value = make()
    cache[key] = (weakref.ref(param), stamp, value)
    return value
