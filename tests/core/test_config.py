"""Settings from flags, the environment and a TOML file: precedence and one-line errors."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from gameserver.config import ConfigError, from_environment, merge, parse_text
from gameserver.settings import Settings


def test_defaults_when_nothing_is_given() -> None:
    assert merge() == Settings()


def test_precedence_flags_over_environment_over_file_over_defaults() -> None:
    toml = tomllib.loads("tick_rate = 10\nsnapshot_rate = 5\nmax_rooms = 7\nport = 9100\n")
    environ = {"GAMESERVER_TICK_RATE": "20", "GAMESERVER_SNAPSHOT_RATE": "10", "HOME": "/x"}
    flags = {"tick_rate": 40}
    settings = merge(flags=flags, environ=environ, toml=toml)
    assert settings.tick_rate == 40  # flag over environment and file
    assert settings.snapshot_rate == 10  # environment over file
    assert settings.max_rooms == 7  # file over default
    assert settings.port == 9100
    assert settings.max_players_per_room == Settings().max_players_per_room  # default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[("true", True), ("1", True), ("YES", True), ("on", True)],
        *[("false", False), ("0", False), ("no", False), ("Off", False)],
    ],
)
def test_booleans_from_the_environment(text: str, expected: bool) -> None:
    assert from_environment({"GAMESERVER_PUBLIC_STATS": text}) == {"public_stats": expected}


def test_tuples_from_the_environment_are_comma_separated() -> None:
    found = from_environment({"GAMESERVER_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,"})
    assert found == {"trusted_proxies": ("10.0.0.0/8", "192.0.2.1")}


def test_optional_strings_and_floats_from_the_environment() -> None:
    found = from_environment({"GAMESERVER_CERTFILE": "c.pem", "GAMESERVER_SEND_TIMEOUT": "2.5"})
    assert found == {"certfile": "c.pem", "send_timeout": 2.5}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GAMESERVER_TICK_RATE": "abc"}, "GAMESERVER_TICK_RATE: 'abc' is not an integer"),
        ({"GAMESERVER_TICK_RAT": "20"}, "GAMESERVER_TICK_RAT: no such setting"),
        ({"GAMESERVER_PUBLIC_STATS": "maybe"}, "GAMESERVER_PUBLIC_STATS: 'maybe' is not a boolean"),
        ({"GAMESERVER_SEND_TIMEOUT": "soon"}, "GAMESERVER_SEND_TIMEOUT: 'soon' is not a number"),
    ],
)
def test_bad_environment_is_one_clear_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        merge(environ=environ)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_toml_values_keep_their_types() -> None:
    toml = tomllib.loads(
        'send_timeout = 2\npublic_stats = true\nallowed_origins = ["https://a.example"]\n'
        'trusted_proxies = "10.0.0.1, 10.0.0.2"\nlog_format = "json"\n'
    )
    settings = merge(toml=toml)
    assert settings.send_timeout == 2.0 and isinstance(settings.send_timeout, float)
    assert settings.public_stats is True
    assert settings.allowed_origins == ("https://a.example",)
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("tick_rat = 20", "server.toml: 'tick_rat' is no setting"),
        ('tick_rate = "20"', "server.toml: tick_rate: '20' is not int"),
        ("tick_rate = 2.5", "server.toml: tick_rate: 2.5 is not int"),
        ('public_stats = "yes"', "server.toml: public_stats: 'yes' is not bool"),
        ("allowed_origins = [1]", "server.toml: allowed_origins: [1] is not a list of strings"),
        ("max_rooms = true", "server.toml: max_rooms: True is not int"),
    ],
)
def test_bad_toml_is_one_clear_error(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        merge(toml=tomllib.loads(toml), toml_source="server.toml")
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"log_level": "foo"}, "log_level must be one of"),
        ({"log_format": "xml"}, "log_format must be text or json"),
        ({"trusted_proxies": ("10.0.0.0/33",)}, "trusted_proxies: '10.0.0.0/33' is no address"),
        ({"tick_rate": 0}, "tick_rate must be 1..1000"),
    ],
)
def test_values_the_settings_refuse_are_config_errors(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        merge(flags=values)


def test_a_bad_file_value_is_reported_even_when_a_flag_overrides_it() -> None:
    """Every source is checked: a typo in the file is not hidden by a flag."""
    with pytest.raises(ConfigError, match="tick_rate"):
        merge(flags={"tick_rate": 20}, toml={"tick_rate": "x"})


def test_parse_text_refuses_an_unknown_type() -> None:
    with pytest.raises(ValueError, match="no parser"):
        parse_text("list[int]", "1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reconnect_grace": -1.0}, "reconnect_grace"),
        ({"max_spectators_per_room": -1}, "max_spectators_per_room"),
        ({"delta_window": 11.0}, "delta_window"),
        ({"delta_window": 0.001}, "at least one tick"),
    ],
)
def test_out_of_range_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**overrides)
