"""Delta snapshots: the generic patch format (PROTOCOL.md §5.6), its diff and its apply.

A patch turns one decoded game state into the next. It is plain msgpack data,
always an array whose first element says what it is:

- ``[0, value]``: replace, the new value is ``value``;
- ``[1, changes, removed]``: a map patch, ``changes`` maps each changed key to
  a patch (a new key to a replace), ``removed`` lists the keys that went;
- ``[2, removed, changed, added]``: a table patch, for arrays of rows that each
  start with a unique int or string id (arena's players and gems). ``removed``
  lists ids; ``changed`` holds groups ``[mask, diffmask, id, v…, id, v…]``
  where bit i of ``mask`` marks row element i + 1 as changed, and the bits of
  ``diffmask`` mark those sent as the difference new - old; a group with mask
  0 holds whole rows that replace theirs in place; ``added`` rows go at the end;
- ``[3, removed, changed, added]``: the same for a table kept in order of its
  integer ids: the rows are sorted by id once patched (a row coming into view may
  land between others).

Differences are what make a moving entity cheap: a position that moved 67
units is one or two bytes instead of three. Equality is strict (``1`` and
``1.0`` and ``True`` differ, ``0.0`` and ``-0.0`` too) because a client must
end with exactly the server's state, value for value and type for type.

``diff`` and ``apply`` work on decoded values (what msgpack gives back: lists,
dicts with str or int keys, ints, floats, str, bytes, bool, None); ``apply``
never changes the value it is given.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

REPLACE = 0
MAP = 1
TABLE = 2
SORTED_TABLE = 3

MAX_SAFE_INT = 2**53 - 1
"""Differences are used only within ±(2**53 - 1), so JavaScript numbers hold them exactly."""
MAX_BASE_AGE = 60
"""A delta's ``base`` is at least its own snapshot ``id`` - 60: a client that keeps the states
of the last 64 snapshot ids it received always holds the base (PROTOCOL.md §5.6)."""
MAX_NESTED_MAP_PATCHES = 4
"""Maps patched key by key within maps; deeper ones are replaced whole. Each level nests a
patch two levels deeper than the state, so a patch is at most 2 + 2 * 4 levels deeper
than its state: keep states within 22 levels and patches stay within §2's 32."""
MAX_GROUP_LEN = 65_000
"""Elements in one group of a table patch: under the 65,536 a client decodes in an array."""
MAX_MASKED_FIELDS = 30
"""Row elements a mask can name (bits 0..29 stay within JavaScript's 32-bit bit operations)."""

Patch = list[Any]


class DeltaError(ValueError):
    """A patch that does not fit the state it is applied to (or is not a patch)."""


