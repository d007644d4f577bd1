"""Endpoint strings: parsing, str round-trip for every scheme, malformed input (ValueError naming
the bad part), and the .address/.endpoint of listeners and datagram sockets as connect targets."""

from __future__ import annotations

import ipaddress
import socket as stdlib
import unittest.mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import socketeer
from socketeer import endpoints
from socketeer import (Address, AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, Endpoint, Inet6Address,
                       InetAddress, UnixAddress, parse_endpoint)

# text, scheme, kind, family, host, port, path, abstract
WELL_FORMED = [
    ("tcp://127.0.0.1:80", "tcp", SOCK_STREAM, 0, "127.0.0.1", 80, None, False),
    ("tcp://localhost:0", "tcp", SOCK_STREAM, 0, "localhost", 0, None, False),
    ("tcp://[::1]:8080", "tcp", SOCK_STREAM, 0, "::1", 8080, None, False),
    ("tcp://[fe80::1%lo]:80", "tcp", SOCK_STREAM, 0, "fe80::1%lo", 80, None, False),
    ("tcp4://127.0.0.1:65535", "tcp4", SOCK_STREAM, AF_INET, "127.0.0.1", 65535, None, False),
    ("tcp4://localhost:1", "tcp4", SOCK_STREAM, AF_INET, "localhost", 1, None, False),
    ("tcp6://[::]:1", "tcp6", SOCK_STREAM, AF_INET6, "::", 1, None, False),
    ("udp://0.0.0.0:53", "udp", SOCK_DGRAM, 0, "0.0.0.0", 53, None, False),
    ("udp4://127.0.0.1:9", "udp4", SOCK_DGRAM, AF_INET, "127.0.0.1", 9, None, False),
    ("udp6://[::1]:9", "udp6", SOCK_DGRAM, AF_INET6, "::1", 9, None, False),
    ("unix:/run/app.sock", "unix", SOCK_STREAM, AF_UNIX, None, None, "/run/app.sock", False),
    ("unix:relative/app.sock", "unix", SOCK_STREAM, AF_UNIX, None, None, "relative/app.sock", False),
    ("unix:@name", "unix", SOCK_STREAM, AF_UNIX, None, None, "name", True),
    ("unix+dgram:/tmp/d.sock", "unix+dgram", SOCK_DGRAM, AF_UNIX, None, None, "/tmp/d.sock", False),
    ("unix+dgram:@d", "unix+dgram", SOCK_DGRAM, AF_UNIX, None, None, "d", True),
    ("unix+dgram:", "unix+dgram", SOCK_DGRAM, AF_UNIX, None, None, "", False),
    ("unix+seqpacket:/tmp/s.sock", "unix+seqpacket", SOCK_SEQPACKET, AF_UNIX, None, None, "/tmp/s.sock", False),
    ("unix+seqpacket:@s p", "unix+seqpacket", SOCK_SEQPACKET, AF_UNIX, None, None, "s p", True),
]


@pytest.mark.parametrize("text, port, protocol", [("tcp://127.0.0.1:http", 80, "tcp"),
                                                  ("udp://[::1]:domain", 53, "udp"),
                                                  ("tcp4://localhost:echo", 7, "tcp")])
def test_service_names_are_ports_from_the_local_services_database(text, port, protocol):
    """The stdlib's getservbyname (/etc/services, no network) is the oracle."""
    endpoint = parse_endpoint(text)
    assert endpoint.port == port == stdlib.getservbyname(text.rpartition(":")[2], protocol)
    assert str(endpoint).endswith(f":{port}") and parse_endpoint(str(endpoint)) == endpoint


@pytest.mark.parametrize("text, scheme, kind, family, host, port, path, abstract", WELL_FORMED,
                         ids=[case[0] for case in WELL_FORMED])
def test_parse_and_str_round_trip(text, scheme, kind, family, host, port, path, abstract):
    endpoint = parse_endpoint(text)
    assert (endpoint.scheme, endpoint.kind, endpoint.family, endpoint.host, endpoint.port, endpoint.path,
            endpoint.abstract) == (scheme, kind, family, host, port, path, abstract)
    assert endpoint.is_unix == (path is not None)
    assert str(endpoint) == text
    assert parse_endpoint(str(endpoint)) == endpoint
    assert parse_endpoint(endpoint) is endpoint  # Endpoints pass through


