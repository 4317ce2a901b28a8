"""The client's address behind trusted proxies: X-Forwarded-For and RFC 7239 Forwarded."""

from __future__ import annotations

import pytest

from gameserver.proxies import ProxyResolver, forwarded_for, parse_address

PROXIES = ProxyResolver(["10.0.0.0/8", "192.0.2.1"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("[2001:db8:cafe::17]:4711", "2001:db8:cafe::17"),
        ("[2001:db8:cafe::17]", "2001:db8:cafe::17"),
        ("2001:db8:cafe::17", "2001:db8:cafe::17"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        (" 198.51.100.4 ", "198.51.100.4"),
    ],
)
def test_addresses_with_ports_brackets_and_mapped_ipv4(text: str, expected: str) -> None:
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize("text", ["unknown", "_hidden", "", "[2001:db8::1", "999.1.1.1", "a b"])
def test_what_is_no_address(text: str) -> None:
    assert parse_address(text) is None


def test_forwarded_elements_quoted_ipv6_and_other_parameters() -> None:
    header = 'for=192.0.2.43;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.1'
    assert forwarded_for([header, "for=_gazonk"]) == [
        "192.0.2.43",
        "[2001:db8:cafe::17]:4711",
        "_gazonk",
    ]


def test_forwarded_element_without_for_is_an_unknown_hop() -> None:
    assert forwarded_for(["proto=https;by=10.0.0.1"]) == [""]


def test_malformed_forwarded_ends_in_an_unknown_hop() -> None:
    assert forwarded_for(["for=1.2.3.4, garbage here"]) == ["1.2.3.4", ""]


def client(peer: str, *headers: tuple[str, str]) -> str:
    return PROXIES.client_ip(peer, headers)


def test_untrusted_peer_headers_are_ignored() -> None:
    """A client cannot forge its address: only a trusted proxy's headers count."""
    assert client("203.0.113.9", ("X-Forwarded-For", "1.1.1.1")) == "203.0.113.9"
    assert client("203.0.113.9", ("Forwarded", "for=1.1.1.1")) == "203.0.113.9"


def test_no_trusted_proxies_means_headers_are_never_read() -> None:
    resolver = ProxyResolver([])
    assert resolver.client_ip("10.0.0.5", [("X-Forwarded-For", "1.1.1.1")]) == "10.0.0.5"


def test_xff_from_a_trusted_proxy_names_the_client() -> None:
    assert client("10.0.0.5", ("X-Forwarded-For", "203.0.113.7")) == "203.0.113.7"


def test_xff_chain_is_read_from_the_right_past_trusted_hops() -> None:
    """The client may prepend anything; the rightmost untrusted entry is the client."""
    header = ("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3")
    assert client("10.0.0.5", header) == "203.0.113.7"


def test_xff_over_several_header_lines() -> None:
    headers = [("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "203.0.113.7, 192.0.2.1")]
    assert client("10.0.0.5", *headers) == "203.0.113.7"


def test_forwarded_wins_over_xff() -> None:
    headers = [("X-Forwarded-For", "6.6.6.6"), ("Forwarded", 'for="[2001:db8::7]:443"')]
    assert client("10.0.0.5", *headers) == "2001:db8::7"


def test_obfuscated_or_unknown_client_is_the_last_trusted_hop() -> None:
    assert client("10.0.0.5", ("Forwarded", "for=_hidden")) == "10.0.0.5"
    assert client("10.0.0.5", ("Forwarded", "for=unknown, for=10.9.9.9")) == "10.9.9.9"
    assert client("10.0.0.5", ("X-Forwarded-For", "garbage")) == "10.0.0.5"


def test_trusted_proxy_without_headers_is_itself() -> None:
    assert client("10.0.0.5") == "10.0.0.5"


def test_every_hop_trusted_gives_the_leftmost() -> None:
    assert client("10.0.0.5", ("X-Forwarded-For", "10.0.0.9, 192.0.2.1")) == "10.0.0.9"


def test_ipv4_mapped_peer_is_matched_as_ipv4() -> None:
    assert client("::ffff:10.0.0.5", ("X-Forwarded-For", "203.0.113.7")) == "203.0.113.7"
