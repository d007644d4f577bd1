"""NetlinkAddress and PacketAddress: text round-trips, value semantics, the stdlib's tuples, bad
input, and real netlink and packet sockets with the stdlib as the oracle."""

from __future__ import annotations

import errno
import os
import pickle
import re
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import socketeer
from socketeer import (ETH_P_ALL, ETH_P_IP, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, PACKET_HOST,
                       PACKET_OUTGOING, RTM_GETLINK, RTM_NEWLINK, Address, InetAddress, NetlinkAddress, PacketAddress,
                       Socket)

LO = socket.if_nametoindex("lo")
NAMELESS = 0x7FFF_FFF0  # an interface index no interface has
ARPHRD_LOOPBACK = 772

# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "address"), [
    ("netlink:0", NetlinkAddress()),
    ("netlink:1234", NetlinkAddress(1234)),
    ("netlink:1234/0x11", NetlinkAddress(1234, 0x11)),
    ("netlink:4294967295/0xffffffff", NetlinkAddress(2**32 - 1, 2**32 - 1)),
    ("packet:lo", PacketAddress("lo", 0)),
    ("packet:lo/0x0003", PacketAddress("lo")),
    ("packet:lo/0x0800/outgoing/772/00:00:00:00:00:00", PacketAddress("lo", ETH_P_IP, PACKET_OUTGOING,
                                                                      ARPHRD_LOOPBACK, bytes(6))),
    ("packet:lo/0x0000/host/1", PacketAddress(LO, 0, PACKET_HOST, 1)),
    ("packet:lo/0x0000/9", PacketAddress(LO, 0, 9)),
    ("packet:#0", PacketAddress(0, 0)),
    (f"packet:#{NAMELESS}/0x86dd/host/0/02:ff", PacketAddress(NAMELESS, 0x86DD, hwaddr=b"\x02\xff")),
])
def test_str_and_parse_round_trip(text, address):
    assert str(address) == text
    assert Address.parse(text) == address
    assert type(Address.parse(text)) is type(address)


def test_parse_also_reads_decimal_and_indexes():
    assert Address.parse("netlink:5/17") == NetlinkAddress(5, 0x11)
    assert Address.parse(f"packet:#{LO}/2048") == PacketAddress("lo", ETH_P_IP)
    assert Address.parse("packet:lo/3/0/0") == PacketAddress("lo")


@given(pid=st.integers(0, 2**32 - 1), groups=st.integers(0, 2**32 - 1))
def test_netlink_text_round_trips(pid, groups):
    address = NetlinkAddress(pid, groups)
    assert Address.parse(str(address)) == address
    assert Address.from_tuple(socket.AF_NETLINK, address.to_tuple()) == address


@given(ifindex=st.sampled_from([0, LO, NAMELESS]), protocol=st.integers(0, 0xFFFF), pkttype=st.integers(0, 255),
       hatype=st.integers(0, 0xFFFF), hwaddr=st.binary(max_size=8))
def test_packet_text_and_pickle_round_trip(ifindex, protocol, pkttype, hatype, hwaddr):
    address = PacketAddress(ifindex, protocol, pkttype, hatype, hwaddr)
    assert Address.parse(str(address)) == address
    assert pickle.loads(pickle.dumps(address)) == address
    assert (address.ifindex, address.protocol, address.pkttype, address.hatype, address.hwaddr) == (
        ifindex, protocol, pkttype, hatype, hwaddr)


# --- values -----------------------------------------------------------------------------------

def test_properties_family_and_the_address_abc():
    netlink, packet = NetlinkAddress(pid=7, groups=1), PacketAddress("lo", protocol=ETH_P_IP)
    assert (netlink.pid, netlink.groups, netlink.family) == (7, 1, socket.AF_NETLINK)
    assert (packet.ifindex, packet.ifname, packet.protocol, packet.pkttype, packet.hatype, packet.hwaddr) == (
        LO, "lo", ETH_P_IP, PACKET_HOST, 0, b"")
    assert packet.family == socket.AF_PACKET
    assert isinstance(netlink, Address) and isinstance(packet, Address)
    assert PacketAddress(NAMELESS).ifname is None
    assert socketeer.NetlinkAddress is NetlinkAddress and socketeer.PacketAddress is PacketAddress
    with pytest.raises(AttributeError):
        netlink.pid = 8  # type: ignore[misc]


def test_repr():
    assert repr(NetlinkAddress(1234)) == "NetlinkAddress(pid=1234, groups=0)"
    assert repr(NetlinkAddress(0, 0x11)) == "NetlinkAddress(pid=0, groups=0x11)"
    assert repr(PacketAddress("lo")) == "PacketAddress('lo', protocol=0x0003)"
    assert repr(PacketAddress("lo", ETH_P_IP, PACKET_OUTGOING, ARPHRD_LOOPBACK, b"\x00\x01")) == (
        "PacketAddress('lo', protocol=0x0800, pkttype=PACKET_OUTGOING, hatype=772, hwaddr=b'\\x00\\x01')")
    assert repr(PacketAddress(NAMELESS, 0, 200)) == f"PacketAddress({NAMELESS}, protocol=0x0000, pkttype=200)"