def test_unix_url_form_with_slashes():
    assert parse_endpoint("unix:///run/app.sock") == parse_endpoint("unix:/run/app.sock")


def test_endpoints_are_hashable_values():
    assert len({parse_endpoint("tcp://127.0.0.1:1"), parse_endpoint("tcp://127.0.0.1:1")}) == 1
    with pytest.raises(AttributeError):
        parse_endpoint("tcp://127.0.0.1:1").port = 2  # type: ignore[misc]


ports = st.integers(0, 65535)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
names = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}\Z")
unix_paths = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=100).filter(
    lambda p: not p.startswith(("@", "//")))


@given(scheme=st.sampled_from(["tcp", "udp"]), host=st.one_of(ipv4, names), port=ports)
def test_inet_round_trip(scheme, host, port):
    endpoint = parse_endpoint(f"{scheme}://{host}:{port}")
    assert (endpoint.host, endpoint.port) == (host, port)
    assert str(endpoint) == f"{scheme}://{host}:{port}"


@given(scheme=st.sampled_from(["tcp", "tcp6", "udp", "udp6"]), host=ipv6, port=ports)
def test_ipv6_round_trip(scheme, host, port):
    endpoint = parse_endpoint(f"{scheme}://[{host}]:{port}")
    assert (endpoint.host, endpoint.port) == (host, port)
    assert parse_endpoint(str(endpoint)) == endpoint
    assert endpoint.addresses() == [Inet6Address(host, port)]


@given(scheme=st.sampled_from(["unix", "unix+dgram", "unix+seqpacket"]), path=unix_paths, abstract=st.booleans())
def test_unix_round_trip(scheme, path, abstract):
    text = f"{scheme}:{'@' if abstract else ''}{path}"
    endpoint = parse_endpoint(text)
    assert (endpoint.path, endpoint.abstract) == (path, abstract)
    assert str(endpoint) == text
    assert endpoint.addresses() == [UnixAddress(path, abstract=abstract)]


# Every unix address, as an endpoint of each kind, survives str() -> parse_endpoint(): paths that
# begin with "@" or "//", abstract names with NULs, bytes that are not UTF-8 (the rule of
# Address.parse, which parse_endpoint shares).
UNIX_KINDS = {"unix": SOCK_STREAM, "unix+dgram": SOCK_DGRAM, "unix+seqpacket": SOCK_SEQPACKET}
FUZZ = settings(max_examples=300, deadline=None)
unix_addresses = st.one_of(st.binary(max_size=107).filter(lambda b: b"\0" not in b).map(UnixAddress),
                           st.binary(max_size=107).map(lambda b: UnixAddress(b, abstract=True)))


@pytest.mark.parametrize("text, path, abstract", [
    ("unix://@x", "@x", False), ("unix:////x", "//x", False), ("unix:@//x", "//x", True),
    ("unix+dgram://", "", False), ("unix:@", "", True), ("unix:/tmp/\udcff", "/tmp/\udcff", False),
])
def test_unix_endpoint_text_rule(text, path, abstract):
    endpoint = parse_endpoint(text)
    assert (endpoint.path, endpoint.abstract) == (path, abstract)
    assert parse_endpoint(str(endpoint)) == endpoint


@FUZZ
@given(st.sampled_from(sorted(UNIX_KINDS)), unix_addresses)
def test_every_unix_endpoint_survives_str_and_parse(scheme, address):
    if address.unnamed and scheme != "unix+dgram":
        return  # only a datagram socket may go unnamed (its endpoint autobinds)
    endpoint = Endpoint.from_address(address, UNIX_KINDS[scheme])
    assert parse_endpoint(str(endpoint)) == endpoint
    assert endpoint.addresses() == [address]


INET_SCHEMES = ["tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"]
endpoint_junk = st.text("0123456789abcdef.:/@%[]\0 \udc80\ud800", max_size=3)
endpoint_texts = st.one_of(
    st.text(),  # anything at all, lone surrogates included
    st.builds("{}:{}".format, st.sampled_from(INET_SCHEMES + sorted(UNIX_KINDS)), st.text()),
    st.builds("{}://{}{}:{}".format, st.sampled_from(INET_SCHEMES), st.one_of(ipv4, ipv6.map("[{}]".format), names,
                                                                               st.text(max_size=12)),
              endpoint_junk, st.one_of(ports.map(str), st.text("0123456789+-", max_size=6))),
)


