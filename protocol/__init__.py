"""Wire protocol v1 of the game server: typed messages and a strict msgpack codec.

No I/O and no trio here: both the server and every client build on it. The
normative description is ``PROTOCOL.md`` beside this file.
"""

from .codec import (
    PackedState,
    decode_client_message,
    decode_server_message,
    encode,
    encode_snapshot,
    pack_state,
    pack_value,
)
from .errors import CloseCode, ErrorCode, ProtocolError
from .limits import SERVER_DECODE_LIMITS, DecodeLimits
from .messages import (
    MAX_NAME_CHARS,
    PROTOCOL_VERSION,
    Ack,
    Chat,
    ClientMessage,
    Error,
    Event,
    Hello,
    Input,
    Join,
    Joined,
    Leave,
    Left,
    Message,
    Ping,
    PlayerInfo,
    Pong,
    RoomInfo,
    ServerMessage,
    Snapshot,
    Welcome,
)

__all__ = [
    "MAX_NAME_CHARS",
    "PROTOCOL_VERSION",
    "SERVER_DECODE_LIMITS",
    "Ack",
    "Chat",
    "ClientMessage",
    "CloseCode",
    "DecodeLimits",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "Input",
    "Join",
    "Joined",
    "Leave",
    "Left",
    "Message",
    "PackedState",
    "Ping",
    "PlayerInfo",
    "Pong",
    "ProtocolError",
    "RoomInfo",
    "ServerMessage",
    "Snapshot",
    "Welcome",
    "decode_client_message",
    "decode_server_message",
    "encode",
    "encode_snapshot",
    "pack_state",
    "pack_value",
]
