"""One real application on every loop of aio_loops.LOOPS, socketeer.aio.Loop among them: an
unmodified aiohttp web server, fetched from by aiohttp's client and by curl, over 127.0.0.1 only.
aiohttp is in the test extra: skipped where it is not installed, a failure in CI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from aio_loops import run_on
from optional_tools import needs
from subprocess_env import peer_env

aiohttp = needs("aiohttp")
web = needs("aiohttp.web")

pytestmark = pytest.mark.timeout(60)

BIG = os.urandom(1 << 20)  # 1 MiB, both ways


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[str, list[tuple[str, int]]]]:
    """An aiohttp app on 127.0.0.1: (its base URL, the client address of each request served)."""
    peers: list[tuple[str, int]] = []

    async def hello(request):
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(text=f"hello {request.query.get('n', '')}")

    async def big(request):
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def digest(request):
        peers.append(request.transport.get_extra_info("peername"))
        body = await request.read()
        return web.json_response({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})

    app = web.Application(client_max_size=2 << 20)
    app.router.add_get("/hello", hello)
    app.router.add_get("/big", big)
    app.router.add_post("/digest", digest)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}", peers
    finally:
        await runner.cleanup()


def test_aiohttp_server_and_client(loop_kind):
    """Requests of every size on one keep-alive connection, then a second session's own."""

    async def main():
        async with serving() as (url, peers):
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as session:
                for n in range(3):
                    async with session.get(f"{url}/hello", params={"n": str(n)}) as response:
                        assert response.status == 200 and await response.text() == f"hello {n}"
                async with session.get(f"{url}/big") as response:
                    assert response.status == 200 and await response.read() == BIG
                async with session.post(f"{url}/digest", data=BIG) as response:
                    assert await response.json() == {"size": len(BIG), "sha256": hashlib.sha256(BIG).hexdigest()}
            assert len(peers) == 5 and len(set(peers)) == 1  # kept alive: one connection for all
            async with aiohttp.ClientSession() as session, session.get(f"{url}/hello") as response:
                assert await response.text() == "hello "
            assert len(set(peers)) == 2
            return True

    assert run_on(loop_kind, main)


def test_curl_fetches_from_aiohttp(loop_kind, needs_tool, tmp_path):
    """curl, a real peer, run as the loop's subprocess: two URLs on one kept-alive connection, the
    second a 1 MiB body, then a 1 MiB upload."""
    curl = needs_tool("curl")

    async def fetch(*args: str) -> bytes:
        child = await asyncio.create_subprocess_exec(curl, "--silent", "--show-error", "--fail", "--max-time", "10",
                                                     *args, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.PIPE, env=peer_env())
        try:
            out, err = await child.communicate()
        finally:  # cancelled (the run's bound): no curl outlives the test (uvloop's close waits for it)
            if child.returncode is None:
                child.kill()
                await child.wait()
        assert child.returncode == 0, err
        return out

    async def main():
        async with serving() as (url, peers):
            assert await fetch(f"{url}/hello?n=curl", f"{url}/big") == b"hello curl" + BIG
            assert len(peers) == 2 and peers[0] == peers[1]  # curl kept the connection for the second
            (tmp_path / "big").write_bytes(BIG)
            digest = await fetch("--data-binary", f"@{tmp_path / 'big'}", f"{url}/digest")
            assert json.loads(digest) == {"size": len(BIG), "sha256": hashlib.sha256(BIG).hexdigest()}
            return True

    assert run_on(loop_kind, main)
