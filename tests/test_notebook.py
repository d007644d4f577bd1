"""Notebook views: every socket-owning object displays in Jupyter (``_repr_html_`` and
``_repr_pretty_``), and examples/tour.ipynb runs top to bottom in a real kernel (nbclient with an
ipykernel on this interpreter) so it never rots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import socketeer
import tour_notebook
from optional_tools import needs
from tour_notebook import TOUR


async def _open_aio() -> tuple[Any, Any, Any, Any]:
    import socketeer.aio
    listener = await socketeer.aio.listen("tcp://127.0.0.1:0")
    stream = await socketeer.aio.connect(listener.endpoint, timeout=10)
    accepted = await listener.accept(timeout=10)
    datagram = await socketeer.aio.bind("udp://127.0.0.1:0")
    return listener, stream, accepted, datagram


@pytest.fixture
def live_objects(short_tmp: Path) -> Iterator[dict[str, Any]]:
    """One open instance of every class the notebook shows."""
    from socketeer.testing import TestServer
    with socketeer.listen("tcp://127.0.0.1:0") as listener, \
            socketeer.connect(listener.endpoint, timeout=10) as stream, \
            socketeer.bind(f"unix+dgram:{short_tmp}/d.sock") as datagram, \
            socketeer.Socket() as sock, socketeer.Poller() as poller, \
            TestServer("echo") as test_server, socketeer.FaultProxy(test_server.endpoint) as proxy:
        aio_objects = asyncio.run(_open_aio())
        server = socketeer.Server(builtin="echo")
        try:
            server.listen("tcp://127.0.0.1:0")
            yield {"Address": listener.address, "UnixAddress": datagram.address, "Socket": sock,
                   "Stream": stream, "Listener": listener, "Datagram": datagram, "Poller": poller,
                   "Server": server, "aio.Listener": aio_objects[0], "aio.Stream": aio_objects[1],
                   "aio.Datagram": aio_objects[3], "FaultProxy": proxy, "TestServer": test_server,
                   "TcpInfo": stream.socket.tcp_info(), "Endpoint": socketeer.endpoints.parse_endpoint(listener.endpoint)}
        finally:
            server.close()
            for obj in aio_objects:
                obj.close()


def test_every_object_displays_as_html_and_pretty_text(live_objects: dict[str, Any]) -> None:
    pretty = needs("IPython.lib.pretty")
    for name, obj in live_objects.items():
        html = obj._repr_html_()
        assert html.startswith("<table>") and "</table>" in html, name
        assert pretty.pretty(obj) == repr(obj), name
        assert html.count(">timeout<") <= 1, f"{name} shows two timeout rows"
    assert "ESTABLISHED" in live_objects["Stream"]._repr_html_()
    assert "ESTABLISHED" in live_objects["aio.Stream"]._repr_html_()
    assert "ESTABLISHED" in live_objects["TcpInfo"]._repr_html_()
    for name in ("Listener", "aio.Listener"):
        listener = live_objects[name]
        html = listener._repr_html_()
        assert "LISTEN" in html, name
        assert f"tcp://127.0.0.1:{listener.address.port}<" in html and ":0<" not in html, f"{name}: {html}"
    assert ">running<" in live_objects["TestServer"]._repr_html_()
    proxy = live_objects["FaultProxy"]
    proxy.set_latency(0.25)
    assert "latency=0.25" in proxy._repr_html_() and ">up<" in proxy._repr_html_()
    assert f"port</th><td style='text-align:left'><code>{live_objects['Listener'].address.port}<" \
        in live_objects["Endpoint"]._repr_html_()


def test_a_server_shows_whether_it_runs(live_objects: dict[str, Any]) -> None:
    server = live_objects["Server"]
    assert ">stopped<" in server._repr_html_() and "stopped" in repr(server)
    server.start()
    assert ">running<" in server._repr_html_() and "running" in repr(server)
    server.stop()
    assert ">stopped<" in server._repr_html_()


def test_closed_objects_still_display(live_objects: dict[str, Any]) -> None:
    for name in ("Socket", "Stream", "Listener", "Datagram", "Poller", "Server", "aio.Stream", "aio.Listener",
                 "aio.Datagram", "FaultProxy", "TestServer"):
        obj = live_objects[name]
        obj.close()
        assert "<table>" in obj._repr_html_(), name
        assert repr(obj), name


# The tour's views: what the executed notebook must show, in the committed outputs and on a re-run.
TOUR_VIEWS = ("socketeer.Socket", "LISTEN", "ESTABLISHED", "CLOSE_WAIT", "SOCK_DGRAM", "AF_UNIX", "UnixAddress",
              "socketeer.Stream", "socketeer.Listener", "socketeer.Datagram", "socketeer.Poller", "socketeer.Server",
              "NetlinkAddress", "Link records", "SYN_RECV", "TIME_WAIT", "socketeer.aio.Listener",
              "socketeer.aio.Stream")


def html_of(notebook: Any) -> str:
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)


def test_tour_notebook_is_committed_executed() -> None:
    """Readers (on GitHub too) see every view without running it: each code cell has run, in
    order, and the outputs carry no timing metadata. Refresh: python tests/tour_notebook.py."""
    nbformat = needs("nbformat")
    notebook = nbformat.read(TOUR, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), \
        "run PYTHONPATH=python python tests/tour_notebook.py and commit examples/tour.ipynb"
    assert not any("execution" in cell.metadata for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"
    html = html_of(notebook)
    for shown in TOUR_VIEWS:
        assert shown in html, f"the committed tour never displays {shown}"


@pytest.mark.timeout(120)
def test_tour_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-runs the tour in a real kernel: it still runs and shows the key views. Ports and pids
    differ from the committed outputs, so they are not compared byte for byte."""
    nbformat = needs("nbformat")
    needs("nbclient")
    needs("ipykernel")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns about its path migration otherwise
    tour_notebook.kernel_for_this_interpreter(tmp_path / "jupyter")
    notebook = nbformat.read(TOUR, as_version=4)
    for cell in notebook.cells:  # so what is checked below comes from this run
        if cell.cell_type == "code":
            cell.outputs = []

    start = time.monotonic()
    tour_notebook.execute(notebook, tmp_path)
    elapsed = time.monotonic() - start

    html = html_of(notebook)
    for shown in TOUR_VIEWS:
        assert shown in html, f"the tour never displays {shown}"
    assert elapsed < 20, f"the tour took {elapsed:.1f} s"
