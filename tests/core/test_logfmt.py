"""Log formatting (JSON and text with structured fields) and the summary of repeated refusals."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from gameserver.logfmt import JsonFormatter, Summarizer, TextFormatter


def record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("gameserver.x", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_is_one_object_with_the_extra_fields() -> None:
    line = JsonFormatter().format(
        record("%s: connection closed", "127.0.0.1#3", peer="127.0.0.1#3", code=1000, by=None)
    )
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == "127.0.0.1#3: connection closed"
    assert document["level"] == "INFO" and document["logger"] == "gameserver.x"
    assert document["peer"] == "127.0.0.1#3" and document["code"] == 1000
    assert document["by"] is None
    assert document["time"].endswith("+00:00")


def test_json_keeps_a_traceback_on_one_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        rec = record("failed")
        rec.exc_info = sys.exc_info()
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exception"]


def test_json_turns_unknown_types_into_text() -> None:
    assert json.loads(JsonFormatter().format(record("x", room=object())))["room"].startswith("<")


def test_text_appends_fields_but_not_the_peer_twice() -> None:
    line = TextFormatter().format(
        record("%s: joined", "1.2.3.4#1", peer="1.2.3.4#1", event="joined", room="my room")
    )
    assert line.endswith('gameserver.x: 1.2.3.4#1: joined room="my room"')
    assert line.count("1.2.3.4#1") == 1


def test_text_without_fields_is_the_plain_line() -> None:
    assert TextFormatter().format(record("plain")).endswith("INFO gameserver.x: plain")


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, level: int, message: str, fields: dict[str, Any]) -> None:
        assert level == logging.WARNING
        self.lines.append((message, fields))


def test_first_refusal_logged_then_counted_then_summarised() -> None:
    lines = Lines()
    summary = Summarizer(lines, window=10.0)
    summary.event("per_ip", "1.2.3.4: per-IP cap", 100.0, {"peer": "1.2.3.4"})
    for i in range(57):
        summary.event("per_ip", "1.2.3.4: per-IP cap", 100.0 + i * 0.1)
    assert lines.lines == [("1.2.3.4: per-IP cap", {"event": "per_ip", "peer": "1.2.3.4"})]
    summary.flush(109.9)
    assert len(lines.lines) == 1  # the window is still open
    summary.flush(110.0)
    assert lines.lines[1] == (
        "57 more in the last 10 s like: 1.2.3.4: per-IP cap",
        {"event": "per_ip", "count": 57},
    )


def test_a_lone_refusal_gets_no_summary_and_the_next_window_logs_again() -> None:
    lines = Lines()
    summary = Summarizer(lines, window=10.0)
    summary.event("full", "full", 0.0)
    summary.flush(30.0)
    assert len(lines.lines) == 1
    summary.event("full", "full again", 31.0)
    assert [m for m, _ in lines.lines] == ["full", "full again"]


def test_kinds_are_summarised_apart() -> None:
    lines = Lines()
    summary = Summarizer(lines, window=10.0)
    summary.event("a", "a", 0.0)
    summary.event("b", "b", 1.0)
    summary.event("a", "a", 2.0)
    summary.event("a", "a", 12.0)  # a's window ends: its summary, then a fresh line
    assert [m for m, _ in lines.lines] == ["a", "b", "1 more in the last 12 s like: a", "a"]


def test_text_leaves_out_empty_fields_and_quotes_spaces() -> None:
    line = TextFormatter().format(
        record("%s: connection opened", "p", peer="p", user=None, user_agent="A B", reason="")
    )
    assert line.endswith('p: connection opened user_agent="A B" reason=""')
