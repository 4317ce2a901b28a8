"""Field checks shared by every message's ``from_wire``.

Each helper reads one field from a decoded msgpack map and either returns a
value of exactly the promised type or raises :class:`ProtocolError` with
``bad_message``. ``bool`` is never accepted where a number is expected, and
floats must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ErrorCode, ProtocolError

UINT32_MAX = 2**32 - 1
UINT53_MAX = 2**53 - 1
"""Largest integer a JavaScript client can hold exactly: the bound for ids and nonces."""

_MISSING: Any = object()


def _bad(msg_type: str, name: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, f"{msg_type}.{name}: {why}", ref=msg_type)


def get_int(
    d: Mapping[str, Any], msg_type: str, name: str, lo: int, hi: int, *, optional: bool = False
) -> Any:
    """Return field ``name`` as an int in ``[lo, hi]`` (``None`` if optional and absent/nil)."""
    value = d.get(name, _MISSING)
    if value is _MISSING or value is None:
        if optional:
            return None
        raise _bad(msg_type, name, "required")
    if type(value) is not int:
        raise _bad(msg_type, name, "must be an integer")
    if not lo <= value <= hi:
        raise _bad(msg_type, name, f"must be in [{lo}, {hi}]")
    return value


def get_str(
    d: Mapping[str, Any],
    msg_type: str,
    name: str,
    max_len: int,
    *,
    optional: bool = False,
    min_len: int = 0,
) -> Any:
    """Return field ``name`` as a str of ``min_len..max_len`` characters."""
    value = d.get(name, _MISSING)
    if value is _MISSING or value is None:
        if optional:
            return None
        raise _bad(msg_type, name, "required")
    if type(value) is not str:
        raise _bad(msg_type, name, "must be a string")
    if not min_len <= len(value) <= max_len:
        raise _bad(msg_type, name, f"length must be in [{min_len}, {max_len}]")
    return value


def get_finite_float(d: Mapping[str, Any], msg_type: str, name: str, lo: float, hi: float) -> float:
    """Return field ``name`` as a finite float in ``[lo, hi]``; ints are accepted."""
    value = d.get(name, _MISSING)
    if value is _MISSING:
        raise _bad(msg_type, name, "required")
    if type(value) is int:
        value = float(value)
    if type(value) is not float or not math.isfinite(value):
        raise _bad(msg_type, name, "must be a finite number")
    if not lo <= value <= hi:
        raise _bad(msg_type, name, f"must be in [{lo}, {hi}]")
    return value


_PLAIN_SCALARS = frozenset({type(None), bool, int, str, bytes})


def check_plain_value(
    value: Any, max_depth: int, msg_type: str = "?", *, int_keys: bool = False
) -> None:
    """Refuse what the decoder lets through: NaN/±inf, deep nesting, odd keys, ext values.

    The decoder bounds sizes and refuses ext types of length 1 or more; this
    walk closes the holes it leaves: NaN/±inf anywhere, nesting deeper than
    ``max_depth``, map keys that are not strings, or strings and integers with
    ``int_keys`` (``strict_map_key`` lets bin keys through) and zero-length
    ext values (``max_ext_len=0`` lets ``ExtType(code, b"")`` through).
    Iterative, so a deep value cannot exhaust
    the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                raise ProtocolError(ErrorCode.BAD_MESSAGE, "NaN or infinity", ref=msg_type)
        elif kind is list or kind is dict:
            if depth >= max_depth:
                raise ProtocolError(
                    ErrorCode.BAD_MESSAGE, f"nested deeper than {max_depth}", ref=msg_type
                )
            if kind is dict:
                if not all(type(key) is str or (int_keys and type(key) is int) for key in item):
                    why = "map keys must be strings" + (" or integers" if int_keys else "")
                    raise ProtocolError(ErrorCode.BAD_MESSAGE, why, ref=msg_type)
                children = item.values()
            else:
                children = item
            stack.extend((child, depth + 1) for child in children)
        elif kind not in _PLAIN_SCALARS:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "ext types are not allowed", ref=msg_type)
