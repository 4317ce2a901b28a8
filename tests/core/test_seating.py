"""Seating through a cluster's directory, sans-I/O: a fake directory records the
requests, the test answers them with the outcomes Redis would give (PROTOCOL.md §5.11)."""

from __future__ import annotations

from collections import Counter

from gameserver.cluster.directory import (
    SeatElsewhere,
    SeatHere,
    SeatOutcome,
    SeatRefused,
    TicketRefused,
    TicketSeat,
)
from gameserver.cluster.seating import SeatRequest
from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.outbox import Outbox
from gameserver.session import Session, State
from gameserver.settings import Settings
from protocol import (
    PROTOCOL_VERSION,
    Chat,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    Join,
    Joined,
    Redirect,
    ServerMessage,
    Welcome,
    decode_server_message,
    encode,
)


class FakeDirectory:
    """Records what sessions ask; ids from 1000 on."""

    url = "ws://worker-a:9002/"

    def __init__(self) -> None:
        self.requests: list[SeatRequest] = []
        self.freed: Counter[str] = Counter()
        self.disposed: list[str] = []
        self.next_id = 1000

    def request_seat(self, request: SeatRequest) -> None:
        self.requests.append(request)

    def seat_freed(self, room: str) -> None:
        self.freed[room] += 1

    def room_disposed(self, room: str) -> None:
        self.disposed.append(room)

    def new_player_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def answer(self, outcome: SeatOutcome, now: float = 1.0) -> None:
        self.requests.pop(0).resolve(outcome, now)


def make(ticket_ttl: float = 10.0) -> tuple[Session, Outbox, FakeDirectory, ServerCore]:
    core = ServerCore(Settings(ticket_ttl=ticket_ttl), default_games(), epoch=0.0)
    directory = FakeDirectory()
    core.attach_directory(directory)
    outbox = Outbox(64)
    return Session(core, outbox, 0.0, "peer"), outbox, directory, core


def sent(outbox: Outbox) -> list[ServerMessage]:
    return [decode_server_message(frame) for frame in outbox.take()]


def hello(session: Session, **fields: str) -> None:
    session.receive_bytes(encode(Hello(PROTOCOL_VERSION, "ada", **fields)), 0.5)


def test_player_ids_come_from_the_directory() -> None:
    session, _, _, _ = make()
    assert session.player_id == 1001


def test_a_hello_waits_for_the_directory_then_is_welcomed_in_the_room() -> None:
    session, outbox, directory, core = make()
    hello(session, game="arena")
    assert sent(outbox) == []  # nothing until the directory answers
    request = directory.requests[0]
    assert (request.game, request.room, request.ticket, request.name) == (
        "arena",
        None,
        None,
        "ada",
    )
    assert request.may_create
    directory.answer(SeatHere("arena-7", "arena", created=True, matchmade=True))
    welcome = sent(outbox)[0]
    assert isinstance(welcome, Welcome) and welcome.room is not None
    assert welcome.room.name == "arena-7" and session.state is State.IN_ROOM
    created = core.rooms.get("arena-7")
    # Created here as the directory's matchmaking made it: what a re-register tells Redis.
    assert created is not None and core.rooms.matchmade(created)
    session.connection_lost(2.0)  # dropped: the seat is held, still counted
    assert directory.freed == Counter()
    room = core.rooms.get("arena-7")
    assert room is not None
    core.seats.expire(room, 2.0 + core.settings.reconnect_grace)  # the grace is over
    assert directory.freed == Counter({"arena-7": 1})


def test_a_seat_elsewhere_is_a_redirect_then_close_4005() -> None:
    session, outbox, directory, _ = make(ticket_ttl=7.5)
    hello(session, room="duel")
    directory.answer(SeatElsewhere("duel", "ws://10.0.0.7:9003/", "T" * 22))
    assert sent(outbox) == [Redirect("ws://10.0.0.7:9003/", "T" * 22, "duel", 7500)]
    assert outbox.close_request is not None
    assert outbox.close_request.code == CloseCode.REDIRECTED


def test_a_refusal_is_a_welcome_in_the_lobby_then_the_error() -> None:
    session, outbox, directory, _ = make()
    hello(session, game="arena")
    directory.answer(SeatRefused(ErrorCode.DIRECTORY_UNAVAILABLE, "try again"))
    welcome, error = sent(outbox)[:2]
    assert isinstance(welcome, Welcome) and welcome.room is None
    assert error == Error("directory_unavailable", "try again", "hello")
    assert session.state is State.LOBBY


def test_a_good_ticket_seats_the_player_under_its_first_id() -> None:
    session, outbox, directory, _ = make()
    hello(session, ticket="T" * 22)
    assert directory.requests[0].ticket == "T" * 22
    directory.answer(TicketSeat("duel", "arena", player_id=42, name="ada"))
    welcome = sent(outbox)[0]
    assert isinstance(welcome, Welcome) and welcome.player == 42
    assert session.player.id == 42 and session.peer == "peer#42"