def test_ordering_hashing_and_equality():
    addresses = [PacketAddress("lo", ETH_P_IP), NetlinkAddress(2), InetAddress("127.0.0.1", 1), NetlinkAddress(1, 5),
                 PacketAddress(0, 0xFFFF), NetlinkAddress(1), PacketAddress("lo", 3)]
    assert sorted(addresses) == [InetAddress("127.0.0.1", 1), NetlinkAddress(1), NetlinkAddress(1, 5),
                                 NetlinkAddress(2), PacketAddress(0, 0xFFFF), PacketAddress("lo", 3),
                                 PacketAddress("lo", ETH_P_IP)]
    assert len({NetlinkAddress(1), NetlinkAddress(1, 0), Address.parse("netlink:1")}) == 1
    assert hash(PacketAddress("lo", 3, hwaddr=b"ab")) == hash(Address.parse("packet:lo/3/host/0/61:62"))
    assert PacketAddress("lo", 3, hwaddr=b"ab") != PacketAddress("lo", 3, hwaddr=b"ac")
    assert NetlinkAddress(0) != (0, 0)  # as InetAddress != its tuple


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle(protocol):
    for address in (NetlinkAddress(5, 0x11), PacketAddress("lo", ETH_P_IP, 4, 772, bytes(6)), PacketAddress(NAMELESS)):
        copy = pickle.loads(pickle.dumps(address, protocol))
        assert copy == address and type(copy) is type(address)


def test_tuples_are_the_stdlibs_forms():
    assert NetlinkAddress(5, 1).to_tuple() == (5, 1)
    assert PacketAddress("lo", ETH_P_IP, 4, 772, bytes(6)).to_tuple() == ("lo", ETH_P_IP, 4, 772, bytes(6))
    assert PacketAddress(NAMELESS).to_tuple() == ("", ETH_P_ALL, 0, 0, b"")  # makesockaddr's "" for no name
    assert Address.from_tuple(socket.AF_NETLINK, (5, 1)) == NetlinkAddress(5, 1)
    assert Address.from_tuple(socket.AF_PACKET, ("lo", 3)) == PacketAddress("lo", 3)
    assert Address.from_tuple(socket.AF_PACKET, ("lo", 3, 4, 1, b"\x01")) == PacketAddress("lo", 3, 4, 1, b"\x01")


