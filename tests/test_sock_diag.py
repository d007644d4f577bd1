"""socketeer.sockets(): the kernel's socket list (sock_diag) against the sockets' own view of
themselves, the stdlib, and iproute2's ss; the kernel-side filters against filtering in Python;
another namespace; bad input."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

import socketeer
from socketeer import AF_UNIX, InetAddress, SocketRecord, TcpState, UnixAddress


def by_inode(records, sock) -> SocketRecord:
    inode = os.fstat(sock.fileno()).st_ino
    found = [r for r in records if r.inode == inode]
    assert len(found) == 1, f"inode {inode} listed {len(found)} times"
    return found[0]


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def tcp_pair():
    listener = socketeer.Socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    client = socket.create_connection(listener.getsockname()[:2])
    accepted, _ = listener.accept()
    yield listener, client, accepted
    for sock in (listener, client, accepted):
        sock.close()


def test_tcp_listener_and_connection_as_the_sockets_see_themselves(tcp_pair):
    listener, client, accepted = tcp_pair
    records = socketeer.sockets("tcp", all=True, tcp_info=True)
    assert isinstance(records, socketeer.SocketList)
    lrec, crec, arec = (by_inode(records, s) for s in tcp_pair)
    assert lrec.state is TcpState.LISTEN and lrec.listen_queue == 0
    assert crec.state is TcpState.ESTABLISHED and arec.state is TcpState.ESTABLISHED
    assert lrec.local == listener.local_address
    assert arec.local == accepted.local_address and arec.remote == accepted.peer_address
    assert crec.local == InetAddress(*client.getsockname()) and crec.remote == InetAddress(*client.getpeername())
    assert crec.family == socket.AF_INET and crec.kind == socket.SOCK_STREAM
    assert crec.protocol == socket.IPPROTO_TCP and crec.netid == "tcp" and crec.uid == os.geteuid()
    info = arec.tcp_info
    own = accepted.tcp_info()
    assert info is arec.tcp_info  # built once
    assert isinstance(info, socketeer.TcpInfo) and info.state is own.state is TcpState.ESTABLISHED
    assert (info.snd_mss, info.rcv_mss, info.pmtu, info.advmss) == (own.snd_mss, own.rcv_mss, own.pmtu, own.advmss)
    assert "ESTABLISHED" in repr(crec) and "tcp" in repr(crec)
    assert "<table>" in records._repr_html_() and "<table>" in crec._repr_html_()


def test_without_tcp_info_it_is_none(tcp_pair):
    assert by_inode(socketeer.sockets("tcp"), tcp_pair[1]).tcp_info is None


def test_unread_bytes_show_in_recv_queue_and_pending_connections_in_listen_queue(tcp_pair):
    listener, client, accepted = tcp_pair
    client.sendall(b"x" * 1000)
    wait_for(lambda: by_inode(socketeer.sockets("tcp"), accepted).recv_queue == 1000)
    late = socket.create_connection(listener.getsockname()[:2])
    try:
        wait_for(lambda: by_inode(socketeer.sockets("tcp", listening=True), listener).listen_queue == 1)
        assert by_inode(socketeer.sockets("tcp", listening=True), listener).send_queue == 8  # backlog
    finally:
        late.close()


def test_default_states_are_the_connections_as_ss_chooses(tcp_pair):
    listener, client, _ = tcp_pair
    inodes = {r.inode for r in socketeer.sockets("tcp")}
    assert os.fstat(client.fileno()).st_ino in inodes
    assert os.fstat(listener.fileno()).st_ino not in inodes
    listening = {r.inode for r in socketeer.sockets("tcp", listening=True)}
    assert os.fstat(listener.fileno()).st_ino in listening
    assert os.fstat(client.fileno()).st_ino not in listening


def test_kernel_filters_match_filtering_in_python(tcp_pair):
    listener, client, accepted = tcp_pair
    port = listener.getsockname()[1]
    everything = socketeer.sockets("tcp", all=True)
    for kwargs, keep in [
        ({"port": port}, lambda r: port in (r.local.port, r.remote.port)),
        ({"sport": port}, lambda r: r.local.port == port),
        ({"dport": port}, lambda r: r.remote.port == port),
        ({"sport": port, "dport": client.getsockname()[1]},
         lambda r: r.local.port == port and r.remote.port == client.getsockname()[1]),
    ]:
        got = {r.inode for r in socketeer.sockets("tcp", all=True, **kwargs)}
        assert got == {r.inode for r in everything if keep(r)}, kwargs
    assert {r.inode for r in socketeer.sockets("tcp", state=TcpState.LISTEN, port=port)} == {
        os.fstat(listener.fileno()).st_ino}
    got = {r.inode for r in socketeer.sockets("tcp", state=["ESTABLISHED"], port=port)}
    assert got == {os.fstat(s.fileno()).st_ino for s in (client, accepted)}


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2's ss is not installed")
def test_agrees_with_ss(tcp_pair):
    listener, _, _ = tcp_pair
    port = listener.getsockname()[1]
    # Only the pair's states: an earlier test's connection to a port of the same number may
    # linger (TIME_WAIT, FIN_WAIT2 ...) and come or go between the two listings.
    out = subprocess.run(["ss", "-tnH", "state", "listening", "state", "established",
                          f"( sport = :{port} or dport = :{port} )"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    theirs = sorted((line.split()[0], line.split()[3], line.split()[4]) for line in out.splitlines() if line.strip())
    names = {TcpState.LISTEN: "LISTEN", TcpState.ESTABLISHED: "ESTAB"}
    ours = sorted((names[r.state], str(r.local), str(r.remote).replace("0.0.0.0:0", "0.0.0.0:*"))
                  for r in socketeer.sockets("tcp", state=list(names), port=port))
    assert ours == theirs


def test_udp_bound_and_connected():
    bound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        bound.bind(("127.0.0.1", 0))
        connected.connect(bound.getsockname())
        connected.send(b"hello")
        wait_for(lambda: by_inode(socketeer.sockets("udp", listening=True), bound).recv_queue > 0)
        brec = by_inode(socketeer.sockets("udp", listening=True), bound)
        assert brec.state is TcpState.CLOSE and brec.kind == socket.SOCK_DGRAM and brec.netid == "udp"
        assert brec.local == InetAddress(*bound.getsockname())
        crec = by_inode(socketeer.sockets("udp"), connected)
        assert crec.state is TcpState.ESTABLISHED and crec.remote == InetAddress(*bound.getsockname())
    finally:
        bound.close()
        connected.close()


def test_unix_socketpair_peers_and_queue():
    a, b = socket.socketpair()
    try:
        a.send(b"abc")
        records = socketeer.sockets("unix")
        ra, rb = by_inode(records, a), by_inode(records, b)
        assert ra.peer_inode == rb.inode and rb.peer_inode == ra.inode
        assert rb.recv_queue == 3 and ra.netid == "u_str" and ra.family == AF_UNIX
        assert ra.local == UnixAddress("") and ra.local.unnamed
        assert ra.tcp_info is None and ra.cookie == 0
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("abstract", [False, True])
def test_unix_listener_by_name_with_its_queue(socketeer_unix_path, abstract):
    name = f"socketeer-diag-{os.getpid()}-{time.monotonic_ns()}" if abstract else socketeer_unix_path
    address = b"\0" + name.encode() if abstract else name
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
        listener.listen(4)
        client.connect(address)
        rec = by_inode(socketeer.sockets("unix", listening=True), listener)
        assert rec.local == UnixAddress(name, abstract=abstract)
        assert rec.state is TcpState.LISTEN and rec.listen_queue == 1 and rec.send_queue == 4
        if not abstract:
            assert rec.vfs_inode == os.stat(name).st_ino
        accepted, _ = listener.accept()
        with accepted:
            records = socketeer.sockets("unix_stream")
            crec, arec = by_inode(records, client), by_inode(records, accepted)
            assert crec.peer_inode == arec.inode
            assert crec.remote == UnixAddress(name, abstract=abstract)  # the accepted end has the listener's name
            assert not any(r.inode == crec.inode for r in socketeer.sockets("unix_dgram", all=True))
    finally:
        listener.close()
        client.close()


def test_processes_finds_this_process_fd(tcp_pair):
    _, client, _ = tcp_pair
    rec = by_inode(socketeer.sockets("tcp", processes=True), client)
    assert (os.getpid(), client.fileno()) in [(p.pid, p.fd) for p in rec.processes]
    assert all(isinstance(p, socketeer.SocketProcess) for p in rec.processes)
    assert by_inode(socketeer.sockets("tcp"), client).processes is None


def test_netns_sees_that_namespace_only(socketeer_netns):
    def listen_inside():
        sock = socket.create_server(("127.0.0.1", 0))
        return sock, os.fstat(sock.fileno()).st_ino

    sock, inode = socketeer_netns.call(listen_inside)
    host = socket.create_server(("127.0.0.1", 0))
    try:
        inside = socketeer.sockets("tcp", listening=True, netns=socketeer_netns.name)
        assert [r.inode for r in inside] == [inode]
        assert [r.inode for r in socketeer.sockets("tcp", listening=True, netns=socketeer_netns.path)] == [inode]
        fd = os.open(socketeer_netns.path, os.O_RDONLY)
        try:
            assert [r.inode for r in socketeer.sockets("tcp", listening=True, netns=fd)] == [inode]
        finally:
            os.close(fd)
        host_inodes = {r.inode for r in socketeer.sockets("tcp", listening=True)}
        assert inode not in host_inodes and os.fstat(host.fileno()).st_ino in host_inodes
    finally:
        sock.close()
        host.close()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown kind 'tcpp'"):
        socketeer.sockets("tcpp")
    with pytest.raises(ValueError, match="unknown socket state .OPEN."):
        socketeer.sockets("tcp", state="OPEN")
    with pytest.raises(ValueError, match="unknown socket state 99"):
        socketeer.sockets("tcp", state=99)
    with pytest.raises(ValueError, match="unsupported family"):
        socketeer.sockets(family=socket.AF_PACKET)
    with pytest.raises(ValueError, match="sport must be 0-65535, got 70000"):
        socketeer.sockets("tcp", sport=70000)
    with pytest.raises(ValueError, match="not both"):
        socketeer.sockets("tcp", state=TcpState.LISTEN, all=True)
    with pytest.raises(FileNotFoundError, match="/run/netns/socketeer-no-such-ns"):
        socketeer.sockets("tcp", netns="socketeer-no-such-ns")
    with pytest.raises(OSError) as error:
        socketeer.sockets("tcp", netns=10**6)  # no such fd
    assert error.value.errno == 9 and "enter network namespace" in str(error.value)  # EBADF
