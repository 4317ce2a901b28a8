"""Delta snapshots through Session and Room: bases, fallbacks, shared encodes, exactness."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameserver.core import ServerCore
from gameserver.game import Game, Player
from gameserver.games import default_games
from gameserver.settings import Settings
from protocol import Ack, Hello, Join, Joined, Leave, Snapshot, pack_state
from protocol.delta import MAX_BASE_AGE, SnapshotStates, same
from tests.core.test_session import Client

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Script(Game):
    """Shows whatever state the test sets: ``state`` (or ``per_viewer[id]`` when set)."""

    name = "script"
    state: Any = None
    per_viewer: dict[int, Any] | None = None
    snapshots_made = 0

    def step(self, dt: float) -> None:
        pass

    def view_key(self, viewer: Player) -> Any:
        return None if self.per_viewer is None else viewer.id

    def snapshot(self, viewer: Player) -> Any:
        Script.snapshots_made += 1
        if self.per_viewer is not None:
            return self.per_viewer[viewer.id]
        return self.state


class Declines(Script):
    """A game whose diff always declines: its clients get full snapshots."""

    name = "declines"
    delta_format = "declines-v1"

    def diff(self, old: Any, new: Any) -> Any:
        return None


def make_core(**overrides: Any) -> ServerCore:
    games = default_games()
    games.register(Script)
    games.register(Declines)
    return ServerCore(Settings(**overrides), games, epoch=0.0, seed=1)


class DeltaClient(Client):
    """A client that applies deltas as PROTOCOL.md §5.6 says (``SnapshotStates``: the states
    of the last 64 snapshots received, none older than the newest base)."""

    def __init__(self, core: ServerCore) -> None:
        super().__init__(core)
        self.states = SnapshotStates()
        self.received: list[Snapshot] = []

    def receive(self) -> Any:
        """Read what was sent; return the newest snapshot's state (applied), or None."""
        newest = None
        for message in self.take():
            if not isinstance(message, Snapshot):
                continue
            self.received.append(message)
            newest = self.states.receive(message.id, message.base, message.state)
        return newest

    def ack(self, snapshot_id: int | None = None) -> None:
        self.send(Ack(snapshot_id if snapshot_id is not None else self.received[-1].id))


def joined(core: ServerCore, game: str = "script", deltas: bool = True) -> DeltaClient:
    client = DeltaClient(core)
    client.send(Hello(1, "ada", deltas=deltas))
    client.send(Join(game=game, room="r"))
    client.take()
    return client


def game_of(core: ServerCore) -> Script:
    room = core.rooms.get("r")
    assert room is not None and isinstance(room.game, Script)
    return room.game


def tick(core: ServerCore, n: int) -> None:
    room = core.rooms.get("r")
    assert room is not None
    room.tick(n, 1 / 30)


def players(n: int, x: int) -> dict[str, Any]:
    return {"players": [[i, x + i, 3000, 0] for i in range(n)], "gems": [[100, 5, 5]]}


def test_first_snapshot_is_full_then_deltas_from_the_acknowledged_one() -> None:
    core = make_core()
    client = joined(core)
    game = game_of(core)
    game.state = players(5, 1000)
    tick(core, 1)
    assert client.receive() == game.state
    assert client.received[-1].base is None
    client.ack()
    game.state = players(5, 1067)
    tick(core, 2)
    assert client.receive() == game.state
    assert client.received[-1].base == client.received[-2].id
    # the base stays the acknowledged one until a newer ack
    game.state = players(5, 1134)
    tick(core, 3)
    assert client.receive() == game.state
    assert client.received[-1].base == 1


def test_without_hello_deltas_every_snapshot_is_full_even_when_acknowledged() -> None:
    core = make_core()
    client = joined(core, deltas=False)
    game = game_of(core)
    for n in range(1, 6):
        game.state = players(5, 1000 + n)
        tick(core, n)
        assert client.receive() == game.state
        client.ack()
    assert all(s.base is None for s in client.received)


def test_a_delta_is_smaller_than_the_full_snapshot() -> None:
    core = make_core()
    client = joined(core)
    witness = joined(core, deltas=False)
    game = game_of(core)
    game.state = players(50, 1000)
    tick(core, 1)
    client.receive()
    client.ack()
    witness.outbox.take()
    game.state = players(50, 1047)
    tick(core, 2)
    delta = client.outbox.take()[0]
    full = witness.outbox.take()[0]
    assert len(delta) * 2 < len(full), (len(delta), len(full))


def test_clients_sharing_an_audience_and_a_base_share_one_encode() -> None:
    core = make_core()
    clients = [joined(core) for _ in range(10)]
    game = game_of(core)
    room = core.rooms.get("r")
    assert room is not None
    game.state = players(20, 1000)
    tick(core, 1)
    for c in clients:
        c.receive()
        c.ack()
    before = room.delta_stats.delta_encodes
    game.state = players(20, 1050)
    tick(core, 2)
    assert room.delta_stats.delta_encodes - before == 1
    for c in clients:
        assert c.receive() == game.state
    # half ack the newest, half stay on the old base: two encodes
    for c in clients[:5]:
        c.ack()
    before = room.delta_stats.delta_encodes
    game.state = players(20, 1100)
    tick(core, 3)
    assert room.delta_stats.delta_encodes - before == 2
    assert all(c.receive() == game.state for c in clients)
    assert room.stats()["delta_encodes"] == room.delta_stats.delta_encodes