@FUZZ
@given(endpoint_texts)
def test_parse_endpoint_of_any_text_is_a_value_error_or_an_endpoint_that_round_trips(text):
    """Parsing never resolves (the resolver is replaced by a failure here); .addresses() is
    only called for numeric hosts, so no name made up by the fuzzer reaches a DNS server."""
    with unittest.mock.patch.object(endpoints, "resolve", side_effect=AssertionError("parse_endpoint resolved")):
        try:
            endpoint = parse_endpoint(text)
        except ValueError:
            return
        assert parse_endpoint(str(endpoint)) == endpoint
        if endpoint.is_unix:
            assert endpoint.addresses() == [UnixAddress(endpoint.path, abstract=endpoint.abstract)]
            return
        try:
            ip = ipaddress.ip_address(endpoint.host)
        except ValueError:
            return  # a name (or a scoped address): resolving it is not parsing
        assert endpoint.addresses() == [Address.parse(f"[{ip}]:{endpoint.port}" if ip.version == 6
                                                      else f"{ip}:{endpoint.port}")]


def test_addresses_of_numeric_and_named_hosts():
    assert parse_endpoint("tcp://127.0.0.1:80").addresses() == [InetAddress("127.0.0.1", 80)]
    assert parse_endpoint("udp6://[::1]:80").addresses() == [Inet6Address("::1", 80)]
    assert parse_endpoint("tcp4://localhost:7").addresses() == [InetAddress("127.0.0.1", 7)]
    resolved = parse_endpoint("tcp://localhost:7").addresses()
    assert InetAddress("127.0.0.1", 7) in resolved
    assert all(a.port == 7 for a in resolved)


def test_from_address_gives_the_endpoint_a_client_connects_to():
    assert str(Endpoint.from_address(InetAddress("127.0.0.1", 5))) == "tcp://127.0.0.1:5"
    assert str(Endpoint.from_address(Inet6Address("::1", 5), SOCK_DGRAM)) == "udp://[::1]:5"
    assert str(Endpoint.from_address(UnixAddress("/x"), SOCK_SEQPACKET)) == "unix+seqpacket:/x"
    assert str(Endpoint.from_address(UnixAddress("n", abstract=True), SOCK_DGRAM)) == "unix+dgram:@n"
    assert str(parse_endpoint(InetAddress("127.0.0.1", 5))) == "tcp://127.0.0.1:5"


# (text, a piece the error message must quote)
MALFORMED = [
    ("", "no scheme"),
    ("tcp", "no scheme"),
    ("127.0.0.1:80", "unknown scheme '127.0.0.1'"),
    ("http://a:80", "unknown scheme 'http'"),
    ("TCP://a:80", "unknown scheme 'TCP'"),
    ("tcp:a:80", "tcp://HOST:PORT"),
    ("tcp://a", "missing ':PORT'"),
    ("tcp://:80", "empty host"),
    ("tcp://[]:80", "empty host"),
    ("tcp://a:", "port ''"),
    ("tcp://a:no-such-service", "unknown service 'no-such-service' (no tcp port of that name in /etc/services)"),
    ("udp://a:http-alt", "unknown service 'http-alt' (no udp port"),  # 8080/tcp only
    ("tcp://a:http!", "port 'http!' is not a number 0-65535 or a service name"),
    ("tcp://a:_http", "port '_http'"),
    ("tcp://a:65536", "port '65536'"),
    ("tcp://a:-1", "port '-1'"),
    ("tcp://a:+1", "port '+1'"),
    ("tcp://a: 1", "port ' 1'"),
    ("tcp://a:1/", "port '1/'"),
    ("tcp://a:\u00b2", "port '\u00b2'"),  # str.isdigit() says yes, int() refuses
    ("tcp://a:\u0663", "port '\u0663'"),  # ARABIC-INDIC DIGIT THREE: int() would read 3
    ("tcp://::1:80", "IPv6 hosts need brackets"),
    ("tcp://[::1:80", "missing ']'"),
    ("tcp://[::1]80", "missing ':PORT' after ']'"),
    ("tcp://[::1]:1]", "port '1]'"),
    ("tcp://[example.com]:80", "'example.com' in brackets is not an IPv6 address"),
    ("tcp://[127.0.0.1]:80", "'127.0.0.1' in brackets is not an IPv6 address"),
    ("tcp://a b:80", "bad host 'a b'"),
    ("tcp://a\x00b:80", "bad host"),
    ("tcp://a/b:80", "bad host 'a/b'"),
    ("tcp4://[::1]:80", "::1 is not an IPv4 address"),
    ("udp6://127.0.0.1:80", "127.0.0.1 is not an IPv6 address"),
    ("unix:", "empty path"),
    ("unix+seqpacket:", "empty path"),
    ("unix:/tmp/a\x00b", "NUL"),
    ("unix:/" + "a" * 107, "108 bytes, the limit is 107"),
    ("unix:@" + "a" * 108, "108 bytes, the limit is 107"),
]