# -- equality --------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Strict equality: equal values of the same types all the way down."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is list:
        if len(a) != len(b):
            return False
        kinds = tuple(map(type, a))
        if kinds != tuple(map(type, b)):
            return False
        if _DEEP.isdisjoint(kinds):
            return bool(a == b)  # flat: one C-level comparison
        return all(map(same, a, b))
    if kind is float:
        if a != a:  # NaN: equal to a NaN only
            return bool(b != b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if kind is dict:
        if a.keys() != b.keys():
            return False
        return all(same(value, b[key]) for key, value in a.items())
    return bool(a == b)


_DEEP = frozenset((list, dict, float))
"""Types whose equality ``==`` does not settle: containers recurse, floats have -0.0 and NaN."""


# -- diff ------------------------------------------------------------------------


def diff(old: Any, new: Any) -> Patch:
    """The patch that turns ``old`` into ``new`` (both decoded msgpack values)."""
    patch = _patch(old, new)
    if patch is not None:
        return patch
    if type(new) is dict:
        return [MAP, {}, []]
    if type(new) is list and _index(new) is not None:
        return [TABLE, [], [], []]
    return [REPLACE, new]


def _patch(old: Any, new: Any, maps: int = 0) -> Patch | None:
    """A patch, or None when ``new`` is ``old``; ``maps``: map patches around this one."""
    if type(old) is dict and type(new) is dict and maps < MAX_NESTED_MAP_PATCHES:
        return _map_patch(old, new, maps + 1)
    if type(old) is list and type(new) is list:
        if old == new and same(old, new):
            return None
        table = _table_patch(old, new)
        return table if table is not None else [REPLACE, new]
    return None if same(old, new) else [REPLACE, new]


def _map_patch(old: dict[Any, Any], new: dict[Any, Any], maps: int) -> Patch | None:
    changes: dict[Any, Patch] = {}
    for key, value in new.items():
        if key in old:
            patch = _patch(old[key], value, maps)
            if patch is not None:
                changes[key] = patch
        else:
            changes[key] = [REPLACE, value]
    removed = [key for key in old if key not in new]
    if not changes and not removed:
        return None
    return [MAP, changes, removed]


def _index(rows: list[Any]) -> dict[Hashable, list[Any]] | None:
    """Rows by id, if ``rows`` is a table (every row a list led by a unique int/str id)."""
    index: dict[Hashable, list[Any]] = {}
    for row in rows:
        if type(row) is not list or not row:
            return None
        row_id = row[0]
        if type(row_id) is not int and type(row_id) is not str:
            return None
        index[row_id] = row
    return index if len(index) == len(rows) else None


def _table_patch(old: list[Any], new: list[Any]) -> Patch | None:
    """A table patch, or None when the two are not tables or their order cannot be told."""
    old_index = _index(old)
    if old_index is None:
        return None
    new_index = _index(new)
    if new_index is None:
        return None
    removed = [row_id for row_id in old_index if row_id not in new_index]
    kept = len(old) - len(removed)
    old_kept = [row for row in old if row[0] in new_index] if removed else old
    pairs: Iterable[tuple[list[Any], list[Any]]]
    if all(before[0] == after[0] for before, after in zip(old_kept, new[:kept], strict=True)):
        op, pairs, added = TABLE, zip(old_kept, new[:kept], strict=True), new[kept:]
    elif _sorted_by_int_id(old) and _sorted_by_int_id(new):
        # Rows kept in id order (an entity coming into view lands between others).
        op = SORTED_TABLE
        pairs = ((old_index[row[0]], row) for row in new if row[0] in old_index)
        added = [row for row in new if row[0] not in old_index]
    else:
        return None  # an order neither patch can state: replace the table
    groups: dict[tuple[int, int], list[Any]] = {}
    for before, after in pairs:
        if before == after and same(before, after):
            continue
        _row_change(before, after, groups)
    return [op, removed, _within_array_limit(groups.values()), added]


def _within_array_limit(groups: Iterable[list[Any]]) -> list[list[Any]]:
    """Groups split so that none is longer than a client decodes (§2: 65,536 elements)."""
    out = []
    for group in groups:
        if len(group) <= MAX_GROUP_LEN:
            out.append(group)
            continue
        mask, diffmask, body = group[0], group[1], group[2:]
        width = 1 if mask == 0 else 1 + mask.bit_count()
        step = (MAX_GROUP_LEN - 2) // width * width
        out.extend([mask, diffmask, *body[i : i + step]] for i in range(0, len(body), step))
    return out


def _sorted_by_int_id(rows: list[Any]) -> bool:
    ids = [row[0] for row in rows]
    return all(type(i) is int for i in ids) and all(a < b for a, b in itertools.pairwise(ids))


def _row_change(
    before: list[Any], after: list[Any], groups: dict[tuple[int, int], list[Any]]
) -> None:
    """Add ``after``'s changes against ``before`` to the group of its masks."""
    width = len(after)
    if width != len(before) or width - 1 > MAX_MASKED_FIELDS:
        groups.setdefault((0, 0), [0, 0]).append(after)
        return
    mask = diffmask = 0
    values: list[Any] = [after[0]]
    bit = 1
    for i in range(1, width):
        a = before[i]
        b = after[i]
        kind = type(a)
        if kind is int and type(b) is int:  # the common case, first: fixed-point fields
            if a != b:
                mask |= bit
                change = b - a
                if -MAX_SAFE_INT <= change <= MAX_SAFE_INT and _safe(a) and _safe(b):
                    diffmask |= bit
                    values.append(change)
                else:
                    values.append(b)
        elif kind is not type(b) or a != b or (kind in _DEEP and not same(a, b)):
            mask |= bit
            values.append(b)
        bit <<= 1
    group = groups.get((mask, diffmask))
    if group is None:
        group = groups[(mask, diffmask)] = [mask, diffmask]
    group.extend(values)


def _safe(n: int) -> bool:
    return -MAX_SAFE_INT <= n <= MAX_SAFE_INT


# -- apply -----------------------------------------------------------------------


def apply(old: Any, patch: Any) -> Any:
    """The state ``patch`` makes of ``old``; raises :class:`DeltaError` if it does not fit."""
    try:
        return _apply(old, patch)
    except DeltaError:
        raise
    except (TypeError, IndexError, KeyError, ValueError, OverflowError, RecursionError) as exc:
        raise DeltaError(f"the patch does not fit the state: {exc!r}") from None


def _apply(old: Any, patch: Any) -> Any:
    if type(patch) is not list or not patch:
        raise DeltaError("a patch is a non-empty array")
    op = patch[0]
    if op == REPLACE and len(patch) == 2:
        return patch[1]
    if op == MAP and len(patch) == 3:
        return _apply_map(old, patch[1], patch[2])
    if op == TABLE and len(patch) == 4:
        return _apply_table(old, patch[1], patch[2], patch[3])
    if op == SORTED_TABLE and len(patch) == 4:
        rows = _apply_table(old, patch[1], patch[2], patch[3])
        if not all(type(row[0]) is int for row in rows):
            raise DeltaError("a sorted table patch applies to rows with integer ids")
        rows.sort(key=_row_id)
        return rows
    raise DeltaError(f"not a patch: opcode {op!r} with {len(patch)} elements")


def _apply_map(old: Any, changes: Any, removed: Any) -> dict[Any, Any]:
    if type(old) is not dict or type(changes) is not dict or type(removed) is not list:
        raise DeltaError("a map patch applies to a map")
    new = dict(old)
    for key in removed:
        if new.pop(key, _MISSING) is _MISSING:
            raise DeltaError(f"map patch removes a key that is not there: {key!r}")
    for key, patch in changes.items():
        if key in new:
            new[key] = _apply(new[key], patch)
        elif type(patch) is list and len(patch) == 2 and patch[0] == REPLACE:
            new[key] = patch[1]
        else:
            raise DeltaError(f"map patch changes a key that is not there: {key!r}")
    return new


_MISSING = object()


def _row_id(row: list[Any]) -> int:
    return int(row[0])


def _apply_table(old: Any, removed: Any, changed: Any, added: Any) -> list[Any]:
    if type(old) is not list or type(removed) is not list:
        raise DeltaError("a table patch applies to an array")
    if type(changed) is not list or type(added) is not list:
        raise DeltaError("a table patch's changed and added are arrays")
    try:
        gone = set(removed)
        rows = [row for row in old if row[0] not in gone] if gone else list(old)
    except (TypeError, IndexError, KeyError) as exc:
        raise DeltaError(f"table patch does not fit: {exc!r}") from None
    if len(rows) != len(old) - len(gone) or len(gone) != len(removed):
        raise DeltaError("table patch removes rows that are not there")
    if changed:
        position = {row[0]: i for i, row in enumerate(rows)}
        try:
            for group in changed:
                _apply_group(rows, position, group)
        except (KeyError, IndexError, TypeError) as exc:
            raise DeltaError(f"table patch does not fit: {exc!r}") from None
    rows.extend(added)
    return rows


def _apply_group(rows: list[Any], position: dict[Any, int], group: Sequence[Any]) -> None:
    mask, diffmask = group[0], group[1]
    if mask == 0:
        for row in group[2:]:
            rows[position[row[0]]] = row
        return
    fields = [i + 1 for i in range(MAX_MASKED_FIELDS) if mask >> i & 1]
    differences = [bool(diffmask >> (field - 1) & 1) for field in fields]
    width = 1 + len(fields)
    if (len(group) - 2) % width:
        raise DeltaError("a table patch group holds a partial row")
    for start in range(2, len(group), width):
        pos = position[group[start]]
        row = list(rows[pos])
        for j, field in enumerate(fields):
            value = group[start + 1 + j]
            row[field] = row[field] + value if differences[j] else value
        rows[pos] = row


# -- a client's side ----------------------------------------------------------------


class SnapshotStates:
    """What a client keeps to apply deltas (PROTOCOL.md §5.6): recent states by snapshot id.

    ``receive`` turns each snapshot's ``state`` into the full state. States older
    than the newest base seen are dropped (bases never go backwards); at most
    ``keep`` are held in any case.
    """

    def __init__(self, apply_patch: Any = None, keep: int = MAX_BASE_AGE + 4) -> None:
        self.apply_patch = apply_patch or apply
        self._keep = keep
        self._states: dict[int, Any] = {}

    def receive(self, snapshot_id: int, base: int | None, state: Any) -> Any:
        """The full state of this snapshot; :class:`DeltaError` if ``base`` is not held."""
        states = self._states
        if base is not None:
            if base not in states:
                raise DeltaError(f"snapshot {snapshot_id} is a delta from {base}, not held")
            state = self.apply_patch(states[base], state)
            for old in [i for i in states if i < base]:
                del states[old]
        states[snapshot_id] = state
        while len(states) > self._keep:
            del states[next(iter(states))]
        return state

    def clear(self) -> None:
        """A new connection or room: nothing held can be a base any more."""
        self._states.clear()
