"""The browser page's copy of the protocol (clients/browser/protocol.js) against the package.

protocol.js restates, as JavaScript data, what the page needs of PROTOCOL.md: the
version, the default limits (the chat rate among them), every close and error code
and the text limits. This reads those tables out of the file (no browser needed) and compares them
with ``protocol`` and the server's default ``Settings``, so the copy cannot drift.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from gameserver.settings import Settings
from protocol import MAX_NAME_CHARS, PROTOCOL_VERSION, CloseCode, DecodeLimits, ErrorCode

PROTOCOL_JS = Path(__file__).resolve().parents[2] / "clients" / "browser" / "protocol.js"

BROWSER_ONLY_CLOSE_CODES = {1005: "NO_STATUS", 1006: "ABNORMAL"}
"""Codes a browser reports on its own (RFC 6455 §7.1.5): never sent by the server."""


@cache
def source() -> str:
    return PROTOCOL_JS.read_text(encoding="utf-8")


def constant(name: str) -> str:
    """The right-hand side of ``export const NAME = ...;`` (one line)."""
    match = re.search(rf"^export const {name} = (.+);$", source(), re.M)
    assert match is not None, f"protocol.js has no constant {name}"
    return match.group(1)


def object_body(name: str) -> str:
    """The text between the braces of ``const NAME = {`` ... ``};`` (frozen or not)."""
    match = re.search(rf"^(?:export )?const {name} = (?:Object\.freeze\()?\{{\n(.*?)^\}}", source(),
                      re.M | re.S)  # fmt: skip
    assert match is not None, f"protocol.js has no object {name}"
    return match.group(1)


def test_version_and_text_limits() -> None:
    assert int(constant("PROTOCOL_VERSION")) == PROTOCOL_VERSION
    assert int(constant("MAX_NAME_CHARS")) == MAX_NAME_CHARS
    assert int(constant("MAX_ROOM_CHARS")) == MAX_NAME_CHARS  # room names: same rule (§5.2)
    assert int(constant("MAX_STR_BYTES")) == DecodeLimits().max_str_len


def test_default_limits_are_the_servers_welcome_limits() -> None:
    """DEFAULT_LIMITS holds exactly what a default server announces in welcome.limits."""
    body = object_body("DEFAULT_LIMITS")
    limits = {key: int(value) for key, value in re.findall(r"^\s+(\w+): (\d+),$", body, re.M)}
    assert len(limits) == body.count(":"), body  # every entry was read
    assert limits == Settings().client_limits()


def test_close_codes_are_the_servers_plus_the_browsers_own() -> None:
    """Every CloseCode, under its name, and only 1005/1006 besides (a browser's own)."""
    body = object_body("CLOSE_CODES")
    codes = {int(code): name for code, name in re.findall(r'^\s+(\d{4}): \[\s*"(\w+)"', body, re.M)}
    assert len(codes) == len(re.findall(r"^\s+\d{4}:", body, re.M)), body
    assert codes == {code.value: code.name for code in CloseCode} | BROWSER_ONLY_CLOSE_CODES


def test_error_codes_are_the_servers() -> None:
    """ERROR_CODES explains every ErrorCode and nothing else."""
    body = object_body("ERROR_CODES")
    codes = re.findall(r'^\s+(\w+): "[^"]+",$', body, re.M)
    assert len(codes) == len(re.findall(r"^\s+\w+:", body, re.M)), body
    assert len(codes) == len(set(codes))
    assert set(codes) == {code.value for code in ErrorCode}
