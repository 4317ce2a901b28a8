"""The uniform grid: insert/move/remove bookkeeping, and queries equal to a brute-force filter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver.spatial import UniformGrid

coordinate = st.floats(min_value=-5000, max_value=5000, allow_nan=False)
radius = st.floats(min_value=0, max_value=3000, allow_nan=False)
points = st.dictionaries(st.integers(0, 400), st.tuples(coordinate, coordinate), max_size=60)


def within(px: float, py: float, left: float, top: float, right: float, bottom: float) -> float:
    """Squared distance from (px, py) to the rectangle: the brute-force reference."""
    dx = max(left - px, 0.0, px - right)
    dy = max(top - py, 0.0, py - bottom)
    return dx * dx + dy * dy


def test_cell_of_floors_negative_coordinates_too() -> None:
    grid: UniformGrid[int] = UniformGrid(100)
    assert grid.cell_of(0, 0) == (0, 0)
    assert grid.cell_of(99.9, 100) == (0, 1)
    assert grid.cell_of(-0.1, -100) == (-1, -1)
    assert grid.cell_bounds((2, -1)) == (200, -100, 300, 0)


def test_insert_move_remove_keep_one_entry_per_key() -> None:
    grid: UniformGrid[str] = UniformGrid(10)
    grid.insert("a", 1, 1)
    grid.insert("b", 55, 5)
    with pytest.raises(KeyError):
        grid.insert("a", 2, 2)
    grid.move("a", 3, 4)  # same cell
    assert grid.position("a") == (3, 4)
    grid.move("a", 52, 4)  # into b's cell
    assert sorted(grid.nearby(50, 5, 5)) == ["a", "b"]
    assert grid.nearby(1, 1, 5) == []
    grid.remove("b")
    assert "b" not in grid and len(grid) == 1
    assert grid._cells == {(5, 0): {"a": (52, 4)}}  # no empty cell is left behind
    grid.discard("b")  # absent: nothing happens
    with pytest.raises(KeyError):
        grid.remove("b")
    with pytest.raises(KeyError):
        grid.move("b", 0, 0)
    assert list(grid) == ["a"]


def test_bad_cell_size_is_refused() -> None:
    for size in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError):
            UniformGrid(size)


def test_distance_exactly_radius_is_near() -> None:
    grid: UniformGrid[int] = UniformGrid(10)
    grid.insert(1, 30, 40)
    assert grid.nearby(0, 0, 50) == [1]
    assert grid.nearby(0, 0, 49.999) == []
    assert grid.nearby(0, 0, -1) == []


@settings(max_examples=300, deadline=None)
@given(
    points,
    st.lists(st.tuples(st.integers(0, 400), coordinate, coordinate), max_size=30),
    st.floats(min_value=1, max_value=2000, allow_nan=False),
    coordinate,
    coordinate,
    radius,
)
def test_nearby_equals_brute_force(
    placed: dict[int, tuple[float, float]],
    moves: list[tuple[int, float, float]],
    cell: float,
    x: float,
    y: float,
    r: float,
) -> None:
    """After any inserts, moves and removes, nearby(x, y, r) is exactly the brute-force filter."""
    grid: UniformGrid[int] = UniformGrid(cell)
    where = dict(placed)
    for key, (px, py) in placed.items():
        grid.insert(key, px, py)
    for key, px, py in moves:
        if key in where and key % 3 == 0:
            grid.remove(key)
            del where[key]
        elif key in where:
            grid.move(key, px, py)
            where[key] = (px, py)
    expected = {k for k, (px, py) in where.items() if within(px, py, x, y, x, y) <= r * r}
    found = grid.nearby(x, y, r)
    assert len(found) == len(set(found))
    assert set(found) == expected


@settings(max_examples=200, deadline=None)
@given(points, st.integers(-30, 30), st.integers(-30, 30), radius)
def test_near_cell_is_everything_within_radius_of_the_cell(
    placed: dict[int, tuple[float, float]], i: int, j: int, r: float
) -> None:
    """near_cell: within r of some point of the cell; so within r of any viewer there is in,
    and nothing is further than r + the diagonal from any viewer there."""
    grid: UniformGrid[int] = UniformGrid(250)
    for key, (px, py) in placed.items():
        grid.insert(key, px, py)
    left, top, right, bottom = grid.cell_bounds((i, j))
    found = set(grid.near_cell((i, j), r))
    assert found == {
        k for k, (px, py) in placed.items() if within(px, py, left, top, right, bottom) <= r * r
    }
    diagonal = math.hypot(250, 250)
    for viewer in ((left, top), (right - 1e-6, bottom - 1e-6), ((left + right) / 2, top)):
        for k, (px, py) in placed.items():
            d = math.dist(viewer, (px, py))
            if d <= r - 1e-6:  # a margin for rounding at the boundary
                assert k in found
            if k in found:
                assert d <= r + diagonal + 1e-6
