"""Large messages without copies: socketeer.Server(views=True) lends each message as a memoryview.

    server: Server(handler, framing=length_prefixed(4), views=True) -> listen -> start
    client: connect -> send blobs with a 4-byte length prefix -> read the replies

A view points into the server's read buffer, so the handler reads a 1 MiB message without
copying it: zlib.crc32() reads it in place, and conn.send_message(view) sends it back from the
buffer itself. A view stays valid for as long as it is referenced (the server then reads on into
a new buffer), so keeping one is safe; bytes(view[:n]) keeps just a part.
"""

import os
import zlib

import socketeer
from socketeer import framing


class Checksums:
    def on_connect(self, conn):
        conn.heads = []  # the first bytes of every blob, copied: the views themselves are not kept

    def on_message(self, conn, blob):  # blob: a read-only memoryview
        conn.heads.append(bytes(blob[:4]))
        conn.send_message(b"crc32 %08x" % zlib.crc32(blob))
        conn.send_message(blob)  # echoed straight from the read buffer


def main() -> None:
    blobs = [os.urandom(1 << 20) for _ in range(3)]
    lp = framing.length_prefixed(4, max_size=4 << 20)
    server = socketeer.Server(Checksums(), framing=lp, views=True)
    try:
        address = server.listen("tcp://127.0.0.1:0")
        server.start()
        print(f"server: listening on {address}")
        with socketeer.connect(server.endpoint(), timeout=5) as stream:
            stream.send_all(b"".join(lp.encode(blob) for blob in blobs))
            for blob in blobs:
                answer = stream.recv_exactly(int.from_bytes(stream.recv_exactly(4), "big"))
                echoed = stream.recv_exactly(int.from_bytes(stream.recv_exactly(4), "big"))
                assert answer == b"crc32 %08x" % zlib.crc32(blob) and echoed == blob
        print(f"client: {len(blobs)} blobs of 1 MiB checked and echoed intact")
    finally:
        server.close()


if __name__ == "__main__":
    main()