def test_a_base_older_than_the_window_gives_a_full_snapshot() -> None:
    core = make_core(delta_window=0.1)  # 3 ticks at 30 Hz
    client = joined(core)
    game = game_of(core)
    game.state = players(5, 0)
    tick(core, 1)
    client.receive()
    client.ack()
    for n in range(2, 8):
        game.state = players(5, n)
        tick(core, n)
        assert client.receive() == game.state
    bases = [s.base for s in client.received]
    assert bases == [None, 1, 1, 1, None, None, None]


def test_an_ack_of_a_snapshot_past_the_window_is_no_base() -> None:
    core = make_core(delta_window=0.1)
    client = joined(core)
    game = game_of(core)
    for n in range(1, 7):
        game.state = players(3, n)
        tick(core, n)
        client.receive()
    client.ack(1)  # received long ago: its state may be gone from the server's reach
    game.state = players(3, 99)
    tick(core, 7)
    assert client.receive() == game.state
    assert client.received[-1].base is None


def test_a_new_room_starts_full() -> None:
    core = make_core()
    client = joined(core)
    game = game_of(core)
    game.state = players(3, 1)
    tick(core, 1)
    client.receive()
    client.ack()
    client.send(Leave())
    client.send(Join(game="script", room="r"))
    client.take()
    tick(core, 2)
    client.receive()
    assert client.received[-1].base is None


def test_a_game_whose_diff_declines_sends_full_and_names_its_format() -> None:
    core = make_core()
    client = DeltaClient(core)
    client.send(Hello(1, "ada", deltas=True))
    client.send(Join(game="declines", room="r"))
    rooms = [m.room for m in client.take() if isinstance(m, Joined)]
    assert [r.delta for r in rooms] == ["declines-v1"]
    game_of(core).state = players(3, 1)
    tick(core, 1)
    client.receive()
    client.ack()
    tick(core, 2)
    client.receive()
    assert [s.base for s in client.received] == [None, None]


def test_a_delta_the_full_state_would_not_beat_is_sent_full() -> None:
    core = make_core()
    client = joined(core)
    game = game_of(core)
    game.state = [1, 2, 3]
    tick(core, 1)
    client.receive()
    client.ack()
    game.state = [4, 5, 6, 7]  # a replace patch: [0, [...]] is longer than the list
    tick(core, 2)
    assert client.receive() == [4, 5, 6, 7]
    assert client.received[-1].base is None


def test_unchanged_state_costs_a_three_byte_patch() -> None:
    core = make_core()
    client = joined(core)
    game = game_of(core)
    game.state = players(30, 5)
    tick(core, 1)
    client.receive()
    client.ack()
    tick(core, 2)
    frame = client.outbox.take()[0]
    assert frame.endswith(b"\xa5state" + pack_state([1, {}, []]))


# -- the property: whatever is dropped and acknowledged, the client ends exact ------------

row_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.integers(-50, 50),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=2),
)


@st.composite
def state_sequences(draw: st.DrawFn) -> list[Any]:
    ids = draw(st.lists(st.integers(0, 20), unique=True, max_size=6))
    rows = [[i, draw(row_values), draw(row_values)] for i in ids]
    sequence = []
    for _ in range(draw(st.integers(1, 25))):
        kept = [r for r in rows if draw(st.integers(0, 9)) > 0]
        rows = [[r[0], *(draw(st.one_of(st.just(v), row_values)) for v in r[1:])] for r in kept]
        for new_id in draw(st.lists(st.integers(21, 40), unique=True, max_size=2)):
            if all(r[0] != new_id for r in rows):
                rows.append([new_id, draw(row_values), draw(row_values)])
        sequence.append({"rows": rows, "n": draw(st.integers(0, 3))})
    return sequence


@PROPERTY
@given(state_sequences(), st.data())
def test_any_drop_and_ack_pattern_ends_with_the_servers_state(
    sequence: list[Any], data: st.DataObject
) -> None:
    core = make_core(delta_window=0.2)
    client = joined(core)
    game = game_of(core)
    for n, state in enumerate(sequence, start=1):
        game.state = state
        tick(core, n)
        # read now, or leave it in the slot to be replaced by the next one (a slow reader)
        if data.draw(st.booleans(), label=f"read at tick {n}"):
            got = client.receive()
            assert got is not None and same(got, state)
            if data.draw(st.booleans(), label=f"ack at tick {n}"):
                client.ack()
    tick(core, len(sequence) + 1)
    final = client.receive()
    assert final is not None and same(final, sequence[-1])


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=30))
def test_views_that_change_audience_stay_exact(plan: list[tuple[int, bool]]) -> None:
    """Each viewer has its own audience; a client's base may come from another audience's tick."""
    core = make_core()
    client = joined(core)
    game = game_of(core)
    game.per_viewer = {}
    for n, (variant, ack) in enumerate(plan, start=1):
        game.per_viewer[client.pid] = players(3 + variant, n * (variant + 1))
        tick(core, n)
        assert client.receive() == game.per_viewer[client.pid]
        if ack:
            client.ack()


