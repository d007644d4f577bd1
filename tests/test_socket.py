"""socketeer.Socket beyond the stdlib's contract: Address arguments, fd passing, peer credentials,
TCP_INFO, conversions, notebook display, CLOEXEC everywhere, the GIL and signals around blocking
calls, raw sockets. (What it shares with socket.socket is in contract/test_socket_contract.py.)"""

from __future__ import annotations

import array
import contextlib
import errno
import gc
import importlib.util
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import socketeer
from socketeer import Address, InetAddress, NetlinkAddress, PacketAddress, Socket, TcpState, UnixAddress
from blocked import RECV, SOCKET_WAIT, blocked_in
from subprocess_env import ROOT, child_env, run_with_sigpipe_at_default


@pytest.fixture
def pair(closing):
    a, b = socketeer.socketpair()
    return closing(a), closing(b)


@pytest.fixture
def tcp(closing):
    """(listener, client, accepted) over 127.0.0.1, all socketeer."""
    listener = closing(Socket())
    listener.bind("127.0.0.1:0")
    listener.listen()
    client = closing(Socket())
    client.connect(listener.local_address)
    accepted, _ = listener.accept()
    return listener, client, closing(accepted)


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)


# --- Address objects and strings as arguments -----------------------------------------------------

def test_address_objects_and_strings_are_accepted(closing):
    server = closing(Socket())
    server.bind(InetAddress("127.0.0.1", 0))
    server.listen()
    address = server.local_address
    assert isinstance(address, InetAddress) and address.host == "127.0.0.1" and address.port != 0
    for target in (address, str(address), address.to_tuple()):
        client = closing(Socket())
        client.connect(target)
        accepted, peer = server.accept()
        closing(accepted)
        assert peer == client.getsockname()
        assert client.peer_address == address
        assert accepted.peer_address == client.local_address


def test_udp_sendto_with_address_objects_and_strings(closing):
    receiver = closing(Socket(socket.AF_INET6, socket.SOCK_DGRAM))
    receiver.bind("[::1]:0")
    sender = closing(Socket(socket.AF_INET6, socket.SOCK_DGRAM))
    sender.bind(Address.parse("[::1]:0"))
    sender.sendto(b"object", receiver.local_address)
    sender.sendto(b"string", str(receiver.local_address))
    sender.sendto(b"flags", 0, receiver.local_address)
    for expected in (b"object", b"string", b"flags"):
        data, source = receiver.recvfrom(100)
        assert (data, Address.from_tuple(socket.AF_INET6, source)) == (expected, sender.local_address)


def test_unix_address_objects(closing, short_tmp):
    for address in (UnixAddress(str(short_tmp / "s")), UnixAddress(f"socketeer-{os.getpid()}", abstract=True)):
        server = closing(Socket(socket.AF_UNIX, socket.SOCK_STREAM))
        server.bind(address)
        server.listen()
        assert server.local_address == address
        client = closing(Socket(socket.AF_UNIX, socket.SOCK_STREAM))
        client.connect(address)
        assert client.peer_address == address
        closing(server.accept()[0])


def test_local_and_peer_address(closing, tcp):
    listener, client, accepted = tcp
    assert listener.local_address == accepted.local_address == client.peer_address
    assert client.local_address == accepted.peer_address
    assert client.local_address.to_tuple() == client.getsockname()
    with pytest.raises(OSError) as caught:
        listener.peer_address
    assert caught.value.errno == errno.ENOTCONN
    unbound = closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    assert unbound.local_address == UnixAddress("") and unbound.local_address.unnamed


def test_unsupported_protocol_names_what_was_asked():
    with pytest.raises(OSError) as caught:
        Socket(socket.AF_INET, socket.SOCK_STREAM, 99)
    assert caught.value.errno == errno.EPROTONOSUPPORT
    assert "socket (AF_INET, SOCK_STREAM, protocol 99)" in str(caught.value)
    with pytest.raises(OSError) as caught:
        Socket(socket.AF_INET6, socket.SOCK_SEQPACKET)
    assert caught.value.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT)
    assert "(AF_INET6, SOCK_SEQPACKET)" in str(caught.value)


def test_bad_address_arguments(closing):
    sock = closing(Socket())
    with pytest.raises(ValueError, match="bad port 'x'"):
        sock.bind("127.0.0.1:x")
    with pytest.raises(ValueError, match="needs brackets"):
        sock.connect("::1:80")
    with pytest.raises(TypeError, match="list"):
        sock.bind(["127.0.0.1", 0])


# --- passing fds ------------------------------------------------------------------------------------

def test_send_fds_recv_fds_passes_a_pipe_end(pair, pipe):
    a, b = pair
    read_end, write_end = pipe
    assert a.send_fds([b"he", b"llo"], [write_end]) == 5
    data, fds, flags, address = b.recv_fds(100, 4)
    assert (data, flags, address) == (b"hello", 0, None)
    [received] = fds
    try:
        assert received not in (read_end, write_end)
        assert os.get_inheritable(received) is False  # CLOEXEC, like every fd socketeer opens
        os.write(received, b"via the passed fd")
        assert os.read(read_end, 100) == b"via the passed fd"
    finally:
        os.close(received)


