"""The generic delta format: diff/apply round trips, exactness, sizes and bad patches."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.delta import MAX_SAFE_INT, DeltaError, apply, diff, same

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-300, max_value=300),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(-5, 5)), inner, max_size=4),
    ),
    max_leaves=12,
)
row_ids = st.one_of(st.integers(min_value=-3, max_value=12), st.sampled_from(["a", "b", "c"]))


@st.composite
def tables(draw: st.DrawFn, width: int | None = None) -> list[Any]:
    ids = draw(st.lists(row_ids, unique=True, max_size=8))
    rows = []
    for row_id in ids:
        n = width if width is not None else draw(st.integers(0, 4))
        rows.append([row_id, *draw(st.lists(scalars, min_size=n, max_size=n))])
    return rows


@st.composite
def evolved_table(draw: st.DrawFn, old: list[Any]) -> list[Any]:
    """A successor of ``old``: rows kept, changed, reordered, removed or added."""
    new: list[Any] = []
    for row in old:
        action = draw(st.sampled_from(["keep", "keep", "change", "drop", "resize"]))
        if action == "keep":
            new.append(list(row))
        elif action == "change":
            new.append([row[0], *(draw(st.one_of(st.just(v), scalars)) for v in row[1:])])
        elif action == "resize":
            new.append([row[0], *draw(st.lists(scalars, max_size=3))])
    if draw(st.booleans()):
        new = draw(st.permutations(new))
    taken = {row[0] for row in new}
    for row_id in draw(st.lists(row_ids, unique=True, max_size=3)):
        if row_id not in taken:
            new.append([row_id, *draw(st.lists(scalars, max_size=3))])
    return new


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    return {"players": draw(tables(width=3)), "gems": draw(tables(width=2)), "misc": draw(values)}


@st.composite
def successor(draw: st.DrawFn, old: dict[str, Any]) -> dict[str, Any]:
    new = {"players": draw(evolved_table(old["players"])), "gems": draw(evolved_table(old["gems"]))}
    if draw(st.booleans()):
        new["misc"] = draw(st.one_of(st.just(old.get("misc")), values))
    if draw(st.booleans()):
        new["extra"] = draw(values)
    return new


def wire(value: Any) -> Any:
    """What a client decodes: the value through msgpack and back (as the server diffs it)."""
    return msgpack.unpackb(msgpack.packb(value), raw=False, strict_map_key=False)


def assert_exact(a: Any, b: Any) -> None:
    """Equal values of equal types all the way down (maps are unordered, §5.6)."""
    assert same(a, b), (a, b)


@PROPERTY
@given(values, values)
def test_any_two_values_round_trip(old: Any, new: Any) -> None:
    old, new = wire(old), wire(new)
    patch = wire(diff(old, new))
    assert_exact(apply(old, patch), new)


@PROPERTY
@given(st.data())
def test_a_sequence_of_states_round_trips_through_the_wire(data: st.DataObject) -> None:
    state = wire(data.draw(states()))
    for _ in range(data.draw(st.integers(1, 5))):
        new = wire(data.draw(successor(state)))
        patch = wire(diff(state, new))
        assert_exact(apply(state, patch), new)
        state = new


@PROPERTY
@given(tables(width=3), st.data())
def test_apply_never_changes_the_base(old: list[Any], data: st.DataObject) -> None:
    old = wire(old)
    frozen = msgpack.packb(old)
    new = wire(data.draw(evolved_table(old)))
    apply(old, wire(diff(old, new)))
    assert msgpack.packb(old) == frozen


def test_the_documented_example() -> None:
    base = {"players": [[3, 4125, 3000, 2], [7, 5000, 3000, 0]], "gems": [[1, 2500, 1500]]}
    new = {
        "players": [[3, 4192, 3000, 2], [7, 5000, 2950, 1], [9, 100, 200, 0]],
        "gems": [[1, 2500, 1500]],
    }
    patch = diff(base, new)
    assert patch == [
        1,
        {"players": [2, [], [[1, 1, 3, 67], [6, 6, 7, -50, 1]], [[9, 100, 200, 0]]]},
        [],
    ]
    assert apply(base, patch) == new


def test_unchanged_states_have_a_tiny_patch() -> None:
    state = {"players": [[1, 2, 3, 4]] * 1, "gems": [[5, 6, 7]]}
    assert diff(state, state) == [1, {}, []]
    assert diff([[1, 2]], [[1, 2]]) == [2, [], [], []]
    assert diff(5, 5) == [0, 5]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (1, 1.0),
        (1, True),
        (0.0, -0.0),
        ([[1, 1]], [[1, 1.0]]),
        ({"a": [1]}, {"a": [True]}),
        ([[1, 2**60]], [[1, -(2**60)]]),  # a difference JavaScript could not hold
        ([[1, MAX_SAFE_INT]], [[1, -MAX_SAFE_INT]]),
    ],
)
def test_look_alike_values_are_not_equal(old: Any, new: Any) -> None:
    patch = wire(diff(old, new))
    assert_exact(apply(old, patch), new)


def test_moving_players_cost_a_few_bytes_each() -> None:
    old = {
        "players": [[i, 4000 + i, 3000, 0] for i in range(50)],
        "gems": [[i, 10 * i, 20] for i in range(12)],
    }
    new = {"players": [[i, 4000 + i + 47, 3000 - 47, 0] for i in range(50)], "gems": old["gems"]}
    full = len(msgpack.packb(new))
    delta = len(msgpack.packb(diff(old, new)))
    assert delta * 2 < full, (delta, full)
    # one group: [mask, diffmask, id, dx, dy, ...]: 4 bytes per player with 1-byte ids
    assert delta < 4 * 50 + 32


def test_a_row_coming_into_view_between_others_keeps_a_table_sorted_by_id() -> None:
    old = [[2, 20], [5, 50], [9, 90]]
    new = [[2, 21], [4, 40], [9, 90], [12, 120]]
    patch = diff(old, new)
    assert patch == [3, [5], [[1, 1, 2, 1]], [[4, 40], [12, 120]]]
    assert apply(old, patch) == new


@PROPERTY
@given(
    st.dictionaries(st.integers(-50, 50), st.integers(-9, 9), max_size=8),
    st.dictionaries(st.integers(-50, 50), st.integers(-9, 9), max_size=8),
)
def test_tables_sorted_by_id_round_trip(old_rows: dict[int, int], new_rows: dict[int, int]) -> None:
    old = [[i, v] for i, v in sorted(old_rows.items())]
    new = [[i, v] for i, v in sorted(new_rows.items())]
    patch = wire(diff(old, new))
    assert patch[0] in (2, 3)
    assert_exact(apply(old, patch), new)


def test_a_reordered_table_is_replaced_whole() -> None:
    old = [[1, 10], [2, 20]]
    new = [[2, 20], [1, 10]]
    assert diff(old, new) == [0, new]


@pytest.mark.parametrize(
    ("old", "patch"),
    [
        ({"a": 1}, [1, {}, ["b"]]),
        ({"a": 1}, [1, {"b": [2, [], [], []]}, []]),
        ([[1, 2]], [2, [], [[1, 1, 9, 1]], []]),
        ([[1, 2]], [2, [], [[1, 1, 1]], []]),
        ([[1, 2]], [2, [5], [], []]),
        ([[1, 2]], [1, {}, []]),
        (5, [7, 1]),
        (5, "x"),
        (5, []),
        ([["a", 1]], [3, [], [], [[1, 2]]]),
    ],
)
def test_a_patch_that_does_not_fit_raises_delta_error(old: Any, patch: Any) -> None:
    with pytest.raises(DeltaError):
        apply(old, patch)


@PROPERTY
@given(values, values)
def test_apply_raises_only_delta_error_on_any_patch(old: Any, patch: Any) -> None:
    """Whatever a server sends, a client's apply gives a state or a DeltaError."""
    with contextlib.suppress(DeltaError):
        apply(old, patch)


@PROPERTY
@given(values, st.lists(values, max_size=4))
def test_apply_raises_only_delta_error_on_patch_shaped_garbage(old: Any, parts: list[Any]) -> None:
    for op in (0, 1, 2, 3):
        with contextlib.suppress(DeltaError):
            apply(old, [op, *parts])


def test_deeply_nested_maps_give_a_patch_within_the_clients_depth_limit() -> None:
    from protocol import SERVER_DECODE_LIMITS
    from protocol.validate import check_plain_value

    def nest(depth: int, leaf: int) -> Any:
        return leaf if depth == 0 else {"k": nest(depth - 1, leaf)}

    old, new = nest(22, 1), nest(22, 2)
    patch = diff(old, new)
    check_plain_value(patch, SERVER_DECODE_LIMITS.max_depth, "snapshot")  # raises past 32
    assert apply(old, patch) == new
