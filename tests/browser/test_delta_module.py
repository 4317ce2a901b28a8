"""clients/browser/delta.js under Node, against the Python reference ``protocol.delta``.

The module the page, the Node client and nothing else share reads delta snapshots
(PROTOCOL.md §5.6). Here it runs in Node (tests/browser/delta_runner.mjs, fed
msgpack on stdin): the format's example by hand, patches that do not fit (a clear
error, never a wrong state), and a randomized cross-check: many random state
sequences diffed by ``protocol.delta.diff`` in Python, each snapshot received
by a ``DeltaState`` in JS on the base a server could have picked, every state equal
to Python's and no old state ever changed.

Needs ``node`` and ``clients/browser/node_modules`` (``./dev setup``); without them
the tests are skipped, except under the ``CI`` environment variable: then they fail.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest

from protocol.delta import diff
from tests.missing import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("delta_runner.mjs")
MSGPACK_DIR = ROOT / "clients" / "browser" / "node_modules" / "@msgpack" / "msgpack"
NODE = shutil.which("node")
MAX_SAFE = 2**53 - 1


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, once clients/browser is installed; else skip (fail under CI)."""
    reason = None
    if NODE is None:
        reason = "node is not on PATH"
    elif not MSGPACK_DIR.is_dir():
        reason = "clients/browser/node_modules is missing: run ./dev setup"
    if reason is not None:
        skip_or_fail("delta.js", reason)
    assert NODE is not None
    return NODE