def test_send_fds_takes_file_objects(pair, tmp_path):
    a, b = pair
    with open(tmp_path / "f", "w+b") as file:
        file.write(b"contents")
        file.flush()
        a.send_fds(b"x", [file])
        _, [fd], _, _ = b.recv_fds(1, 1)
    with os.fdopen(fd, "rb") as received:
        received.seek(0)
        assert received.read() == b"contents"


def test_recv_fds_without_fds(pair):
    a, b = pair
    a.send_fds(b"plain", [])
    assert b.recv_fds(100, 2) == (b"plain", [], 0, None)


def test_more_fds_than_maxfds_closes_the_arrived_ones_and_raises(pair, pipe):
    """The fd-leak guard checks that the fds which did arrive were closed."""
    a, b = pair
    read_end, write_end = pipe
    a.send_fds(b"x", [read_end, write_end, read_end])
    with pytest.raises(OSError) as caught:
        b.recv_fds(10, 1)
    assert caught.value.errno == errno.EMSGSIZE
    assert "maxfds=1" in str(caught.value) and "MSG_CTRUNC" in str(caught.value)


@pytest.mark.parametrize("maxfds", [1, 3, 5])
def test_recv_fds_never_returns_more_than_maxfds(pair, pipe, maxfds):
    """CMSG_SPACE rounds the control buffer up to 8 bytes, so an odd maxfds leaves room for one
    fd more: maxfds + 1 fds must still be EMSGSIZE, never a list longer than asked for. The
    fd-leak guard checks that every fd that did arrive was closed."""
    a, b = pair
    a.send_fds(b"x", [pipe[0]] * (maxfds + 1))
    with pytest.raises(OSError) as caught:
        b.recv_fds(10, maxfds)
    assert caught.value.errno == errno.EMSGSIZE
    assert f"maxfds={maxfds}" in str(caught.value)
    a.send_fds(b"y", [pipe[0]] * maxfds)  # exactly maxfds: all of them
    data, fds, flags, _ = b.recv_fds(10, maxfds)
    for fd in fds:
        os.close(fd)
    assert (data, len(fds), flags) == (b"y", maxfds, 0)


def test_recv_fds_over_dgram_with_an_address(closing, short_tmp, pipe):
    receiver = closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    receiver.bind(str(short_tmp / "r"))
    sender = closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    sender.bind(str(short_tmp / "s"))
    sender.send_fds(b"d", [pipe[1]], 0, receiver.local_address)
    data, [fd], flags, address = receiver.recv_fds(10, 1)
    os.close(fd)
    assert (data, flags, address) == (b"d", 0, str(short_tmp / "s"))


def test_fds_received_with_recvmsg_are_cloexec(pair, pipe):
    a, b = pair
    a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pipe[0]]))])
    _, [(_, _, raw)], _, _ = b.recvmsg(1, socket.CMSG_SPACE(4))
    [fd] = array.array("i", raw)
    try:
        assert os.get_inheritable(fd) is False
    finally:
        os.close(fd)


def _received_fds(ancdata) -> list[int]:
    fds = []
    for level, kind, raw in ancdata:
        assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        fds.extend(array.array("i", raw[:len(raw) - len(raw) % 4]))
    return fds


def _open_fd_numbers() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


UNIX_KINDS = st.sampled_from([socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET])


@settings(max_examples=150, deadline=None)
@given(kind=UNIX_KINDS, sent=st.integers(0, 9), maxfds=st.integers(0, 9), payload=st.binary(min_size=1, max_size=300),
       bufsize=st.integers(1, 400))
def test_recv_fds_fuzz_never_more_fds_than_asked_and_none_leaked(kind, sent, maxfds, payload, bufsize):
    read_end, write_end = os.pipe()
    a, b = socketeer.socketpair(socket.AF_UNIX, kind)
    try:
        a.send_fds(payload, [read_end] * sent)
        before = _open_fd_numbers()
        if sent > maxfds:
            with pytest.raises(OSError) as caught:
                b.recv_fds(bufsize, maxfds)
            assert caught.value.errno == errno.EMSGSIZE
            assert _open_fd_numbers() == before  # the fds that arrived were closed
            return
        data, fds, flags, _ = b.recv_fds(bufsize, maxfds)
        try:
            assert len(fds) == sent
            assert all(os.fstat(fd).st_ino == os.fstat(read_end).st_ino for fd in fds)
        finally:
            for fd in fds:
                os.close(fd)
        assert _open_fd_numbers() == before
        if kind == socket.SOCK_STREAM:
            assert 1 <= len(data) <= bufsize and payload.startswith(data)
        else:
            assert data == payload[:bufsize]
            assert bool(flags & socket.MSG_TRUNC) == (len(payload) > bufsize)
    finally:
        for sock in (a, b):
            sock.close()
        os.close(read_end)
        os.close(write_end)


@settings(max_examples=150, deadline=None)
@given(kind=UNIX_KINDS, sent=st.integers(0, 9), ancbufsize=st.integers(0, 120), payload=st.binary(min_size=1, max_size=300),
       bufsize=st.integers(0, 400))