def test_repr_html_rows():
    html = PacketAddress("lo", ETH_P_IP, PACKET_OUTGOING, ARPHRD_LOOPBACK, b"\x00\x01")._repr_html_()
    for expected in ("AF_PACKET", "<code>lo</code>", "0x0800", "PACKET_OUTGOING", "772", "00:01"):
        assert expected in html, expected
    html = NetlinkAddress(9, 0x11)._repr_html_()
    assert "AF_NETLINK" in html and "<code>9</code>" in html and "0x11" in html


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "named"), [
    ("netlink:", "''"), ("netlink:x", "'x'"), ("netlink:4294967296", "'4294967296'"), ("netlink:1/0xg", "'0xg'"),
    ("packet:", "''"), ("packet:nosuchif0", "unknown interface 'nosuchif0'"), ("packet:lo/0x10000", "'0x10000'"),
    ("packet:lo/3/nosuchtype", "'nosuchtype'"), ("packet:lo/3/host/0/00:11:22:33:44:55:66:77:88", "00:11:22"),
    ("packet:lo/3/host/0/0:1", "'0:1'"), ("packet:lo/3/host/0/00/junk", "too many fields"),
    ("packet:#lo", "'lo'"), ("netlinc:0", "'netlinc:0'"),
])
def test_garbage_text_is_a_value_error_naming_it(text, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        Address.parse(text)


def test_numbers_out_of_range_raise_overflow_error():
    for args, field in (((-1,), "pid"), ((2**32,), "pid"), ((0, 2**32), "groups")):
        with pytest.raises(OverflowError, match=f"{field} must be 0-4294967295"):
            NetlinkAddress(*args)
    for kwargs, field in (({"protocol": 0x10000}, "proto"), ({"pkttype": 256}, "pkttype"), ({"hatype": -1}, "hatype")):
        with pytest.raises(OverflowError, match=f"{field} must be"):
            PacketAddress("lo", **kwargs)
    with pytest.raises(OverflowError, match="interface index"):
        PacketAddress(-1)
    with pytest.raises(TypeError):
        NetlinkAddress("1")  # type: ignore[arg-type]


def test_hardware_address_over_8_bytes_is_a_value_error():
    with pytest.raises(ValueError, match="8 bytes or less, got 9"):
        PacketAddress("lo", hwaddr=bytes(9))
    with pytest.raises(ValueError, match="8 bytes or less"):
        Address.from_tuple(socket.AF_PACKET, ("lo", 0, 0, 0, bytes(9)))


@pytest.mark.root
def test_unknown_interface_raises_what_the_stdlibs_bind_raises(closing):
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as oracle:
        with pytest.raises(OSError) as expected:
            oracle.bind(("nosuchif0", 0))
    for attempt in (lambda: PacketAddress("nosuchif0"),
                    lambda: Address.from_tuple(socket.AF_PACKET, ("nosuchif0", 0)),
                    lambda: closing(Socket(socket.AF_PACKET, socket.SOCK_RAW)).bind(("nosuchif0", 0))):
        with pytest.raises(OSError, match="nosuchif0") as caught:
            attempt()
        assert type(caught.value) is type(expected.value) and caught.value.errno == expected.value.errno == errno.ENODEV


def test_a_string_on_a_netlink_socket_is_address_text(closing):
    sock = closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
    with pytest.raises(ValueError, match="'0:0'"):
        sock.bind("0:0")
    sock.bind("netlink:0")
    assert sock.local_address.pid != 0


# --- real sockets, the stdlib as the oracle -----------------------------------------------------

def test_netlink_bind_local_and_peer_address_match_the_stdlib(closing):
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as oracle:
        oracle.bind((0, 0))
        stdlib_pid, stdlib_groups = oracle.getsockname()
    sock = closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
    assert sock.local_address == NetlinkAddress(0, 0)  # not bound yet
    sock.bind(NetlinkAddress(0, 0))  # port id 0: the kernel assigns one
    local = sock.local_address
    assert type(local) is NetlinkAddress and local.pid != 0 and local.groups == stdlib_groups == 0
    assert stdlib_pid != 0
    with socket.socket(fileno=os.dup(sock.fileno())) as view:  # the stdlib's view of the same socket
        assert local.to_tuple() == view.getsockname() == sock.getsockname()
        assert sock.peer_address.to_tuple() == view.getpeername()
    assert sock.peer_address == NetlinkAddress(0, 0)  # the kernel


def getlink_dump(seq: int) -> bytes:
    """RTM_GETLINK with NLM_F_DUMP: a struct nlmsghdr and a zeroed struct ifinfomsg, packed by hand."""
    return struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + bytes(16)


def test_rtm_getlink_dump_sent_to_a_netlink_address(closing):
    sock = closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
    sock.settimeout(10)
    sock.bind("netlink:0")
    pid = sock.local_address.pid
    for seq, to in ((1, NetlinkAddress(0, 0)), (2, "netlink:0")):
        request = getlink_dump(seq)
        assert sock.sendto(request, to) == len(request)
        kinds = []
        while NLMSG_DONE not in kinds:
            data, sender = sock.recvfrom(65536)
            assert sender == (0, 0)  # the stdlib's form, as the stdlib's recvfrom
            assert Address.from_tuple(socket.AF_NETLINK, sender) == NetlinkAddress(pid=0, groups=0)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, got_seq, to_pid = struct.unpack_from("=IHHII", data, offset)
                assert (got_seq, to_pid) == (seq, pid)
                kinds.append(kind)
                offset += (length + 3) & ~3
        assert RTM_NEWLINK in kinds  # lo, at least


def _first_frame_with(sock, marker: bytes):
    while True:
        data, sender = sock.recvfrom(65536)
        if marker in data:
            return data, sender


def _packet_sockets_see_a_udp_datagram(kind: int) -> tuple:
    """In a fresh namespace: a socketeer and a stdlib packet socket, both bound to lo for every
    protocol, each see the datagram the stdlib sends to 127.0.0.1; (socketeer's sender, its
    local_address, the stdlib's sender, the stdlib's getsockname) for the first frame with it."""
    marker = os.urandom(16)
    with Socket(socket.AF_PACKET, kind) as ours, socket.socket(socket.AF_PACKET, kind) as oracle, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        ours.bind(PacketAddress("lo", ETH_P_ALL))
        oracle.bind(("lo", ETH_P_ALL))
        ours.settimeout(10)
        oracle.settimeout(10)
        udp.sendto(marker, ("127.0.0.1", 9))
        _, ours_from = _first_frame_with(ours, marker)
        _, oracle_from = _first_frame_with(oracle, marker)
        return ours_from, ours.local_address, oracle_from, oracle.getsockname()


@pytest.mark.root
@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_RAW])
def test_packet_socket_on_lo_in_a_namespace_matches_the_stdlib(socketeer_netns, kind):
    ours_from, local, oracle_from, oracle_name = socketeer_netns.call(_packet_sockets_see_a_udp_datagram, kind)
    assert ours_from == oracle_from
    assert oracle_from[:2] == ("lo", ETH_P_IP) and oracle_from[3] == ARPHRD_LOOPBACK
    assert type(local) is PacketAddress and local.to_tuple() == oracle_name
    assert (local.protocol, local.hatype) == (ETH_P_ALL, ARPHRD_LOOPBACK)
    sender = Address.from_tuple(socket.AF_PACKET, ours_from)  # the namespace's lo is named lo here too
    assert type(sender) is PacketAddress and sender.to_tuple() == oracle_from
    assert str(sender).startswith("packet:lo/0x0800/")


def test_endpoints_refuse_netlink_and_packet_addresses_by_name():
    for address in (NetlinkAddress(0), PacketAddress("lo")):
        with pytest.raises(ValueError, match=f"no endpoint names {re.escape(repr(address))}"):
            socketeer.parse_endpoint(address)
