"""Log output: text or one JSON object per line, and summaries of repeated refusals.

Log calls that describe a connection pass structured fields with ``extra=``
(``peer``, ``event``, ``code``…). The JSON formatter writes them as keys of
the record's object; the text formatter appends them as ``key=value``.
:class:`Summarizer` keeps a connection flood from flooding the log: the first
refusal of a kind is logged, the rest are counted and reported in one line per
window (sans-I/O: the caller passes the time).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
"""Attributes every LogRecord has: anything else on a record came from ``extra=``."""


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, extras,
    and ``process`` (the worker, "w0", …) in a cluster."""

    def __init__(self, process: str = "") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process:
            document["process"] = self.process
        for key, value in extra_fields(record).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Today's text line, with the structured fields appended as ``key=value`` (None
    values left out)."""

    def __init__(self, process: str = "") -> None:
        who = f"{process} " if process else ""
        super().__init__(f"%(asctime)s %(levelname)s {who}%(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = {k: v for k, v in extra_fields(record).items() if v is not None}
        fields.pop("peer", None)  # every such message already starts with the peer
        fields.pop("event", None)
        if not fields:
            return line
        return line + " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or " " in text or '"' in text) else text


def configure_logging(level: str, fmt: str = "text", process: str = "") -> None:
    """Log to stderr at ``level`` in ``fmt`` ("text" or "json"); websockets' and
    coredis's own chatter only from WARNING (coredis logs every retry of a lost
    connection at INFO; the directory says it once). ``process`` names this process
    in every line ("supervisor", "w0", …; "" for a lone server)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else TextFormatter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("coredis").setLevel(logging.WARNING)


@dataclass
class _Window:
    started: float
    first: str
    level: int
    suppressed: int = 0


class Summarizer:
    """Log the first event of a kind, then one summary line per ``window`` seconds.

    ``event(kind, message, now)`` logs ``message`` if no window of that kind is
    open, and opens one; within the window it only counts. ``flush(now)`` (call
    it every few seconds) closes the windows that have run their time, writing
    ``"<count> more: <first message>"`` for those that counted anything.
    """

    def __init__(
        self,
        emit: Callable[[int, str, dict[str, Any]], None],
        window: float = 10.0,
    ) -> None:
        self.emit = emit
        """Writes one line: its level, its message and its structured fields."""
        self.window = window
        self._open: dict[str, _Window] = {}

    def event(
        self,
        kind: str,
        message: str,
        now: float,
        fields: dict[str, Any] | None = None,
        level: int = logging.WARNING,
    ) -> None:
        self.flush(now)
        window = self._open.get(kind)
        if window is None:
            self._open[kind] = _Window(now, message, level)
            self.emit(level, message, {"event": kind, **(fields or {})})
        else:
            window.suppressed += 1

    def flush(self, now: float) -> None:
        for kind, window in list(self._open.items()):
            if now - window.started >= self.window:
                del self._open[kind]
                if window.suppressed:
                    seconds = round(now - window.started)
                    self.emit(
                        window.level,
                        f"{window.suppressed} more in the last {seconds} s like: {window.first}",
                        {"event": kind, "count": window.suppressed},
                    )