def test_recvmsg_fuzz_ancillary_data_as_the_stdlib_parses_it(kind, sent, ancbufsize, payload, bufsize):
    """Any ancbufsize, any number of fds: the same data, flags and fd count as the stdlib's
    recvmsg on the same input (the kernel closes the fds that do not fit), and no fd leaked."""
    if kind == socket.SOCK_STREAM:
        bufsize = max(bufsize, 1)  # a 0-byte read of a stream answers 0 without reading
    read_end, write_end = os.pipe()
    outcomes = []
    try:
        for make_pair in (socket.socketpair, socketeer.socketpair):
            a, b = make_pair(socket.AF_UNIX, kind)
            with a, b:
                control = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [read_end] * sent))] if sent else []
                a.sendmsg([payload], control)
                before = _open_fd_numbers()
                data, ancdata, flags, _ = b.recvmsg(bufsize, ancbufsize)
                fds = _received_fds(ancdata)
                for fd in fds:
                    os.close(fd)
                assert _open_fd_numbers() == before
                outcomes.append((data, len(fds), [len(raw) for _, _, raw in ancdata], flags))
    finally:
        os.close(read_end)
        os.close(write_end)
    stdlib, ours = outcomes
    assert ours == stdlib
    assert ours[1] <= sent


# --- CLOEXEC everywhere -------------------------------------------------------------------------------

def test_every_socket_fd_is_cloexec(closing, tcp, pair):
    listener, client, accepted = tcp
    sockets = [listener, client, accepted, *pair,
               closing(client.dup()),
               closing(socketeer.fromfd(client.fileno(), socket.AF_INET, socket.SOCK_STREAM)),
               *(closing(s) for s in socketeer.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)),
               closing(Socket(socket.AF_INET6, socket.SOCK_DGRAM)),
               closing(Socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))]
    with socket.socket() as std:
        sockets.append(closing(Socket.from_stdlib(std)))
    for sock in sockets:
        assert os.get_inheritable(sock.fileno()) is False, sock


def test_a_child_process_does_not_inherit_socket_fds(pair):
    fd = pair[0].fileno()
    code = f"import os, sys\ntry:\n    os.fstat({fd})\nexcept OSError:\n    sys.exit(0)\nsys.exit(1)"
    assert subprocess.run([sys.executable, "-c", code], close_fds=False, timeout=30).returncode == 0


# --- peer credentials and TCP_INFO ------------------------------------------------------------------------

def test_peer_credentials_of_a_socketpair(pair):
    for sock in pair:
        credentials = sock.peer_credentials()
        assert (credentials.pid, credentials.uid, credentials.gid) == (os.getpid(), os.getuid(), os.getgid())
        assert credentials == socketeer.PeerCredentials(os.getpid(), os.getuid(), os.getgid())
        with pytest.raises(AttributeError):
            credentials.pid = 1


def test_peer_credentials_across_a_process(closing, short_tmp):
    server = closing(Socket(socket.AF_UNIX, socket.SOCK_STREAM))
    server.bind(str(short_tmp / "s"))
    server.listen()
    code = (f"import socket, os\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(short_tmp / 's')!r})\n"
            f"s.sendall(str(os.getpid()).encode())\ns.recv(1)\n")
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        accepted = closing(server.accept()[0])
        pid = int(accepted.recv(100))
        assert accepted.peer_credentials() == socketeer.PeerCredentials(pid, os.getuid(), os.getgid())
        assert pid == child.pid
        accepted.close()
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.wait(30)


def test_tcp_info(tcp):
    listener, client, accepted = tcp
    assert listener.tcp_info().state == TcpState.LISTEN
    for _ in range(3):  # traffic both ways gives the kernel rtt samples
        client.sendall(b"x" * 1000)
        assert len(accepted.recv(1000)) > 0
        accepted.sendall(b"y")
        assert client.recv(1) == b"y"
    info = client.tcp_info()
    assert info.state == TcpState.ESTABLISHED and isinstance(info.state, TcpState)
    assert info.rtt > 0 and info.snd_cwnd > 0 and info.snd_mss > 0
    assert info.bytes_acked >= 3000 and info.bytes_received >= 3
    assert info.retransmits == 0
    client.shutdown(socket.SHUT_WR)
    assert accepted.recv(10) == b""
    assert accepted.tcp_info().state == TcpState.CLOSE_WAIT


def test_tcp_info_on_a_non_tcp_socket_raises_oserror(pair):
    with pytest.raises(OSError):
        pair[0].tcp_info()


# --- socketpair, fromfd and the stdlib ------------------------------------------------------------------

@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET])
def test_socketpair_kinds(closing, kind):
    a, b = (closing(s) for s in socketeer.socketpair(socket.AF_UNIX, kind))
    assert type(a) is Socket and a.type == kind and a.family == socket.AF_UNIX
    a.send(b"one")
    a.send(b"two")
    if kind == socket.SOCK_STREAM:
        assert b.recv(3) + b.recv(3) == b"onetwo"
    else:
        assert (b.recv(100), b.recv(100)) == (b"one", b"two")


def test_socketpair_nonblocking_flag(closing):
    a, b = (closing(s) for s in socketeer.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))
    assert a.type == socket.SOCK_STREAM and a.gettimeout() == 0.0 and not os.get_blocking(a.fileno())
    with pytest.raises(BlockingIOError):
        a.recv(1)


