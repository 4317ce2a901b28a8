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
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from protocol import CloseCode

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)


def resume_seat(session: Session, token: str, now: float) -> bool:
    """Take over the player ``token`` names and send the ``welcome``; False if it names none.

    On False nothing changed: the caller refuses with ``resume_failed`` and goes on
    with the ``hello`` as a fresh one.
    """
    from .session import State  # the session module imports this one

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
    log.info("%s: resumed%s", session.peer, f" in room {room.name}" if info and room else "")
    session.send_welcome(info, now, session.core.seats.issue(session), resumed=True)
    if info is not None and room is not None and was_away:
        room.announce_back(player)
    session.on_timer(now)  # the first ping, right behind the welcome
    return True
