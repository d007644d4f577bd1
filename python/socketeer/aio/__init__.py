"""socketeer on asyncio: the Stream / Listener / Datagram API as coroutines (``socketeer.aio.streams``, ``datagram``, ``opening``),
on any asyncio loop, and :class:`Loop`, an asyncio event loop on socketeer's C++ engine
(``socketeer.aio.loop``).

>>> async def main():
...     async with await listen("tcp://127.0.0.1:0") as listener:
...         async with await connect(listener.endpoint) as client, await listener.accept() as server:
...             await client.send_all(b"ping\\n")
...             return await server.recv_until(b"\\n")
>>> run(main())
b'ping\\n'
"""

from __future__ import annotations

from .loop import EventLoopPolicy, Loop, new_event_loop, run
from .datagram import Datagram
from .opening import bind, connect, listen
from .streams import IncompleteReadError, Listener, MessageTooLarge, Stream

__all__ = ["Stream", "Listener", "Datagram", "connect", "listen", "bind", "IncompleteReadError",
           "MessageTooLarge", "Loop", "new_event_loop", "EventLoopPolicy", "run"]
