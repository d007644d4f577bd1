"""Passing an open file to another process over a unix socket (SCM_RIGHTS).

The parent forks first, and only then opens a file the child could never open itself
(it is unlinked right away, so it has no name any more). It sends the open fd with
send_fds(); the child receives a new fd for the same open file with recv_fds(), reads it,
and reports back over the same socket.
"""

import os
import sys
import tempfile

import socketeer


def child(sock: socketeer.Socket) -> int:
    sock.settimeout(5)
    data, fds, _flags, _ = sock.recv_fds(1024, maxfds=1)
    (fd,) = fds
    with os.fdopen(fd, "rb") as received:
        content = received.read()
    sock.sendall(f"child {os.getpid()} got fd {fd} with {data.decode()!r}; read {content!r}".encode())
    return 0


def parent(sock: socketeer.Socket, pid: int) -> None:
    with tempfile.TemporaryFile(dir="/tmp") as secret:  # unlinked: reachable only through its fd
        secret.write(b"the contents of an unlinked file")
        secret.seek(0)
        sock.send_fds([b"a gift"], [secret.fileno()])
        print(f"parent {os.getpid()}: sent fd {secret.fileno()} to child {pid}")
    sock.settimeout(5)
    print(f"parent: child reports: {sock.recv(1024).decode()}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "child failed"


def main() -> None:
    parent_end, child_end = socketeer.socketpair()
    sys.stdout.flush()  # no buffered output to be printed twice by the child
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parent_end.close()
            code = child(child_end)
        finally:
            os._exit(code)
    child_end.close()
    with parent_end:
        parent(parent_end, pid)


if __name__ == "__main__":
    main()