def test_fromfd_keeps_the_original_open(closing, pair):
    copy = closing(socketeer.fromfd(pair[0], socket.AF_UNIX, socket.SOCK_STREAM))  # an object with fileno()
    copy.close()
    pair[0].send(b"original")
    assert pair[1].recv(100) == b"original"


def test_fromfd_of_a_non_socket_raises_and_leaks_nothing(pipe):
    with pytest.raises(OSError) as caught:
        socketeer.fromfd(pipe[0], socket.AF_UNIX, socket.SOCK_STREAM)
    assert caught.value.errno == errno.ENOTSOCK
    os.fstat(pipe[0])  # the caller's fd stays open


def test_socket_with_fileno_takes_ownership(closing):
    std_a, std_b = socket.socketpair()
    closing(std_b)
    sock = closing(Socket(fileno=std_a.detach()))
    assert (sock.family, sock.type) == (socket.AF_UNIX, socket.SOCK_STREAM)
    sock.send(b"owned")
    assert std_b.recv(10) == b"owned"


def test_from_stdlib_and_to_stdlib(closing):
    std_a, std_b = (closing(s) for s in socket.socketpair())
    std_a.settimeout(4.0)
    ours = closing(Socket.from_stdlib(std_a))
    assert type(ours) is Socket and ours.fileno() != std_a.fileno() and ours.gettimeout() == 4.0
    back = closing(ours.to_stdlib())
    assert type(back) is socket.socket and back.fileno() not in (ours.fileno(), std_a.fileno())
    assert back.gettimeout() == 4.0 and (back.family, back.type) == (socket.AF_UNIX, socket.SOCK_STREAM)
    std_a.close()  # each is an independent fd on the same socket
    ours.sendall(b"from socketeer")
    assert std_b.recv(100) == b"from socketeer"
    ours.close()
    std_b.sendall(b"to the stdlib copy")
    assert back.recv(100) == b"to the stdlib copy"


def test_stdlib_listener_socketeer_connection_round_trip(closing):
    std_server = closing(socket.create_server(("127.0.0.1", 0)))
    ours = closing(Socket.from_stdlib(std_server))
    std_server.close()
    client = closing(socket.create_connection(ours.getsockname(), timeout=10))
    accepted = closing(ours.accept()[0])
    std_accepted = closing(accepted.to_stdlib())
    accepted.close()
    client.sendall(b"ping")
    assert std_accepted.recv(4) == b"ping"


# --- netlink, packet and families without an Address class: the stdlib's tuple forms ------------------------
# (The life cycles shared with the stdlib are in contract/test_socket_contract.py.)

NETLINK_ROUTE, AF_VSOCK, AF_XDP = 0, 40, 44


def _optional_socket(closing, family, kind, why):
    try:
        return closing(Socket(family, kind))
    except PermissionError:
        pytest.skip(f"{why} needs CAP_NET_RAW (CI runs as root)")
    except OSError as error:
        pytest.skip(f"{why}: {error}")


def test_netlink_names_equal_the_stdlibs_on_the_same_socket(closing):
    sock = closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
    sock.bind((0, 0))
    with socket.socket(fileno=os.dup(sock.fileno())) as oracle:  # the stdlib's view of the same socket
        assert oracle.getsockname()[0] != 0  # the port id the kernel assigned
        assert sock.getsockname() == oracle.getsockname()
        assert sock.getpeername() == oracle.getpeername() == (0, 0)
    assert sock.local_address == NetlinkAddress(*sock.getsockname())  # the Address class, stdlib tuple inside
    assert sock.local_address.to_tuple() == sock.getsockname()
    assert sock.peer_address == NetlinkAddress(0, 0)
    assert Address.from_tuple(socket.AF_NETLINK, (5, 1)) == NetlinkAddress(5, 1)
    assert f"laddr={sock.getsockname()!r}" in repr(sock)  # repr shows the stdlib's form, as the stdlib's
    html = sock._repr_html_()
    assert "AF_NETLINK" in html and f"<code>netlink:{sock.getsockname()[0]}</code>" in html


def test_packet_names_equal_the_stdlibs_on_the_same_socket(closing):
    sock = _optional_socket(closing, socket.AF_PACKET, socket.SOCK_DGRAM, "AF_PACKET")
    sock.bind(("lo", 0x88B5))
    with socket.socket(fileno=os.dup(sock.fileno())) as oracle:
        assert sock.getsockname() == oracle.getsockname() == ("lo", 0x88B5, 0, 772, bytes(6))
    assert sock.local_address == PacketAddress("lo", 0x88B5, 0, 772, bytes(6))
    assert sock.local_address.to_tuple() == sock.getsockname()
    assert "laddr=('lo', 34997" in repr(sock) and "AF_PACKET" in sock._repr_html_()
    assert "<code>packet:lo/0x88b5/host/772/00:00:00:00:00:00</code>" in sock._repr_html_()