def run(
    node: str, patches: list[Any] = (), sequences: list[list[dict[str, Any]]] = ()
) -> dict[str, Any]:
    """Run delta_runner.mjs on the cases; its decoded answer."""
    cases = msgpack.packb({"patches": list(patches), "sequences": list(sequences)})
    result = subprocess.run(
        [node, str(RUNNER)], input=cases, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    answer: dict[str, Any] = msgpack.unpackb(result.stdout, strict_map_key=False)
    return answer


def as_js(value: Any) -> Any:
    """``value`` as it comes back from JS: map keys are strings there (an int key 3 is "3")."""
    if isinstance(value, dict):
        return {str(k): as_js(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_js(v) for v in value]
    return value


BASE = {"players": [[3, 4125, 3000, 2], [7, 5000, 3000, 0]], "gems": [[1, 2500, 1500]]}
NEW = {
    "players": [[3, 4192, 3000, 2], [7, 5000, 2950, 1], [9, 100, 200, 0]],
    "gems": [[1, 2500, 1500]],
}
EXAMPLE = [1, {"players": [2, [], [[1, 1, 3, 67], [6, 6, 7, -50, 1]], [[9, 100, 200, 0]]]}, []]
"""The format's example (the arena): player 3 moves right, 7 up and scores, 9 joins."""


WHOLE_GEM = [2, [], [[0, 0, [1, 7]]], []]
"""Gem 1 sent whole (a row of another length)."""


def test_the_formats_example(node: str) -> None:
    """The example of the format by hand, each opcode alone, and the unchanged state."""
    cases = [
        [BASE, EXAMPLE],
        [BASE, [1, {}, []]],  # unchanged
        [BASE, [0, {"other": 1}]],  # replace
        [BASE, [1, {"extra": [0, [1, 2]]}, ["gems"]]],  # a key added, one removed
        # Row 3 goes, row 7's score is replaced (not a difference), a whole row for 1.
        [BASE, [1, {"players": [2, [3], [[4, 0, 7, 9]], []], "gems": WHOLE_GEM}, []]],
    ]
    patches = run(node, patches=cases)["patches"]
    assert patches[0] == [NEW, True]
    assert patches[1] == [BASE, True]
    assert patches[2] == [{"other": 1}, True]
    assert patches[3] == [{"players": BASE["players"], "extra": [1, 2]}, True]
    assert patches[4] == [{"players": [[7, 5000, 3000, 9]], "gems": [[1, 7]]}, True]
    assert diff(BASE, NEW) == EXAMPLE  # the reference agrees with the format's example


def test_patches_that_do_not_fit_fail_clearly(node: str) -> None:
    """A patch that does not fit its base is a DeltaError saying where, never a wrong state."""
    cases = [
        [BASE, [9, 1]],  # unknown opcode
        [BASE, [1, {"players": [2, [], [[1, 1, 8, 5]], []]}, []]],  # no row 8
        [BASE, [1, {"players": [2, [8], [], []]}, []]],  # removes no row 8
        [BASE, [1, {"players": [2, [], [], [[3, 0, 0, 0]]]}, []]],  # adds row 3 again
        [BASE, [1, {}, ["nothing"]]],  # removes a key not there
        [BASE, [1, {"new": [1, {}, []]}, []]],  # a new key's patch must be a replace
        [BASE, [1, {"players": [1, {}, []]}, []]],  # map patch on a table
        [[[1, "a"]], [2, [], [[1, 1, 1, 5]], []]],  # difference on a string
        [BASE, [1, {"players": [2, [], [[8, 0, 3, 1]], []]}, []]],  # element 4 of 4
        [[["a", 1]], [3, [], [], []]],  # sorted table patch on a string id
    ]
    patches = run(node, patches=cases)["patches"]
    for case, (kind, message) in zip(cases, patches, strict=True):
        assert kind == "error" and message.startswith("DeltaError: "), (case, message)
    assert "unknown patch opcode 9" in patches[0][1]
    assert ".players: table patch changes row 8, not in the table" in patches[1][1]


def snapshot(id_: int, base: int | None, state: Any) -> dict[str, Any]:
    return {"id": id_, "base": base, "state": state}


def test_delta_state_keeps_what_a_server_may_use(node: str) -> None:
    """States by id: older than the newest base are dropped, 64 at most; a missing base
    is an error naming it, and the snapshots after it still apply on held bases."""
    patch = diff(BASE, NEW)
    back = diff(NEW, BASE)
    sequence = [
        snapshot(1, None, BASE),
        snapshot(2, 1, patch),
        snapshot(3, 1, [1, {}, []]),  # same base again: still held
        snapshot(4, 2, back),  # base 2: drops 1
        snapshot(5, 1, patch),  # base 1 is gone
        snapshot(6, 3, patch),  # 3 held (3 > 2)
    ]
    [result] = run(node, sequences=[sequence])["sequences"]
    states = result["states"]
    assert states[:4] == [BASE, NEW, BASE, BASE]
    assert states[4] == ["error", "DeltaError: snapshot 5: its base 1 is not held (held: 2..4)"]
    assert states[5] == NEW
    assert result["held"] == [3, 4, 6]
    assert (result["full"], result["deltas"]) == (1, 4)

    many = [snapshot(1, None, BASE)] + [snapshot(i, 1, [1, {}, []]) for i in range(2, 101)]
    [result] = run(node, sequences=[many])["sequences"]
    assert result["states"][-1] == BASE
    assert result["held"] == [1, *range(38, 101)]  # 64: the base in use and the newest 63


# -- randomized cross-check ------------------------------------------------------


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """Any msgpack value a game may put in its state (ints within JS's exact range)."""
    kinds = ["int", "float", "str", "none", "bool", "bytes", "big"]
    if depth < 3:
        kinds += ["list", "map", "table"]
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-1000, 1000)
    if kind == "big":
        return rng.choice([MAX_SAFE, -MAX_SAFE, MAX_SAFE - rng.randint(0, 5), 2**32])
    if kind == "float":
        return rng.choice([0.5, -2.25, 1e300, rng.random()])
    if kind == "str":
        return rng.choice(["", "a", "ünï", "x" * rng.randint(0, 5)])
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 4)))
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "map":
        return random_map(rng, depth + 1)
    return random_table(rng, depth + 1)


def random_map(rng: random.Random, depth: int) -> dict[Any, Any]:
    keys = ["a", "b", "c", "players", 1, 2, 30]
    return {k: random_value(rng, depth) for k in rng.sample(keys, rng.randint(0, 4))}


def random_table(rng: random.Random, depth: int) -> list[list[Any]]:
    ids: list[Any] = rng.sample([1, 2, 3, 4, 5, 9, "p", "q", 0, -7], rng.randint(0, 6))
    width = rng.choice([1, 2, 4, 33])
    return [[i, *(random_value(rng, depth + 1) for _ in range(width - 1))] for i in ids]