@pytest.mark.parametrize("text, part", MALFORMED, ids=[repr(case[0])[:30] for case in MALFORMED])
def test_malformed_endpoints_name_the_bad_part(text, part):
    with pytest.raises(ValueError) as raised:
        parse_endpoint(text)
    message = str(raised.value)
    assert part in message
    assert repr(text) in message  # the whole endpoint is quoted too


def test_longest_unix_path_is_accepted():
    assert parse_endpoint("unix:/" + "a" * 106).path == "/" + "a" * 106


@pytest.mark.parametrize("value", [None, 80, b"tcp://127.0.0.1:80", ("127.0.0.1", 80)])
def test_non_string_endpoints_raise_type_error(value):
    with pytest.raises(TypeError, match="endpoint must be a string"):
        parse_endpoint(value)


@pytest.mark.parametrize("opener, endpoint, hint", [
    (socketeer.listen, "udp://127.0.0.1:0", "socketeer.bind"),
    (socketeer.listen, "unix+dgram:@x", "socketeer.bind"),
    (socketeer.bind, "tcp://127.0.0.1:0", "listen"),
    (socketeer.bind, "unix:@x", "listen"),
])
def test_wrong_kind_for_the_opener(opener, endpoint, hint):
    with pytest.raises(ValueError, match=hint):
        opener(endpoint)


def test_name_that_does_not_resolve_raises_gaierror(socketeer_netns):
    # In a fresh network namespace (no route to any resolver): no DNS query leaves this host.
    with pytest.raises(stdlib.gaierror) as caught:
        socketeer_netns.call(socketeer.connect, "tcp://no-such-host.invalid:80", timeout=5)
    assert "no-such-host.invalid" in str(caught.value)


# --- .address / .endpoint of what is bound ------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:0", "tcp://[::1]:0", "tcp4://localhost:0",
                                      "unix:@socketeer-test-ep", "unix+seqpacket:@socketeer-test-ep-sp"])
def test_listener_address_and_endpoint_are_connect_targets(endpoint):
    with socketeer.listen(endpoint) as listener:
        if not listener.address.family == AF_UNIX:
            assert listener.address.port != 0  # port 0 resolved to the real one
        assert parse_endpoint(listener.endpoint).kind == parse_endpoint(endpoint).kind
        targets = [listener.endpoint]
        if parse_endpoint(endpoint).kind == SOCK_STREAM:
            targets.append(listener.address)  # a bare Address means a stream endpoint
        for target in targets:
            with socketeer.connect(target, timeout=5) as client, listener.accept(timeout=5) as server:
                client.send_all(b"x")
                assert server.recv_exactly(1, timeout=5) == b"x"
        if listener.address.family != AF_UNIX:
            with socketeer.connect(f"tcp://{listener.address}", timeout=5) as client, listener.accept(timeout=5):
                assert client.peer_address == listener.address


def test_unix_path_listener_endpoint(short_tmp):
    path = short_tmp / "l.sock"
    with socketeer.listen(f"unix:{path}") as listener:
        assert listener.endpoint == f"unix:{path}"
        assert listener.address == UnixAddress(str(path))
        with socketeer.connect(listener.endpoint, timeout=5), listener.accept(timeout=5):
            pass
    assert not path.exists()  # the socket file goes with the listener


@pytest.mark.parametrize("endpoint", ["udp://127.0.0.1:0", "udp://[::1]:0", "unix+dgram:@socketeer-test-dg"])
def test_datagram_address_and_endpoint_are_send_targets(endpoint):
    with socketeer.bind(endpoint) as server:
        assert parse_endpoint(server.endpoint).kind == SOCK_DGRAM
        with socketeer.connect(server.endpoint, timeout=5) as client:
            client.send(b"hello")
            data, sender = server.recv_from(timeout=5)
            assert data == b"hello"
            assert sender == client.address
            server.send_to(b"back", sender)
            assert client.recv(timeout=5) == b"back"