def test_any_other_family_is_named_in_the_stdlibs_generic_form(closing):
    """(family, sa_data), as the stdlib's makesockaddr writes a family it does not know. The stdlib
    knows AF_VSOCK, (cid, port); socketeer knows only netlink and packet, so the same bytes show."""
    sock = _optional_socket(closing, AF_VSOCK, socket.SOCK_STREAM, "AF_VSOCK")
    with socket.socket(fileno=os.dup(sock.fileno())) as oracle:
        cid, port = oracle.getsockname()
    sa_data = struct.pack("=HIIB3x", 0, port, cid, 0)  # struct sockaddr_vm after its family field
    assert sock.getsockname() == sock.local_address == (AF_VSOCK, sa_data)
    assert f"laddr={(AF_VSOCK, sa_data)!r}" in repr(sock)
    with pytest.raises(OSError, match="bad family: socketeer has no address form for family 40 sockets"):
        sock.bind((cid, port))


def test_other_families_numbers_out_of_range_raise_overflow_error(closing):
    """The stdlib truncates them (pid 2**32 + 1 would bind as pid 1); socketeer refuses."""
    sock = closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
    for address, field in (((-1, 0), "pid"), ((2**32, 0), "pid"), ((0, 2**32), "groups")):
        with pytest.raises(OverflowError, match=f"AF_NETLINK address: {field} must be 0-4294967295"):
            sock.bind(address)
    packet = _optional_socket(closing, socket.AF_PACKET, socket.SOCK_RAW, "AF_PACKET")
    with pytest.raises(OverflowError, match="pkttype must be 0-255, got 256"):
        packet.bind(("lo", 0, 256))
    with pytest.raises(OSError, match="find interface 'no-such-if0'") as caught:
        packet.bind(("no-such-if0", 0))
    assert caught.value.errno == errno.ENODEV


def _sockets_in_every_state(closing, short_tmp):
    """(label, Socket) for each family and state a repr must survive; some are skipped if the
    machine lacks them. The fds closed or replaced behind a socket's back are detached at the end."""
    cases = [("tcp unbound", closing(Socket())), ("udp unconnected", closing(Socket(socket.AF_INET, socket.SOCK_DGRAM))),
             ("unix dgram unbound", closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))),
             ("netlink unbound", closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW)))]
    listening = closing(Socket())
    listening.bind("127.0.0.1:0")
    listening.listen()
    netlink = closing(Socket(socket.AF_NETLINK, socket.SOCK_RAW))
    netlink.bind((0, 0))
    closed = Socket()
    closed.close()
    cases += [("tcp listening", listening), ("netlink bound", netlink), ("closed", closed)]
    for family, kind, label in ((socket.AF_PACKET, socket.SOCK_RAW, "packet"), (AF_VSOCK, socket.SOCK_STREAM, "vsock"),
                                (AF_XDP, socket.SOCK_RAW, "xdp")):
        try:
            sock = closing(Socket(family, kind))
        except OSError:
            continue
        if family == socket.AF_PACKET:
            cases.append(("packet unbound", closing(Socket(family, kind))))
            sock.bind(("lo", 0))
        cases.append((label, sock))
    replaced = closing(Socket())  # its fd number now names a unix socket
    a, b = socket.socketpair()
    with a, b:
        os.dup2(a.fileno(), replaced.fileno())
    behind = closing(Socket())  # its fd closed behind its back: last, so no socket here reuses it
    os.close(behind.fileno())
    cases += [("fd closed behind its back", behind), ("fd replaced by a unix socket", replaced)]
    return cases, [behind, replaced]


def test_repr_and_repr_html_never_raise(closing, short_tmp):
    cases, tampered = _sockets_in_every_state(closing, short_tmp)
    try:
        for label, sock in cases:
            text, html = repr(sock), sock._repr_html_()
            assert text.startswith("<socketeer.socket.Socket") and html.startswith("<table>"), label
            if label == "netlink bound":
                assert f"laddr={sock.getsockname()!r}" in text
    finally:
        os.close(tampered[1].detach())  # the unix socket's duplicate
        tampered[0].detach()  # already closed
    assert {label for label, _ in cases} >= {"netlink unbound", "closed", "fd closed behind its back"}


# --- display and life cycle ---------------------------------------------------------------------------------

def test_repr_html(tcp, closing):
    _, client, _ = tcp
    html = client._repr_html_()
    assert html.startswith("<table>") and "socketeer.Socket" in html
    for expected in (f"<code>{client.fileno()}</code>", "AF_INET", "SOCK_STREAM", "blocking",
                     str(client.local_address), str(client.peer_address), "ESTABLISHED", "µs"):
        assert expected in html, expected
    unix = closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    unix.settimeout(1.5)
    unix_html = unix._repr_html_()
    assert "AF_UNIX" in unix_html and "SOCK_DGRAM" in unix_html and "1.5" in unix_html
    assert "tcp state" not in unix_html
    unix.close()
    assert "closed" in unix._repr_html_()


def test_address_repr_html():
    html = Address.parse("[::1]:80")._repr_html_()
    assert "Inet6Address" in html and "AF_INET6" in html and "[::1]:80" in html


def test_unclosed_socket_warns_and_closes_its_fd():
    sock = Socket()
    fd = sock.fileno()
    with pytest.warns(ResourceWarning, match=f"unclosed <socketeer.socket.Socket fd={fd}"):
        del sock
        gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by the finaliser (nothing else opened an fd in between)


