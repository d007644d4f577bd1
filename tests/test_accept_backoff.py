"""Out of file descriptors, every accept loop keeps serving: the C++ Server, Listener.serve()
and aio.Listener.serve() share one policy (_core.AcceptBackoff) and are held to one behaviour
here. Each server runs in a child process (emfile_child.py) whose fds the test exhausts and
frees on command: the open connection goes on being served, a new one waits in the backlog, and
it is accepted once fds come back. Plus the policy's table of errors, against errno."""

from __future__ import annotations

import errno
import select
import socket as stdlib

import pytest

from emfile_child import NEEDS_FREE_FDS_UNDER_SANITIZERS, EmfileServer
from socketeer import _core

TIMEOUT = 10  # seconds: bounds every wait that is expected to end

pytestmark = pytest.mark.timeout(60)

KINDS = ["server", "listener", "aio"]


def echo(sock: stdlib.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        if not chunk:
            break
        got += chunk
    return got


def connect(server: EmfileServer) -> stdlib.socket:
    sock = stdlib.create_connection(server.address, timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


@pytest.mark.not_under_asan(NEEDS_FREE_FDS_UNDER_SANITIZERS)
@pytest.mark.parametrize("kind", KINDS)
def test_out_of_fds_the_open_connections_are_served_and_new_ones_accepted_later(kind, closing):
    with EmfileServer(kind) as server:
        served = closing(connect(server))
        assert echo(served, b"before") == b"before"
        assert server.command("exhaust").startswith("exhausted")
        assert echo(served, b"while out of fds") == b"while out of fds"
        # The kernel completes the handshake of a connection nobody accepts: it waits in the
        # backlog, and what it sends is not echoed while the server has no fd to take it with.
        waiting = closing(connect(server))
        waiting.sendall(b"queued")
        readable, _, _ = select.select([waiting], [], [], 0.5)  # five back-off pauses or so
        assert not readable, "a connection was served while the server had no fd for it"
        assert echo(served, b"still served") == b"still served"
        server.command("free")
        assert waiting.recv(100) == b"queued"
        later = closing(connect(server))
        assert echo(later, b"after") == b"after"
        for sock in (served, waiting, later):  # the serve loops wait for their handlers on quit
            sock.close()
    if kind != "server":  # the Python loops log once per shortage, not once per failed accept
        assert server.pauses_logged() == 1, server.log
        assert "works again" in server.log


@pytest.mark.parametrize("code", [errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.ENETDOWN,
                                  errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH,
                                  errno.EOPNOTSUPP, errno.ENETUNREACH, errno.ETIMEDOUT])
def test_errors_about_one_connection_are_retried_at_once(code):
    backoff = _core.AcceptBackoff()
    assert backoff.failed(code) == 0.0
    assert backoff.pauses == 0


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM])
def test_running_out_of_resources_pauses_accepting(code):
    backoff = _core.AcceptBackoff()
    assert [backoff.failed(code) for _ in range(3)] == [0.1, 0.1, 0.1]  # the Server's 100 ms, not growing
    assert backoff.pauses == 3
    assert backoff.succeeded() == 3
    assert backoff.pauses == 0 and backoff.succeeded() == 0


@pytest.mark.parametrize("code", [errno.EBADF, errno.EINVAL, errno.ENOTSOCK, errno.EFAULT, errno.EPERM, 0, 99999])
def test_other_errors_are_fatal(code):
    assert _core.AcceptBackoff().failed(code) is None
