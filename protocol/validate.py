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
    Recursion is bounded by ``max_depth``, checked before each descent. This
    runs on every client message, so it is written for speed.
    """
    _walk(value, 0, max_depth, _INT_KEYS if int_keys else _STR_KEYS, msg_type)


_STR_KEYS = frozenset({str})
_INT_KEYS = frozenset({str, int})


def _walk(
    container: Any, depth: int, max_depth: int, key_types: frozenset[type], msg_type: str
) -> None:
    kind = type(container)
    if kind is dict:
        if depth >= max_depth:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"nested deeper than {max_depth}", msg_type)
        for key in container:
            if type(key) not in key_types:
                why = "map keys must be strings" + (" or integers" if int in key_types else "")
                raise ProtocolError(ErrorCode.BAD_MESSAGE, why, ref=msg_type)
        items = container.values()
    elif kind is list:
        if depth >= max_depth:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"nested deeper than {max_depth}", msg_type)
        items = container
    else:
        items = (container,)
        depth -= 1  # a bare scalar is checked at the caller's level
    for item in items:
        item_kind = type(item)
        if item_kind in _PLAIN_SCALARS:
            continue
        if item_kind is float:
            if item - item != 0.0:  # NaN and ±inf, and only they, give NaN here
                raise ProtocolError(ErrorCode.BAD_MESSAGE, "NaN or infinity", ref=msg_type)
        elif item_kind is dict or item_kind is list:
            _walk(item, depth + 1, max_depth, key_types, msg_type)
        else:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "ext types are not allowed", ref=msg_type)