def test_closed_socket_does_not_warn(recwarn):
    Socket().close()
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


# --- the GIL and signals around blocking calls -----------------------------------------------------------

def in_recv_syscall(thread_id: int) -> bool:
    """True while the thread is blocked in the kernel receiving (recvfrom, or poll for a timeout)."""
    return blocked_in(thread_id, RECV)


def test_blocking_recv_releases_the_gil(pair, wait_until):
    a, b = pair
    a.settimeout(20)  # if the GIL were held, the main thread could only run after this expires
    result = {}
    started = threading.Event()

    def receive():
        started.set()
        try:
            result["data"] = a.recv(100)
        except OSError as error:
            result["error"] = error

    receiver = threading.Thread(target=receive)
    receiver.start()
    try:
        started.wait(10)
        # The main thread runs Python (this polling) while the other blocks in recv.
        wait_until(lambda: in_recv_syscall(receiver.native_id) or not receiver.is_alive(), timeout=10,
                   what="the receiver to block in recv")
        progress = sum(range(100_000))  # more Python work with the receiver still blocked
        assert receiver.is_alive() and in_recv_syscall(receiver.native_id)
        b.send(b"wake up")
    finally:
        receiver.join(30)
    assert progress == 4999950000
    assert result == {"data": b"wake up"}


class Interrupted(Exception):
    pass


@contextlib.contextmanager
def sigalrm_once_blocked(handler, wait_until):
    """Installs handler for SIGALRM and, from a thread, sends SIGALRM to the main thread as soon as
    /proc shows it blocked in recv inside the with-block; restores the old handler after."""
    main_thread, main_native = threading.get_ident(), threading.get_native_id()

    def signal_when_blocked():
        wait_until(lambda: in_recv_syscall(main_native), timeout=10, what="the main thread to block in recv")
        signal.pthread_kill(main_thread, signal.SIGALRM)

    previous = signal.signal(signal.SIGALRM, handler)
    sender = threading.Thread(target=signal_when_blocked)
    try:
        sender.start()
        yield
    finally:
        sender.join(30)
        signal.signal(signal.SIGALRM, previous)


def test_a_signal_handler_interrupts_a_blocking_recv(pair, wait_until):
    """Ctrl-C: a signal whose handler raises ends a recv blocked in the main thread."""
    def raise_interrupted(signum, frame):
        raise Interrupted

    with sigalrm_once_blocked(raise_interrupted, wait_until), pytest.raises(Interrupted):
        pair[0].recv(100)  # blocking, no timeout: only the signal can end it


def test_a_signal_whose_handler_returns_does_not_end_recv(pair, wait_until):
    """EINTR is retried: a handler that returns normally leaves recv waiting for its data."""
    a, b = pair
    handled = threading.Event()

    def note(signum, frame):
        handled.set()
        b.send(b"after the signal")  # runs in the main thread, between EINTR and the retry

    with sigalrm_once_blocked(note, wait_until):
        assert a.recv(100) == b"after the signal"
    assert handled.is_set()


def test_no_sigpipe_when_the_peer_is_gone():
    """With SIGPIPE at its default action (death), sending to a closed peer must raise instead."""
    done = run_with_sigpipe_at_default("""
        import socketeer
        a, b = socketeer.socketpair()
        b.close()
        for send in (lambda: a.send(b"x"), lambda: a.sendall(b"x"), lambda: a.sendmsg([b"x"]),
                     lambda: a.send_fds(b"x", [0])):
            try:
                send()
            except BrokenPipeError:
                pass
            else:
                raise SystemExit("no error")
        print("alive")
    """)
    assert (done.returncode, done.stdout) == (0, "alive\n"), done.stderr


@pytest.mark.parametrize("peer", ["unix", "tcp"])
def test_no_sigpipe_from_sendfile_to_a_closed_peer(peer):
    """sendfile(2) has no MSG_NOSIGNAL: with SIGPIPE at its default, the EPIPE must still be an
    exception (the stdlib's BrokenPipeError), not the death of the process."""
    done = run_with_sigpipe_at_default(f"""
        import socketeer, tempfile
        if {peer!r} == "unix":
            a, b = socketeer.socketpair()
            b.close()
        else:
            listener = socketeer.Socket()
            listener.bind("127.0.0.1:0")
            listener.listen()
            a = socketeer.Socket()
            a.connect(listener.local_address)
            b, _ = listener.accept()
            b.setsockopt(socketeer.SOL_SOCKET, socketeer.SO_LINGER, b"\\x01\\0\\0\\0\\0\\0\\0\\0")
            b.close()  # a RST
            a.settimeout(10)
            try:
                a.recv(1)  # takes the reset: every write from here on is EPIPE
            except ConnectionResetError:
                pass
            else:
                raise SystemExit("no reset")
        with tempfile.TemporaryFile() as file:
            file.write(b"x" * 100_000)
            file.flush()
            for _ in range(3):
                file.seek(0)
                try:
                    a.sendfile(file)
                except BrokenPipeError:
                    pass
                else:
                    raise SystemExit("no error")
        print("alive")
    """)
    assert (done.returncode, done.stdout) == (0, "alive\n"), done.stderr


# --- raw sockets ----------------------------------------------------------------------------------------------

