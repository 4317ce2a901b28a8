"""A ``hello`` with a resume token: the new connection takes the player's seat back.

Sans-I/O, called by :class:`~gameserver.session.Session` for ``hello.resume``.
What carries on and what starts afresh on the new connection:

- carries on: the :class:`~gameserver.game.Player` (id, name, identity), the seat
  (entity, score, queued-input ``seq`` numbering: ``snapshot.ack`` continues);
- fresh: the outbox, the latency estimator (``player.latency`` is rebound to it),
  the rate limits, snapshot ids (from 1, no ack held, so the first snapshot is a
  full one: a future delta encoder must start from no base), the resume token.

If the player's old connection still looks open (half-open TCP), it is closed
4006 and the room's seat simply changes hands: the others saw no drop.
``hold_seat`` is the other half: a connection lost in a room keeps its seat.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from protocol import CloseCode

if TYPE_CHECKING:
    from .room import Room
    from .session import Session

log = logging.getLogger(__name__)


def resume_seat(session: Session, token: str, now: float) -> bool:
    """Take over the player ``token`` names and send the ``welcome``; False if it names none.

    On False nothing changed: the caller refuses with ``resume_failed`` and goes on
    with the ``hello`` as a fresh one.
    """
    from .seating import State  # the session module imports this one

    claim = session.core.seats.claim(token, session.player.identity, now)
    if claim is None:
        return False
    player = claim.player
    room = claim.room if claim.holder is None else claim.holder.hand_over()
    was_away = not player.connected
    player.rebind_latency(session.latency_report)
    session.player = player
    session.peer = f"{session.peer.rpartition('#')[0] or session.peer}#{player.id}"
    info = None
    if room is not None:
        session.room = room
        session.state = State.IN_ROOM
        try:
            info = room.resume(player.id, session)
        except Exception:
            log.exception("%s: game.on_resume failed", session.peer)
            session.close(CloseCode.INTERNAL_ERROR, "game error on resume")
            return True
        if info is None:  # the seat went meanwhile (cannot happen within one call)
            session.room = None
            session.state = State.LOBBY
    log.info(
        "%s: resumed%s",
        session.peer,
        f" in room {room.name}" if info and room else "",
        extra={"peer": session.peer, "event": "resumed", "room": room.name if room else None},
    )
    session.send_welcome(info, now, session.core.seats.issue(session), resumed=True)
    if info is not None and room is not None and was_away:
        room.announce_back(player)
    session.on_timer(now)  # the first ping, right behind the welcome
    return True


def hold_seat(session: Session, now: float) -> bool:
    """Keep the session's seat for ``reconnect_grace`` instead of leaving (False: not held:
    resume off, no token, a spectator, or not in a room)."""
    room = session.room
    if room is None or session.spectating or not session.core.seats.hold(session, room, now):
        return False
    session.room = None
    session.outbox.discard_snapshot()
    return True


def hand_over(session: Session) -> Room | None:
    """A resume on another connection takes this session's player: close it 4006.

    Returns the room whose seat now belongs to the new connection (None: not seated).
    """
    from .seating import State

    if session.spectating:
        session.close(CloseCode.REPLACED, "replaced by a resumed connection")  # no seat
        return None
    room, session.room = session.room, None
    session.state = State.CLOSED
    session.outbox.discard_snapshot()
    session.outbox.close(CloseCode.REPLACED, "replaced by a resumed connection")
    return room
