"""The documentation: every public name has a docstring, and docs/ builds with Sphinx with
warnings as errors (nitpicky: every cross-reference resolves), its examples run as doctests."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import socketeer
from optional_tools import needs
from subprocess_env import ROOT, child_env

DOCS = ROOT / "docs"
SUBMODULES = ("aio", "framing", "selectors", "netlink", "testing")  # documented, with their own __all__


def described(doc: str | None, name: str) -> bool:
    """Whether a docstring says something beyond a signature: the one pybind11 writes for every
    binding (``bind(self: socketeer._core.Socket, address: handle) -> None``, "Overloaded
    function."), or one a C method's docstring starts with (``recv(bufsize, flags=0) -> bytes``)."""
    if not doc:
        return False
    signature = re.compile(rf"\s*(\d+\. )?{re.escape(name)}\(.*\)( -> .*)?$")
    text = [line for line in doc.splitlines()
            if line.strip() and not signature.match(line) and line.strip() != "Overloaded function."]
    return bool(text)


def public_names() -> Iterator[tuple[str, Any]]:
    """(qualified name, object) of every public function, class and module: socketeer.__all__ and
    the __all__ of its documented submodules."""
    seen: set[int] = set()
    modules: list[types.ModuleType] = [socketeer] + [getattr(socketeer, name) for name in SUBMODULES]
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.ismodule(obj) or inspect.isroutine(obj)) or id(obj) in seen:
                continue  # data: constants, sentinels (testing.CLOSE), type aliases (AnyAddress)
            seen.add(id(obj))
            yield f"{module.__name__}.{name}", obj


def public_members(cls: type) -> Iterator[tuple[str, Any]]:
    """(name, raw attribute) of the public methods and properties a socketeer class defines or
    inherits from socketeer's own classes. A method overriding a documented one (EpollSelector's
    of BaseSelector) inherits its docstring, as help() and the docs show it."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((base for base in cls.__mro__ if name in vars(base)), None)
        if owner is None or not owner.__module__.startswith("socketeer"):
            continue
        raw = vars(owner)[name]
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if callable(raw) or isinstance(raw, (property, types.GetSetDescriptorType)) or hasattr(raw, "fget"):
            yield name, raw


def undocumented() -> list[str]:
    missing = []
    for qualified, obj in public_names():
        if not described(inspect.getdoc(obj), qualified.rsplit(".", 1)[1]):
            missing.append(qualified)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for name, raw in public_members(obj):
                doc = getattr(raw, "__doc__", None) if isinstance(raw, property) else inspect.getdoc(getattr(obj, name))
                if not described(doc, name):
                    missing.append(f"{qualified}.{name}")
    return missing


def test_every_public_name_and_method_has_a_docstring() -> None:
    assert undocumented() == []


def test_the_docstring_check_sees_through_pybind11_signatures() -> None:
    assert not described("bind(self: socketeer._core.Socket, address: handle) -> None\n", "bind")
    assert not described("Overloaded function.\n\n1. f(x: int) -> None\n\n2. f(x: str) -> None", "f")
    assert not described(None, "f")
    assert described("send(data, flags=0) -> int\n\nSends what fits now.", "send")
    assert described("recvfrom(bufsize) -> (bytes, address)\n\nOne datagram.", "recvfrom")
    # text on the signature's line is read as its return type (by Sphinx too): not a description
    assert not described("send(data) -> bool: queues data", "send")
    names = dict(public_names())
    assert "socketeer.Socket" in names and "socketeer.netlink.links" in names
    assert "bind" in dict(public_members(socketeer.Socket))  # the C++ methods are checked too


def sphinx_build(builder: str, out: Path, doctrees: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", builder, "-d", str(doctrees),
         str(DOCS), str(out)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=240)


@pytest.mark.timeout(300)
def test_the_docs_build_without_warnings_and_their_examples_run(tmp_path: Path) -> None:
    needs("sphinx")
    needs("myst_parser")
    html = sphinx_build("html", tmp_path / "html", tmp_path / "doctrees")
    assert html.returncode == 0, html.stderr
    assert not html.stderr.strip(), html.stderr  # -q: nothing but warnings goes to stderr
    for page in ("tutorial", "api/sockets", "fixtures", "cli", "benchmarks"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page
    pages = (tmp_path / "html").rglob("*.html")
    text = "\n".join(page.read_text() for page in pages)
    for shown in ("socketeer echo", "socketeer_fault_proxy", "socketeer_netns_pair", "Gives the socket its local address",
                  "NetlinkAddress", "PacketAddress", "FaultProxy", "EpollSelector", "x C"):
        assert shown in text, f"the docs never show {shown!r}"

    doctest = sphinx_build("doctest", tmp_path / "doctest", tmp_path / "doctrees")
    report = (tmp_path / "doctest" / "output.txt").read_text()
    assert doctest.returncode == 0, report + doctest.stderr
    ran = re.search(r"^\s*(\d+) tests?\b", report.split("Doctest summary", 1)[1], re.M)
    assert ran and int(ran.group(1)) >= 30, report  # the tutorial's examples did run
    assert "0 failures in tests" in report, report
