"""Linux abstract namespace: unix socket names that are not files.

An abstract name starts with a NUL byte (socketeer spells it ``unix:@name`` or
``UnixAddress(name, abstract=True)``). Nothing appears on disk, there is nothing to clean up,
and the name is released the moment the last socket bound to it closes.
"""

import os

import socketeer
from socketeer import AF_UNIX, SOCK_STREAM, UnixAddress


def main() -> None:
    name = UnixAddress(f"socketeer-example-{os.getpid()}", abstract=True)
    print(f"address: {name}  (stdlib form: {name.to_tuple()!r})")
    with socketeer.Socket(AF_UNIX, SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen()
        print(f"server: listening on {listener.local_address}; no file was created")
        with socketeer.Socket(AF_UNIX, SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(name)
            conn, _ = listener.accept()
            with conn:
                client.sendall(b"no file needed")
                print(f"server: got {conn.recv(1024)!r}")
        try:
            with socketeer.Socket(AF_UNIX, SOCK_STREAM) as second:
                second.bind(name)
        except OSError as error:
            print(f"while bound, a second bind fails: {error.strerror}")
    with socketeer.Socket(AF_UNIX, SOCK_STREAM) as again:
        again.bind(name)
        print("after close, the name is free again: bound it a second time")


if __name__ == "__main__":
    main()