def test_nothing_is_answered_before_a_pending_welcome() -> None:
    session, outbox, directory, _ = make()
    hello(session, game="arena")
    session.receive_bytes(encode(Join(room="other")), 0.6)
    session.receive_bytes(encode(Chat("hi")), 0.6)
    assert sent(outbox) == []
    directory.answer(SeatHere("arena-1", "arena", created=True))
    assert isinstance(sent(outbox)[0], Welcome)
    assert len(directory.requests) == 0  # the join was not asked


def test_a_bad_ticket_is_an_error_and_the_hello_may_come_again() -> None:
    session, outbox, directory, _ = make()
    hello(session, ticket="forged")
    directory.answer(TicketRefused("unknown, expired or already used ticket"))
    (error,) = sent(outbox)
    assert isinstance(error, Error) and error.code == "bad_ticket" and error.ref == "hello"
    assert session.state is State.AWAIT_HELLO
    assert session.connected_at == 1.0  # a fresh hello_timeout from the answer
    hello(session)
    assert isinstance(sent(outbox)[0], Welcome)


def test_a_ticket_means_nothing_to_a_lone_server() -> None:
    core = ServerCore(Settings(), default_games(), epoch=0.0)
    outbox = Outbox(64)
    session = Session(core, outbox, 0.0, "peer")
    hello(session, ticket="T" * 22)
    (error,) = sent(outbox)
    assert isinstance(error, Error) and error.code == "bad_ticket"
    assert session.state is State.AWAIT_HELLO


def test_one_join_at_a_time_and_joined_when_granted() -> None:
    session, outbox, directory, _ = make()
    hello(session)
    sent(outbox)
    session.receive_bytes(encode(Join(room="duel", game="arena")), 1.0)
    session.receive_bytes(encode(Join(room="other", game="arena")), 1.0)
    (refused,) = sent(outbox)
    assert isinstance(refused, Error) and refused.code == "already_in_room"
    assert len(directory.requests) == 1
    directory.answer(SeatHere("duel", "arena", created=True))
    joined = sent(outbox)[0]
    assert isinstance(joined, Joined) and joined.room.name == "duel"


def test_local_checks_come_before_the_directory() -> None:
    session, outbox, directory, _ = make()
    hello(session)
    sent(outbox)
    session.receive_bytes(encode(Join(game="chess")), 1.0)
    session.receive_bytes(encode(Join(room=" padded")), 1.0)
    codes = [m.code for m in sent(outbox) if isinstance(m, Error)]
    assert codes == ["unknown_game", "bad_message"]
    assert directory.requests == []


def test_a_seat_granted_after_the_client_left_goes_back() -> None:
    session, _, directory, core = make()
    hello(session, game="arena")
    session.connection_lost(1.0)
    directory.answer(SeatHere("arena-1", "arena", created=True))
    assert directory.freed == Counter({"arena-1": 1})
    assert core.rooms.get("arena-1") is None


def test_a_disposed_room_is_reported_to_the_directory() -> None:
    session, _, directory, core = make()
    hello(session, game="arena")
    directory.answer(SeatHere("arena-1", "arena", created=True))
    room = core.rooms.get("arena-1")
    assert room is not None
    session.connection_lost(1.0, clean=True)
    core.rooms.dispose(room)
    assert directory.disposed == ["arena-1"]


def test_one_address_has_a_budget_of_directory_joins() -> None:
    core = ServerCore(
        Settings(directory_joins_per_ip=1.0, directory_join_burst=2), default_games(), epoch=0.0
    )
    directory = FakeDirectory()
    core.attach_directory(directory)
    outboxes = []
    for _ in range(3):  # three connections from one address, each asking for a room
        outbox = Outbox(64)
        outboxes.append(outbox)
        Session(core, outbox, 0.0, "10.0.0.1#1").receive_bytes(
            encode(Hello(PROTOCOL_VERSION, "ada", room="duel", game="arena")), 0.5
        )
    assert len(directory.requests) == 2
    welcome, error = sent(outboxes[2])[:2]
    assert isinstance(welcome, Welcome) and welcome.room is None
    assert isinstance(error, Error) and error.code == "rate_limited" and error.ref == "hello"
    # Another address has its own budget; a redirect's ticket costs nothing.
    Session(core, Outbox(64), 0.0, "10.0.0.2#9").receive_bytes(
        encode(Hello(PROTOCOL_VERSION, "bob", game="arena")), 0.5
    )
    Session(core, Outbox(64), 0.0, "10.0.0.1#7").receive_bytes(
        encode(Hello(PROTOCOL_VERSION, "ada", ticket="T" * 22)), 0.5
    )
    assert len(directory.requests) == 4


def test_resume_and_ticket_together_is_a_bad_message() -> None:
    session, outbox, directory, _ = make()
    hello(session, ticket="T" * 22, resume="R" * 43)
    (error,) = sent(outbox)
    assert isinstance(error, Error) and error.code == "bad_message" and error.ref == "hello"
    assert session.state is State.AWAIT_HELLO and directory.requests == []
