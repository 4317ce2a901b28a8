"""Where settings come from: flags, the environment, a TOML file, the defaults (sans-I/O).

Precedence, highest first: command-line flags > ``GAMESERVER_*`` environment
variables > the ``--config`` TOML file > the :class:`Settings` defaults. Every
:class:`Settings` field can come from each source under its own name
(``tick_rate``; ``GAMESERVER_TICK_RATE``; ``--tick-rate``). Nothing here reads a
file or the process environment itself: the caller passes them in, so the
merge is tested with plain dicts.

Text values (flags and environment) are parsed by the field's type: booleans
accept true/false/1/0/yes/no/on/off, tuples are comma-separated. TOML values keep
their own types (a list of strings, or one comma-separated string, for a tuple).
An unknown name or a value that does not fit is a :class:`ConfigError` whose
text is the one line the command prints.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .settings import Settings

ENV_PREFIX = "GAMESERVER_"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A setting that cannot be used, or a process that cannot start as configured (say,
    Redis unreachable at startup); its text is one line for the operator.

    Raised inside ``serve_game`` too: ``python -m gameserver`` prints ``error:
    <message>`` and exits 2, and a supervisor seeing a worker exit 2 at its first start
    stops instead of restarting it into the same failure."""


FIELDS: dict[str, str] = {f.name: str(f.type) for f in dataclasses.fields(Settings)}
"""Each setting's name and its type, as written in settings.py."""


AUTO = "auto"
"""``workers = auto`` (flag, variable or file): one worker per CPU."""


def cpu_workers() -> int:
    """The CPUs this process may run on (its affinity, as a container's limit sets it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_text(kind: str, text: str, name: str = "") -> Any:
    """Turn ``text`` into a value of the setting type ``kind``; ValueError if it does not fit."""
    if name == "workers" and text.strip() == AUTO:
        return cpu_workers()
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind in ("str", "str | None"):
        return text
    raise ValueError(f"no parser for settings of type {kind}")


def _from_toml(kind: str, value: Any, name: str = "") -> Any:
    """Check a TOML value against the setting type ``kind``; ValueError if it does not fit."""
    if name == "workers" and value == AUTO:
        return cpu_workers()
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind == "tuple[str, ...]":
        if isinstance(value, str):
            return parse_text(kind, value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind in ("str", "str | None") and isinstance(value, str):
        return value
    expected = {"tuple[str, ...]": "a list of strings", "str | None": "a string"}.get(kind, kind)
    raise ValueError(f"{value!r} is not {expected}")


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings named by ``GAMESERVER_*`` variables; an unknown name is an error."""
    found: dict[str, Any] = {}
    for key, text in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key.removeprefix(ENV_PREFIX).lower()
        kind = FIELDS.get(name)
        if kind is None:
            raise ConfigError(f"{key}: no such setting (see python -m gameserver --help)")
        try:
            found[name] = parse_text(kind, text, name)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    return found


def from_toml(document: Mapping[str, Any], source: str = "config file") -> dict[str, Any]:
    """The settings in a parsed TOML document (top-level keys); an unknown key is an error."""
    found: dict[str, Any] = {}
    for name, value in document.items():
        kind = FIELDS.get(name)
        if kind is None:
            raise ConfigError(f"{source}: {name!r} is no setting (see python -m gameserver --help)")
        try:
            found[name] = _from_toml(kind, value, name)
        except ValueError as exc:
            raise ConfigError(f"{source}: {name}: {exc}") from None
    return found


def merge(
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    toml: Mapping[str, Any] | None = None,
    toml_source: str = "config file",
) -> Settings:
    """Settings from the sources in precedence order: flags > environment > TOML > defaults.

    ``flags`` holds only the flags actually given (already parsed). A value the
    :class:`Settings` checks refuse is a :class:`ConfigError` too.
    """
    values: dict[str, Any] = {}
    values.update(from_toml(toml or {}, toml_source))
    values.update(from_environment(environ or {}))
    values.update(flags or {})
    try:
        return Settings(**values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