def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw sockets need root (CAP_NET_RAW); CI runs as root")


@pytest.mark.root
@needs_root
def test_raw_icmp_echo_to_loopback(closing):
    icmp = _load_example("icmp_ping")  # the echo request encoding (checksum included)
    sock = closing(Socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    assert (sock.type, sock.proto) == (socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(10)
    ident, payload = os.getpid() & 0xFFFF, b"socketeer ping %d" % os.getpid()
    sock.sendto(icmp.echo_request(ident, 1, payload), ("127.0.0.1", 0))
    while True:  # a raw socket sees every ICMP packet on the host: our request, then its reply
        packet, (source, _) = sock.recvfrom(65535)
        header_length = (packet[0] & 0x0F) * 4
        kind, code, _, reply_ident, sequence = struct.unpack("!BBHHH", packet[header_length:header_length + 8])
        if kind == 0 and reply_ident == ident:
            break
    assert (source, code, sequence) == ("127.0.0.1", 0, 1)
    assert packet[header_length + 8:] == payload
    assert icmp.checksum(packet[header_length:]) == 0


@pytest.mark.root
@needs_root
def test_raw_socket_without_privileges_raises_permission_error():
    code = textwrap.dedent("""
        import errno, os, socket, socketeer
        Socket = socketeer.Socket  # resolve imports first, as any privilege-dropping program must
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        try:
            Socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except PermissionError as error:
            assert error.errno == errno.EPERM, error
            print(error)
        else:
            raise SystemExit("a raw socket without privileges")
    """)
    done = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                          timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    assert "Operation not permitted" in done.stdout and "SOCK_RAW" in done.stdout


# --- close() racing a call blocked in another thread ---------------------------------------------------
#
# The blocked call must end with EBADF, promptly, and never touch the fd's next owner: the fd number
# stays taken until every call that may be using it has left (close() wakes them with shutdown()).

def in_socket_wait(thread_id: int) -> bool:
    """True while the thread is blocked in the kernel in a socket call or a poll."""
    return blocked_in(thread_id, SOCKET_WAIT)


class BlockedCall:
    """call() in a thread of its own; .result / .error once it has ended."""

    def __init__(self, call, wait_until):
        self.result = self.error = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()
        self._started.wait(10)
        wait_until(lambda: in_socket_wait(self._thread.native_id) or not self._thread.is_alive(), timeout=10,
                   what="the call to block")
        assert self._thread.is_alive(), f"the call ended at once: {self.result!r} {self.error!r}"

    def _run(self, call):
        self._started.set()
        try:
            self.result = call()
        except BaseException as error:  # noqa: BLE001 - the outcome is what the test checks
            self.error = error

    def in_flight(self) -> bool:
        return self._thread.is_alive() and in_socket_wait(self._thread.native_id)

    def join(self, timeout: float = 10) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the blocked call did not end after close()"


def take_fd_number(number: int, make, closing, wait_until, blocked: BlockedCall):
    """Makes sockets with make() (a list of them each time) until one gets fd `number`, keeping
    the others open so each make() takes new numbers; returns (the one with `number`, the rest of
    its list). The number must not come back while the blocked call may still use it."""
    found = []

    def attempt():
        made = [closing(sock) for sock in make()]
        for sock in made:
            if sock.fileno() == number:
                assert not blocked.in_flight(), f"fd {number} was reused while the blocked call still waits on it"
                found.append((sock, [other for other in made if other is not sock]))
                return True
        return False

    wait_until(attempt, timeout=10, what=f"fd {number} to be free again")
    return found[0]


def pair_owner(closing, wait_until, blocked, number):
    """The fd's next owner is one end of a new socketpair: its data must reach it intact."""
    owner, [peer] = take_fd_number(number, socketeer.socketpair, closing, wait_until, blocked)
    peer.sendall(b"for the new owner")
    owner.settimeout(5)
    assert owner.recv(100) == b"for the new owner"
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)  # nothing from the old call reached the new owner's peer either


def listener_owner(closing, wait_until, blocked, number):
    """The fd's next owner is a new listener: its connection must not be accepted by the old call."""
    def make():
        sock = Socket()
        sock.bind("127.0.0.1:0")
        sock.listen()
        return [sock]

    owner, _ = take_fd_number(number, make, closing, wait_until, blocked)
    client = closing(Socket())
    client.connect(owner.local_address)
    owner.settimeout(5)
    accepted, peer = owner.accept()
    closing(accepted)
    assert peer == client.getsockname()


def udp_owner(closing, wait_until, blocked, number):
    """The fd's next owner is a bound UDP socket: its datagram must reach it."""
    def make():
        sock = Socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind("127.0.0.1:0")
        return [sock]

    owner, _ = take_fd_number(number, make, closing, wait_until, blocked)
    sender = closing(Socket(socket.AF_INET, socket.SOCK_DGRAM))
    sender.sendto(b"for the new owner", owner.local_address)
    owner.settimeout(5)
    assert owner.recvfrom(100)[0] == b"for the new owner"


def blocked_recv(closing, timeout, method):
    a, b = socketeer.socketpair()
    closing(a), closing(b)
    a.settimeout(timeout)
    calls = {"recv": lambda: a.recv(100), "recv_into": lambda: a.recv_into(bytearray(100)),
             "recvmsg": lambda: a.recvmsg(100)}
    return a, calls[method], b.close, pair_owner


def blocked_recvfrom(closing, timeout):
    sock = closing(Socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind("127.0.0.1:0")
    sock.settimeout(timeout)
    address = sock.getsockname()

    def poke():  # wakes the old code's call, which waits on the old socket forever
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"poke", address)

    return sock, lambda: sock.recvfrom(100), poke, udp_owner


def blocked_accept(closing, timeout):
    listener = closing(Socket())
    listener.bind("127.0.0.1:0")
    listener.listen()
    listener.settimeout(timeout)
    address = listener.getsockname()

    def poke():
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=1):
            pass

    return listener, lambda: listener.accept()[0].close(), poke, listener_owner