def evolve(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """The next state after ``value``: mostly small changes, sometimes anything."""
    roll = rng.random()
    if roll < 0.05:
        return random_value(rng, depth)
    if isinstance(value, dict):
        out = dict(value)
        for key in list(out):
            roll = rng.random()
            if roll < 0.1:
                del out[key]
            elif roll < 0.6:
                out[key] = evolve(rng, out[key], depth + 1)
        if rng.random() < 0.2:
            out[rng.choice(["a", "d", 7, "gems"])] = random_value(rng, depth + 1)
        return out
    if isinstance(value, list) and all(is_row(r) for r in value):
        rows = [list(r) for r in value if rng.random() > 0.1]
        for row in rows:
            for i in range(1, len(row)):
                if rng.random() < 0.3:
                    row[i] = evolve_scalar(rng, row[i])
            if rng.random() < 0.05:
                row.append(1)  # a longer row: sent whole
            elif rng.random() < 0.05 and len(row) > 1:
                row.pop()
        if rng.random() < 0.05:
            rng.shuffle(rows)
        taken = {r[0] for r in rows}
        for new_id in rng.sample(range(40), rng.randint(0, 2)):
            if new_id not in taken:
                rows.append([new_id, rng.randint(0, 5000), rng.randint(0, 5000), 0])
        if all(type(r[0]) is int for r in rows) and rng.random() < 0.5:
            rows.sort(key=lambda r: r[0])  # kept in id order (a sorted table patch)
        return rows
    if isinstance(value, list):
        return [evolve(rng, v, depth + 1) for v in value]
    return evolve_scalar(rng, value)


def is_row(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and isinstance(value[0], int | str)
        and not isinstance(value[0], bool)
    )


def evolve_scalar(rng: random.Random, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and rng.random() < 0.8:
        moved = value + rng.randint(-70, 70)
        return moved if abs(moved) <= MAX_SAFE else value
    return random_value(rng, 3) if rng.random() < 0.3 else value


def arena_state(rng: random.Random) -> dict[str, Any]:
    players = [[i, rng.randint(0, 10000), rng.randint(0, 6000), 0] for i in range(1, 11)]
    gems = [[i, rng.randint(0, 10000), rng.randint(0, 6000)] for i in range(1, 6)]
    return {"players": players, "gems": gems}


def random_sequence(rng: random.Random, length: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """States 1..length, and the snapshots a server could send for them.

    Each snapshot's base is one of the last few ids (never older than the newest base
    so far, as on a real connection) or none (a full snapshot, now and then).
    """
    state: Any = arena_state(rng) if rng.random() < 0.7 else random_value(rng)
    states = [state]
    snapshots = [snapshot(1, None, state)]
    newest_base = 0
    for id_ in range(2, length + 1):
        state = evolve(rng, state)
        states.append(state)
        candidates = list(range(max(newest_base, id_ - 6, 1), id_))
        if rng.random() < 0.05 or not candidates:
            snapshots.append(snapshot(id_, None, state))
            continue
        base = rng.choice(candidates)
        newest_base = base
        snapshots.append(snapshot(id_, base, diff(states[base - 1], state)))
    return states, snapshots


def opcodes_of(patch: Any) -> list[int]:
    """The opcodes in ``patch`` and the patches inside it (table groups hold no patch)."""
    if not isinstance(patch, list) or not patch or patch[0] not in (0, 1, 2, 3):
        return []
    found = [patch[0]]
    if patch[0] == 1 and isinstance(patch[1], dict):
        for inner in patch[1].values():
            found += opcodes_of(inner)
    return found


def test_random_states_diffed_in_python_apply_in_js(node: str) -> None:
    """Python's diff, JS's apply: 300 random sequences of 40 states, every state equal,
    every kind of patch (replace, map, table, sorted table) among them."""
    rng = random.Random(1913)
    expected = []
    sequences = []
    for _ in range(300):
        states, snapshots = random_sequence(rng, 40)
        expected.append(states)
        sequences.append(snapshots)
    answer = run(node, sequences=sequences)["sequences"]
    deltas = 0
    for states, snapshots, result in zip(expected, sequences, answer, strict=True):
        assert result["states"] == as_js(states), snapshots
        deltas += result["deltas"]
    assert deltas > 300 * 30  # most snapshots were deltas, not replacements
    patches = [snap["state"] for s in sequences for snap in s if snap["base"] is not None]
    opcodes = Counter(op for patch in patches for op in opcodes_of(patch))
    assert min(opcodes[op] for op in (0, 1, 2, 3)) > 50, opcodes  # every kind of patch, often

    # Each patch alone, old left as it was (the runner compares old's bytes before and after).
    pairs = [[s[i - 1], diff(s[i - 1], s[i])] for s in expected[:100] for i in range(1, len(s))]
    patches = run(node, patches=pairs)["patches"]
    for (old, _), result in zip(pairs, patches, strict=True):
        assert result[1] is True, old