def test_acks_spread_over_many_ticks_meet_on_a_few_bases() -> None:
    """Sixteen clients whose acks trail by 0..7 ticks: without a grid, 8 diffs a tick."""
    core = make_core()
    clients = [joined(core) for _ in range(16)]
    game = game_of(core)
    room = core.rooms.get("r")
    assert room is not None
    per_tick = []
    for n in range(1, 61):
        game.state = players(20, 1000 + 7 * n)
        before = room.delta_stats.delta_encodes
        tick(core, n)
        per_tick.append(room.delta_stats.delta_encodes - before)
        for i, c in enumerate(clients):
            assert c.receive() == game.state
            lag = i % 8
            if len(c.received) > lag:
                c.ack(c.received[-1 - lag].id)
    assert max(per_tick[20:]) <= 3, per_tick
    assert sum(per_tick[20:]) / 40 < 3
    assert all(s.base is not None for c in clients for s in c.received[10:])


@PROPERTY
@given(st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=40))
def test_several_clients_acking_at_random_all_stay_exact(plan: list[list[bool]]) -> None:
    core = make_core()
    clients = [joined(core) for _ in range(4)]
    game = game_of(core)
    for n, acks in enumerate(plan, start=1):
        game.state = players(6, n * 13)
        tick(core, n)
        for c, ack in zip(clients, acks, strict=True):
            assert c.receive() == game.state
            if ack:
                c.ack()


class BrokenDiff(Script):
    name = "broken_diff"

    def diff(self, old: Any, new: Any) -> Any:
        raise RuntimeError("a bug in the game's diff")


def test_a_diff_that_raises_fails_the_tick_like_a_snapshot_that_raises() -> None:
    games = default_games()
    games.register(BrokenDiff)
    core = ServerCore(Settings(), games, epoch=0.0, seed=1)
    client = DeltaClient(core)
    client.send(Hello(1, "ada", deltas=True))
    client.send(Join(game="broken_diff", room="r"))
    client.take()
    room = core.rooms.get("r")
    assert room is not None
    room.tick(1, 1 / 30)
    client.receive()
    client.ack()
    with pytest.raises(RuntimeError, match="diff"):
        room.tick(2, 1 / 30)
    room.fail("game crashed")  # what the ticker does with it
    assert client.close_code == 1011


def test_a_base_is_never_more_than_max_base_age_ids_back() -> None:
    """With a long delta_window, a client that acked once long ago still gets full snapshots
    once its base is MAX_BASE_AGE ids back: a client keeping 64 states always holds bases."""
    core = make_core(delta_window=10.0)
    client = joined(core)
    game = game_of(core)
    game.state = players(3, 0)
    tick(core, 1)
    client.receive()
    client.ack()
    for n in range(2, MAX_BASE_AGE + 5):
        game.state = players(3, n)
        tick(core, n)
        assert client.receive() == game.state
    bases = [s.base for s in client.received]
    assert bases[1 : MAX_BASE_AGE + 1] == [1] * MAX_BASE_AGE
    assert bases[MAX_BASE_AGE + 1 :] == [None] * (len(bases) - MAX_BASE_AGE - 1)


def test_a_state_msgpack_cannot_give_back_goes_out_full_and_the_room_plays_on() -> None:
    core = make_core()
    client = joined(core)
    other = joined(core, deltas=False)
    game = game_of(core)
    game.state = {(1, 2): 3}  # packs (array key), does not unpack
    tick(core, 1)
    client.outbox.take()
    client.ack(1)
    tick(core, 2)
    room = core.rooms.get("r")
    assert room is not None and not room.closed
    frames = client.outbox.take()
    assert len(frames) == 1 and b"\xa4base\xc0" in frames[0]  # base nil: full
    assert other.outbox.take()


def test_a_huge_table_patch_stays_within_the_clients_array_limit() -> None:
    from protocol import SERVER_DECODE_LIMITS, decode_server_message

    core = make_core(max_message_bytes=1 << 20)
    client = joined(core)
    game = game_of(core)
    game.state = {"rows": [[i, 0, 0] for i in range(40_000)]}
    tick(core, 1)
    client.receive()
    client.ack()
    game.state = {"rows": [[i, 1, 1] for i in range(40_000)]}
    tick(core, 2)
    (frame,) = client.outbox.take()
    message = decode_server_message(frame, SERVER_DECODE_LIMITS)
    assert isinstance(message, Snapshot) and message.base == 1
    assert client.states.receive(message.id, message.base, message.state) == game.state
