"""Caps on what an unpickled object tree may be: nesting depth, expanded size, no cycles.

A pickle can build a structure that is small in the file but huge or deep to walk: 10⁵ nested
tuples (any recursive walk, ``repr`` included, ends in ``RecursionError``) or a "billion laughs"
of lists that each hold the previous one ten times (a ``repr`` of it never ends). Weights
pickles are shallow (a dozen levels) and hold some thousands of objects, so ``check_tree``
refuses anything far outside that, walking iteratively before any reader touches the data.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from ...errors import UserError

MAX_DEPTH = 100
# Objects counted as often as they are reachable (what a recursive walk would visit). A 1024²
# ada snapshot holds about 10⁴; this leaves room for optimizer states and long kwargs lists.
MAX_EXPANDED = 2_000_000


def default_children(obj: Any) -> Iterable[Any] | None:
    """The objects ``obj`` holds, or None for a leaf (numbers, strings, arrays, tensors)."""
    if isinstance(obj, (tuple, list, set, frozenset)):
        return list(obj)
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, slice):
        return [obj.start, obj.stop, obj.step]
    return None


def check_tree(root: Any, what: str, children: Callable[[Any], Iterable[Any] | None] = default_children,
               max_depth: int = MAX_DEPTH, max_expanded: int = MAX_EXPANDED) -> None:
    """Refuse (one-line ``UserError``) a tree deeper than ``max_depth`` containers, one that
    expands to more than ``max_expanded`` objects when shared references are followed each
    time, or one with a cycle. Iterative: no recursion however deep the input."""
    done: dict[int, tuple[int, int]] = {}  # id → (depth, expanded size) of a finished container
    on_path: set[int] = set()
    stack: list[tuple[Any, list | None]] = [(root, None)]
    while stack:
        obj, kids = stack.pop()
        if kids is None:  # first visit
            kids = children(obj)
            if kids is None or id(obj) in done:
                continue
            if id(obj) in on_path:
                raise UserError(f"{what}: the pickle holds a container that contains itself, "
                                f"which weights files never do")
            if len(on_path) >= max_depth:
                raise UserError(f"{what}: the pickle nests containers more than {max_depth} deep, "
                                f"which weights files never do")
            kids = list(kids)
            on_path.add(id(obj))
            stack.append((obj, kids))
            stack.extend((k, None) for k in kids)
            continue
        depth, size = 1, 1
        for k in kids:
            d, s = done.get(id(k), (0, 1))
            depth, size = max(depth, d + 1), size + s
        if size > max_expanded:
            raise UserError(f"{what}: the pickle's references expand to more than {max_expanded:,} objects "
                            f"(a 'billion laughs'), which weights files never do")
        done[id(obj)] = (depth, size)
        on_path.discard(id(obj))