def blocked_sendall(closing, timeout):
    a, b = socketeer.socketpair()
    closing(a), closing(b)
    a.settimeout(timeout)
    return a, lambda: a.sendall(b"x" * (32 << 20)), b.close, pair_owner


def blocked_connect(closing, timeout):
    black_hole = closing(socket.socket())
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(0)
    closing(socket.create_connection(black_hole.getsockname()))  # fills the accept queue: SYNs are dropped
    sock = closing(Socket())
    sock.settimeout(timeout)
    return sock, lambda: sock.connect(black_hole.getsockname()), black_hole.close, pair_owner


BLOCKED_CALLS = {
    "recv-timeout": lambda c: blocked_recv(c, 5, "recv"),
    "recv-blocking": lambda c: blocked_recv(c, None, "recv"),
    "recv_into-timeout": lambda c: blocked_recv(c, 5, "recv_into"),
    "recv_into-blocking": lambda c: blocked_recv(c, None, "recv_into"),
    "recvmsg-timeout": lambda c: blocked_recv(c, 5, "recvmsg"),
    "recvfrom-timeout": lambda c: blocked_recvfrom(c, 5),
    "recvfrom-blocking": lambda c: blocked_recvfrom(c, None),
    "accept-timeout": lambda c: blocked_accept(c, 5),
    "accept-blocking": lambda c: blocked_accept(c, None),
    "sendall-timeout": lambda c: blocked_sendall(c, 5),
    "sendall-blocking": lambda c: blocked_sendall(c, None),
    "connect-timeout": lambda c: blocked_connect(c, 5),
    "connect-blocking": lambda c: blocked_connect(c, None),
}


@pytest.mark.parametrize("case", BLOCKED_CALLS)
def test_close_ends_a_call_blocked_in_another_thread_with_ebadf(case, closing, wait_until):
    """The stdlib's recv with a timeout ends only when the timeout expires (and one on a blocking
    socket never does); ours ends at once with EBADF, and the fd's next owner is untouched."""
    sock, call, poke, next_owner = BLOCKED_CALLS[case](closing)
    number = sock.fileno()
    blocked = BlockedCall(call, wait_until)
    try:
        sock.close()
        assert sock.fileno() == -1 and sock.closed
        next_owner(closing, wait_until, blocked, number)
        blocked.join(10)
    finally:
        if blocked.in_flight():  # the old code: unstick the thread so the test ends
            poke()
    assert blocked.result is None, f"the closed socket's call returned {blocked.result!r}"
    assert isinstance(blocked.error, OSError) and blocked.error.errno == errno.EBADF, repr(blocked.error)
    assert "socket is closed" in str(blocked.error)


def test_the_fd_number_stays_taken_while_a_blocked_call_is_in_flight(pair, wait_until):
    """Deterministic: the main thread blocks in recv; a signal handler runs inside that call (after
    EINTR) and closes the socket there. Until the call has left, the number must stay ours."""
    a, b = pair
    a.settimeout(5)
    number, inode = a.fileno(), os.fstat(a.fileno()).st_ino
    seen = {}

    def close_inside_the_call(signum, frame):
        a.close()
        x, y = socketeer.socketpair()  # would take `number` if it were free
        seen["new"] = (x.fileno(), y.fileno())
        x.close(), y.close()
        seen["inode"] = os.fstat(number).st_ino

    with sigalrm_once_blocked(close_inside_the_call, wait_until), pytest.raises(OSError) as caught:
        a.recv(100)
    assert caught.value.errno == errno.EBADF
    assert number not in seen["new"] and seen["inode"] == inode
    with pytest.raises(OSError):
        os.fstat(number)  # closed by the call as it left


def test_detach_is_refused_while_a_call_is_blocked(pair, wait_until):
    """detach() would hand over an fd a call still waits on (its new owner could close it and
    the number be reused under the call): it raises EBUSY and the socket stays as it was."""
    a, b = pair
    a.settimeout(5)
    blocked = BlockedCall(lambda: a.recv(100), wait_until)
    try:
        with pytest.raises(OSError) as caught:
            a.detach()
        assert caught.value.errno == errno.EBUSY and "detach" in str(caught.value)
        assert a.fileno() >= 0
        b.send(b"still ours")
        blocked.join(10)
    finally:
        if blocked.in_flight():
            b.send(b"x")
    assert blocked.result == b"still ours"
    os.close(a.detach())  # nothing waits any more: detach works
