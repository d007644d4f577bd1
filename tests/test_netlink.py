"""socketeer.netlink against iproute2 as the oracle (``ip -j``) and /sys/class/net. Reading
happens in the host's namespace too; every change happens inside namespaces the test made
(socketeer_netns, socketeer_netns_pair, NetNamespace), never in the host's."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from socketeer import netlink
from socketeer.netlink import InterfaceAddress, Link, NetlinkEvent, Route
from socketeer.testing import NetNamespace

from aio_loops import run_on
from subprocess_env import child_env

TABLES = {"main": 254, "local": 255, "default": 253}


def ip_json(*args: str, netns: str | None = None) -> list[dict]:
    command = ["ip", *(["-n", netns] if netns else []), "-j", *args]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True, timeout=30).stdout)


# --- reading: the host's namespace -------------------------------------------------------------


def test_links_match_ip_link_and_sysfs() -> None:
    ours = {link.index: link for link in netlink.links()}
    theirs = {entry["ifindex"]: entry for entry in ip_json("-d", "link", "show")}
    assert set(ours) == set(theirs)
    for index, entry in theirs.items():
        link = ours[index]
        assert isinstance(link, Link)
        assert (link.name, link.mtu, link.up) == (entry["ifname"], entry["mtu"], "UP" in entry["flags"])
        assert link.address == entry.get("address")
        assert link.operstate == entry["operstate"]
        assert link.kind == entry.get("linkinfo", {}).get("info_kind")
        assert Path(f"/sys/class/net/{link.name}/ifindex").read_text().strip() == str(index)
        assert link.stats is not None and link.stats.rx_packets >= 0
    assert {p.name for p in Path("/sys/class/net").iterdir()} == {link.name for link in ours.values()}


def test_addresses_match_ip_addr() -> None:
    theirs = {(entry["ifindex"], info["local"], info["prefixlen"], info.get("scope"))
              for entry in ip_json("addr", "show") for info in entry["addr_info"]}
    scopes = {0: "global", 253: "link", 254: "host", 200: "site"}
    ours = netlink.addresses()
    assert all(isinstance(a, InterfaceAddress) for a in ours)
    assert {(a.index, str(a.address), a.prefix_len, scopes[a.scope]) for a in ours} == theirs
    only_v4 = netlink.addresses(socket.AF_INET)
    assert only_v4 and all(a.family == socket.AF_INET and a.address.version == 4 for a in only_v4)
    assert {str(a.address) for a in netlink.addresses(interface="lo")} <= {"127.0.0.1", "::1"}


def routes_per_ip(netns: str) -> set[tuple]:
    """`ip -j route show table all` for both families, as (network, gateway, oif, table)."""
    indexes = {link.name: link.index for link in netlink.links(netns=netns)}
    found = set()
    for family, default in (("-4", "0.0.0.0/0"), ("-6", "::/0")):
        for entry in ip_json(family, "route", "show", "table", "all", netns=netns):
            dst = default if entry["dst"] == "default" else entry["dst"]
            table = entry.get("table", "main")
            found.add((ipaddress.ip_network(dst, strict=False), entry.get("gateway"), indexes.get(entry.get("dev")),
                       TABLES.get(table) or int(table)))
    return found


def test_routes_match_ip_route_in_a_namespace_with_known_routes(socketeer_netns_pair) -> None:
    ns = socketeer_netns_pair.a.name
    for route in (["10.50.0.0/16", "via", "10.201.0.2"], ["default", "via", "10.201.0.2"],
                  ["10.60.0.0/24", "dev", "veth0", "table", "100"]):
        subprocess.run(["ip", "-n", ns, "route", "add", *route], check=True, timeout=30)
    ours = netlink.routes(table=None, netns=ns)
    assert all(isinstance(route, Route) for route in ours)
    assert {(r.destination, None if r.gateway is None else str(r.gateway), r.oif, r.table) for r in ours} \
        == routes_per_ip(ns)
    main = netlink.routes(socket.AF_INET, netns=ns)  # like `ip route`: the main table
    assert {str(r.destination) for r in main} == {"0.0.0.0/0", "10.50.0.0/16", "10.201.0.0/24"}
    default = next(r for r in main if r.default)
    assert default.destination == ipaddress.ip_network("0.0.0.0/0") and default.prefix_len == 0
    assert default.gateway == ipaddress.ip_address("10.201.0.2")
    [in_100] = netlink.routes(table=100, netns=ns)
    assert (str(in_100.destination), in_100.gateway, in_100.table) == ("10.60.0.0/24", None, 100)
    assert {r.table for r in netlink.routes(table="local", netns=ns)} == {255}


def test_neighbour_appears_after_a_datagram_to_the_peer(socketeer_netns_pair) -> None:
    pair = socketeer_netns_pair

    receiver = pair.b.call(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)  # made inside b
    with receiver:
        receiver.bind((pair.address_b, 0))

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"hello", receiver.getsockname())

        pair.a.call(send)
        receiver.settimeout(10)
        assert receiver.recv(16) == b"hello"
    mac_b = next(link.address for link in netlink.links(netns=pair.b.name) if link.name == "veth0")
    found = [n for n in netlink.neighbours(socket.AF_INET, netns=pair.a.name)
             if n.address == ipaddress.ip_address(pair.address_b)]
    assert len(found) == 1
    assert found[0].lladdr == mac_b
    assert found[0].state in ("REACHABLE", "STALE", "DELAY", "PROBE")
    veth = next(link.index for link in netlink.links(netns=pair.a.name) if link.name == "veth0")
    assert found[0].index == veth


# --- changes, inside namespaces made here --------------------------------------------------------


def test_build_a_veth_link_between_two_fresh_namespaces_and_talk_over_it(socketeer_netns) -> None:
    one = socketeer_netns
    with NetNamespace() as two:
        netlink.set_link("lo", up=False, netns=one.name)
        assert ip_json("link", "show", "lo", netns=one.name)[0]["flags"].count("UP") == 0
        netlink.set_link("lo", up=True, netns=one.name)
        assert "UP" in ip_json("link", "show", "lo", netns=one.name)[0]["flags"]

        netlink.add_veth("v1", "v2", peer_netns=two.name, netns=one.name)
        assert "v2" not in {link.name for link in netlink.links(netns=one.name)}
        [v2] = [link for link in netlink.links(netns=two.name) if link.name == "v2"]
        assert v2.kind == "veth" and not v2.up
        netlink.add_address("v1", "10.88.0.1/24", netns=one.name)
        netlink.add_address(v2.index, ipaddress.ip_interface("10.88.0.2/24"), netns=two.name)
        netlink.add_address("v1", "fd88::1", 64, netns=one.name)
        for ns, name in ((one, "v1"), (two, "v2")):
            netlink.set_link(name, up=True, mtu=1400, netns=ns.name)
        [v1] = [link for link in netlink.links(netns=one.name) if link.name == "v1"]
        assert (v1.up, v1.mtu, v1.link) == (True, 1400, v2.index)

        ours = {str(a.interface) for a in netlink.addresses(interface="v1", netns=one.name) if a.scope == 0}
        assert ours == {"10.88.0.1/24", "fd88::1/64"}
        theirs = {f"{info['local']}/{info['prefixlen']}" for info in ip_json("addr", "show", "v1", netns=one.name)[0]
                  ["addr_info"] if info["scope"] == "global"}
        assert theirs == ours

        netlink.add_route("10.99.0.0/16", gateway="10.88.0.2", netns=one.name)
        netlink.add_route("10.98.0.0/16", interface="v1", table=200, netns=one.name)
        routes = {(str(r.destination), r.gateway, r.oif, r.table) for r in netlink.routes(table=None, netns=one.name)}
        assert ("10.99.0.0/16", ipaddress.ip_address("10.88.0.2"), v1.index, 254) in routes
        assert ("10.98.0.0/16", None, v1.index, 200) in routes
        assert {"dst": "10.99.0.0/16", "gateway": "10.88.0.2"}.items() <= next(
            r for r in ip_json("route", "show", netns=one.name) if r["dst"] == "10.99.0.0/16").items()

        # Real traffic over the pair just built: a TCP connection from one namespace to the other.
        server = two.call(socket.create_server, ("10.88.0.2", 0))
        with server:
            port = server.getsockname()[1]
            client = one.call(socket.create_connection, ("10.88.0.2", port), 10)
            with client:
                server.settimeout(10)
                accepted, peer = server.accept()
                with accepted:
                    assert peer[0] == "10.88.0.1"
                    client.sendall(b"over the veth")
                    accepted.settimeout(10)
                    assert accepted.recv(64) == b"over the veth"

        netlink.delete_address("v1", "10.88.0.1/24", netns=one.name)
        assert "10.88.0.1" not in {str(a.address) for a in netlink.addresses(netns=one.name)}
        netlink.delete_link("v1", netns=one.name)
        assert {link.name for link in netlink.links(netns=one.name)} == {"lo"}
        assert {link.name for link in netlink.links(netns=two.name)} == {"lo"}  # the peer went with it


# --- monitor ----------------------------------------------------------------------------------


def first(monitor: netlink.Monitor, wanted) -> NetlinkEvent:
    for _ in range(200):
        event = monitor.get(timeout=10)
        assert event is not None, "no event within 10 s"
        if wanted(event):
            return event
    raise AssertionError("the event never came")


def test_monitor_sees_address_and_link_events(socketeer_netns) -> None:
    ns = socketeer_netns.name
    with netlink.monitor(("link", "address"), netns=ns) as monitor:
        netlink.add_address("lo", "10.66.0.1/24", netns=ns)
        event = first(monitor, lambda e: isinstance(e.record, InterfaceAddress))
        assert event.action == "new"
        assert (event.record.address, event.record.prefix_len) == (ipaddress.ip_address("10.66.0.1"), 24)
        netlink.set_link("lo", up=False, netns=ns)
        event = first(monitor, lambda e: isinstance(e.record, Link) and not e.record.up)
        assert (event.action, event.record.name) == ("new", "lo")
        netlink.delete_address("lo", "10.66.0.1/24", netns=ns)  # (lo down already took it: fine either way)
    assert monitor.closed and monitor.fileno() == -1
    assert monitor.get(timeout=0) is None and list(monitor) == []


def test_monitor_async_iteration(socketeer_netns, loop_kind: str) -> None:
    ns = socketeer_netns.name

    async def main() -> NetlinkEvent:
        async with netlink.monitor(("address",), netns=ns) as monitor:
            asyncio.get_running_loop().call_soon(lambda: netlink.add_address("lo", "10.67.0.1/24", netns=ns))

            async def wait_for_it() -> NetlinkEvent:
                async for event in monitor:
                    if isinstance(event.record, InterfaceAddress) and str(event.record.address) == "10.67.0.1":
                        return event
                raise AssertionError("monitor ended")

            return await asyncio.wait_for(wait_for_it(), 10)

    event = run_on(loop_kind, main)
    assert event.action == "new" and event.record.prefix_len == 24


def test_monitor_close_from_the_loop_ends_async_iteration(socketeer_netns) -> None:
    async def main() -> list[NetlinkEvent]:
        monitor = netlink.monitor(netns=socketeer_netns.name)
        asyncio.get_running_loop().call_later(0.05, monitor.close)
        return await asyncio.wait_for(_collect(monitor), 10)

    assert asyncio.run(main()) == []


async def _collect(monitor: netlink.Monitor) -> list[NetlinkEvent]:
    return [event async for event in monitor]


def test_monitor_close_from_another_thread_wakes_a_blocked_iteration(socketeer_netns) -> None:
    monitor = netlink.monitor(netns=socketeer_netns.name)
    outcome: list[object] = []
    reader = threading.Thread(target=lambda: outcome.append(list(monitor)), daemon=True)
    reader.start()
    wchan = Path(f"/proc/self/task/{reader.native_id}/wchan")
    deadline = time.monotonic() + 10
    while "poll" not in wchan.read_text() and time.monotonic() < deadline:  # blocked in poll(), GIL released
        time.sleep(0.001)
    assert "poll" in wchan.read_text()
    monitor.close()
    reader.join(timeout=10)
    assert not reader.is_alive() and outcome == [[]]


def test_monitor_overflow_raises_enobufs_instead_of_losing_events(socketeer_netns) -> None:
    ns = socketeer_netns.name
    with netlink.monitor(("address",), netns=ns) as monitor:
        with socket.socket(fileno=os.dup(monitor.fileno())) as view:
            view.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)  # the kernel's minimum
        for i in range(1, 200):
            netlink.add_address("lo", f"10.68.{i}.1/24", netns=ns)
        with pytest.raises(OSError) as raised:
            for _ in range(400):
                monitor.get(timeout=5)
        assert raised.value.errno == errno.ENOBUFS
        assert "monitor" in str(raised.value) and "dropped" in str(raised.value)
        # The kernel drops events while the socket is congested, until what was queued is read:
        # drain, then the monitor sees changes again.
        while monitor.get(timeout=0) is not None:
            pass
        netlink.add_address("lo", "10.69.0.1/24", netns=ns)
        first(monitor, lambda e: str(e.record.address) == "10.69.0.1")


# --- bad input --------------------------------------------------------------------------------


def test_unknown_interface_is_enodev_naming_it_like_if_nametoindex(socketeer_netns) -> None:
    with pytest.raises(OSError) as stdlib:
        socket.if_nametoindex("nope0")
    for call in (lambda: netlink.set_link("nope0", up=True, netns=socketeer_netns.name),
                 lambda: netlink.add_address("nope0", "10.0.0.1/24", netns=socketeer_netns.name),
                 lambda: netlink.addresses(interface="nope0", netns=socketeer_netns.name),
                 lambda: netlink.add_route("10.1.0.0/16", interface="nope0", netns=socketeer_netns.name),
                 lambda: netlink.delete_link("nope0", netns=socketeer_netns.name)):
        with pytest.raises(OSError) as raised:
            call()
        assert type(raised.value) is type(stdlib.value)
        assert raised.value.errno == errno.ENODEV and "nope0" in str(raised.value)


@pytest.mark.parametrize("address", ["10.0.0.1/33", "fd00::1/129"])
def test_prefix_length_out_of_range_is_valueerror_before_sending(socketeer_netns, address) -> None:
    with pytest.raises(ValueError, match=f"add address {address} on lo: prefix length"):
        netlink.add_address("lo", address, netns=socketeer_netns.name)
    with pytest.raises(ValueError, match="prefix length"):
        netlink.add_route(address, interface="lo", netns=socketeer_netns.name)
    assert not [a for a in netlink.addresses(netns=socketeer_netns.name) if a.scope == 0]


def test_kernel_refusals_name_the_request_and_carry_its_message(socketeer_netns) -> None:
    ns = socketeer_netns.name
    netlink.add_address("lo", "10.70.0.1/24", netns=ns)
    with pytest.raises(FileExistsError, match=r"add address 10\.70\.0\.1/24 on lo") as raised:
        netlink.add_address("lo", "10.70.0.1/24", netns=ns)
    assert "kernel:" in raised.value.strerror  # the extended ACK ("Address already assigned")
    with pytest.raises(OSError, match=r"add route 10\.99\.0\.0/16 via 10\.123\.0\.1") as raised:
        netlink.add_route("10.99.0.0/16", gateway="10.123.0.1", netns=ns)
    assert raised.value.errno == errno.ENETUNREACH
    with pytest.raises(FileNotFoundError, match="/run/netns/socketeer-no-such-ns"):
        netlink.links(netns="socketeer-no-such-ns")
    with pytest.raises(ValueError, match="not a name"):
        netlink.set_link("x" * 16, up=True, netns=ns)
    with pytest.raises(ValueError, match="family"):
        netlink.routes(family=99)


def test_without_cap_net_admin_a_change_is_permissionerror_naming_it(socketeer_netns) -> None:
    code = ("import os\nfrom socketeer import netlink\n"
            "os.setgid(65534); os.setuid(65534)  # no capabilities left\n"
            "try:\n    netlink.set_link('lo', up=False)\n"
            "except PermissionError as error:\n    print('refused:', error)\n")
    result = socketeer_netns.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused: [Errno 1] Operation not permitted" in result.stdout and "set link lo down" in result.stdout
    assert netlink.links(netns=socketeer_netns.name)[0].up  # nothing changed


def test_records_are_values_and_render_as_tables() -> None:
    found = netlink.links()
    assert found == netlink.links() or len(found) == len(netlink.links())  # equal unless counters moved
    lo = next(link for link in found if link.name == "lo")
    with pytest.raises(AttributeError):
        lo.mtu = 1  # type: ignore[misc]
    assert repr(lo).startswith("<Link 1: lo")
    assert "<table>" in lo._repr_html_() and "mtu" in lo._repr_html_()
    table = found._repr_html_()
    assert table.count("<tr>") == len(found) + 1 and "Link records" in table
    address = netlink.addresses(interface="lo")[0]
    assert hash(address) == hash(netlink.addresses(interface="lo")[0])
