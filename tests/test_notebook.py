"""Notebook views: every socket-owning object displays in Jupyter (``_repr_html_`` and
``_repr_pretty_``), and examples/tour.ipynb runs top to bottom in a real kernel (nbclient with an
ipykernel on this interpreter) so it never rots."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import socketeer
from optional_tools import needs
from subprocess_env import ROOT, child_env

TOUR = ROOT / "examples" / "tour.ipynb"


@pytest.fixture
def live_objects(short_tmp: Path) -> Iterator[dict[str, Any]]:
    """One open instance of every class the notebook shows."""
    with socketeer.listen("tcp://127.0.0.1:0") as listener, \
            socketeer.connect(listener.endpoint, timeout=10) as stream, \
            socketeer.bind(f"unix+dgram:{short_tmp}/d.sock") as datagram, \
            socketeer.Socket() as sock, socketeer.Poller() as poller:
        server = socketeer.Server(builtin="echo")
        try:
            server.listen("tcp://127.0.0.1:0")
            yield {"Address": listener.address, "UnixAddress": datagram.address, "Socket": sock,
                   "Stream": stream, "Listener": listener, "Datagram": datagram, "Poller": poller,
                   "Server": server}
        finally:
            server.close()


def test_every_object_displays_as_html_and_pretty_text(live_objects: dict[str, Any]) -> None:
    pretty = needs("IPython.lib.pretty")
    for name, obj in live_objects.items():
        html = obj._repr_html_()
        assert html.startswith("<table>") and "</table>" in html, name
        assert pretty.pretty(obj) == repr(obj), name
    assert "ESTABLISHED" in live_objects["Stream"]._repr_html_()
    assert "LISTEN" in live_objects["Listener"]._repr_html_()


def test_closed_objects_still_display(live_objects: dict[str, Any]) -> None:
    for name in ("Socket", "Stream", "Listener", "Datagram", "Poller", "Server"):
        obj = live_objects[name]
        obj.close()
        assert "<table>" in obj._repr_html_(), name
        assert repr(obj), name


def kernel_for_this_interpreter(directory: Path) -> str:
    """A kernelspec (under ``directory``, put first on JUPYTER_PATH) running ipykernel on this
    very interpreter with the socketeer the tests import: not whatever `python3` a globally
    installed kernelspec names."""
    name = "socketeer-tests"
    spec = directory / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "socketeer tests", "language": "python",
        "env": {"PYTHONPATH": child_env()["PYTHONPATH"]},
    }))
    return name


@pytest.mark.timeout(120)
def test_tour_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = needs("nbformat")
    nbclient = needs("nbclient")
    needs("ipykernel")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns about its path migration otherwise
    kernel = kernel_for_this_interpreter(tmp_path / "jupyter")
    notebook = nbformat.read(TOUR, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "commit the notebook without outputs"

    client = nbclient.NotebookClient(notebook, timeout=60, kernel_name=kernel,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    asyncio.run(client.async_execute())  # execute() would keep its event loop (and its fds) open
    elapsed = time.monotonic() - start

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for shown in ("socketeer.Socket", "LISTEN", "ESTABLISHED", "CLOSE_WAIT", "SOCK_DGRAM", "AF_UNIX",
                  "UnixAddress", "socketeer.Stream", "socketeer.Listener", "socketeer.Datagram",
                  "socketeer.Poller", "socketeer.Server", "NetlinkAddress", "Link records", "SYN_RECV",
                  "TIME_WAIT"):
        assert shown in html, f"the tour never displays {shown}"
    assert elapsed < 20, f"the tour took {elapsed:.1f} s"
