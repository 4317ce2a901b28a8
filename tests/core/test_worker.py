"""A worker's direct port and the URL redirects carry to it."""

from __future__ import annotations

import pytest

from gameserver.cluster import direct_port, worker_url
from gameserver.settings import Settings

REDIS = "redis://127.0.0.1:6379/0"


def test_a_lone_worker_is_reached_on_its_port() -> None:
    settings = Settings(redis=REDIS)
    assert direct_port(settings, 0, 9001) == 9001
    assert worker_url(settings, 0, 9001, "host-a") == "ws://127.0.0.1:9001/"


def test_workers_of_a_host_have_ports_of_their_own() -> None:
    settings = Settings(redis=REDIS, workers=3)
    assert [direct_port(settings, i, 9001) for i in range(3)] == [9002, 9003, 9004]
    based = Settings(redis=REDIS, workers=3, worker_port_base=7000)
    assert [direct_port(based, i, 9001) for i in range(3)] == [7000, 7001, 7002]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "ws://host-a:9003/"),
        ("::", "ws://host-a:9003/"),
        ("10.1.2.3", "ws://10.1.2.3:9003/"),
        ("::1", "ws://[::1]:9003/"),
    ],
)
def test_the_default_url_names_the_host(host: str, url: str) -> None:
    assert worker_url(Settings(redis=REDIS, workers=2, host=host), 1, 9003, "host-a") == url


def test_tls_makes_it_wss() -> None:
    settings = Settings(redis=REDIS, certfile="c.pem", keyfile="k.pem")
    assert worker_url(settings, 0, 443, "h") == "wss://127.0.0.1:443/"


def test_a_public_url_fills_in_index_and_port() -> None:
    settings = Settings(redis=REDIS, workers=2, public_url="wss://eu1.example.com/w{index}/")
    assert worker_url(settings, 1, 9003, "h") == "wss://eu1.example.com/w1/"
    by_port = Settings(redis=REDIS, public_url="wss://game.example.com:{port}/")
    assert worker_url(by_port, 0, 9001, "h") == "wss://game.example.com:9001/"


def test_bad_cluster_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="needs redis"):
        Settings(workers=2)
    with pytest.raises(ValueError, match="redis://"):
        Settings(redis="http://127.0.0.1/")
    with pytest.raises(ValueError, match="public_url"):
        Settings(redis=REDIS, public_url="http://example.com/")
