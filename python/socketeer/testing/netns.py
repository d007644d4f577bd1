"""Network namespaces for tests: a fresh namespace with its own loopback, two namespaces joined by
a veth pair (optionally with ``tc netem`` loss and delay), and ways to run code inside them.

A network namespace belongs to a *thread*, not a process: ``setns`` moves only the calling thread,
and threads it starts afterwards inherit its namespace. A socket stays in the namespace it was
created in wherever it is used from, so a server started inside ``ns.entered()`` (its socket bound
and its C++ threads started there) keeps serving inside the namespace after the block ends.

Needs root (CAP_SYS_ADMIN) and iproute2's ``ip`` to name namespaces under /run/netns (``ip netns
add/delete``) and ``tc`` for netem; links and addresses are set up with socketeer.netlink, imported
(with the C++ extension) only when a namespace is made.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional, TypeVar

__all__ = ["NetNamespace", "NetnsPair", "NetnsUnavailable", "netns_unavailable_reason"]

CLONE_NEWNET = 0x40000000
T = TypeVar("T")
_counter = itertools.count()


class NetnsUnavailable(RuntimeError):
    """Namespaces (or netem) cannot be made here: not root, no ``ip``, or the kernel said no."""


def netns_unavailable_reason() -> Optional[str]:
    """Why this process cannot make network namespaces, or None if it probably can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN); running as uid %d" % os.geteuid()
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's 'ip' program, which is not installed"
    return None


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), "setns")


@contextlib.contextmanager
def _netlink(what: str) -> Iterator[Any]:
    """socketeer.netlink, its refusals as NetnsUnavailable (the fixtures skip on it)."""
    from .. import netlink
    try:
        yield netlink
    except OSError as error:
        raise NetnsUnavailable(f"{what} failed: {error}") from error


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NetnsUnavailable(f"'ip {' '.join(args)}' failed: {result.stderr.strip() or result.returncode}")
    return result


class NetNamespace:
    """A network namespace this test made (``ip netns add``), loopback up; ``delete()`` removes it.

    >>> ns.run(["ip", "addr"])                  # a program inside it (``ip netns exec``)
    >>> ns.call(socket.gethostname)             # a callable in a thread that entered it
    >>> with ns.entered(): server = Server(...) # this thread, for the block
    """

    def __init__(self, name: Optional[str] = None):
        self.name = name or f"socketeer-{os.getpid()}-{next(_counter)}-{secrets.token_hex(2)}"
        self.path = f"/run/netns/{self.name}"
        self._processes: list[subprocess.Popen[Any]] = []
        _ip("netns", "add", self.name)
        self._deleted = False
        try:
            with _netlink("bringing lo up") as netlink:
                netlink.set_link("lo", up=True, netns=self.name)
        except BaseException:
            self.delete()
            raise

    # --- running inside it -------------------------------------------------------------------

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """subprocess.run inside the namespace (timeout defaults to 60 s)."""
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.command(args), **kwargs)

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """subprocess.Popen inside the namespace; killed and reaped by delete() if still running."""
        process = subprocess.Popen(self.command(args), **kwargs)
        self._processes.append(process)
        return process

    @contextlib.contextmanager
    def entered(self) -> Iterator["NetNamespace"]:
        """Moves the *calling thread* into the namespace for the block, then back. Sockets made
        and threads started inside the block stay in the namespace."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(self.path, os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield self
            finally:
                _setns(home)
        finally:
            os.close(home)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs ``function(*args, **kwargs)`` in a new thread inside the namespace and returns
        its result (or raises its exception). The calling thread never changes namespace."""
        outcome: dict[str, Any] = {}

        def body() -> None:
            try:
                with self.entered():
                    outcome["result"] = function(*args, **kwargs)
            except BaseException as error:  # handed to the caller
                outcome["error"] = error

        thread = threading.Thread(target=body, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    # --- teardown ----------------------------------------------------------------------------

    def delete(self) -> None:
        """Kills what popen() started, then deletes the namespace (and its interfaces). Idempotent."""
        if self._deleted:
            return
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._processes = []
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=30)
        self._deleted = True

    @property
    def exists(self) -> bool:
        """Whether the namespace is still there (its /run/netns file)."""
        return os.path.exists(self.path)

    def __enter__(self) -> "NetNamespace":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.delete()

    def __repr__(self) -> str:
        return f"<socketeer.testing.NetNamespace {self.name}{' (deleted)' if self._deleted else ''}>"


class NetnsPair:
    """Two fresh namespaces ``a`` and ``b`` joined by a veth pair, ``veth0`` in each, with
    ``address_a`` / ``address_b`` (10.201.0.1 and .2, /24) that exist only inside them: traffic
    between them never reaches any other network. ``netem()`` adds loss, delay, duplication."""

    INTERFACE = "veth0"

    def __init__(self, address_a: str = "10.201.0.1", address_b: str = "10.201.0.2", prefix: int = 24):
        self.address_a, self.address_b = address_a, address_b
        self.a = NetNamespace()
        try:
            self.b = NetNamespace()
        except BaseException:
            self.a.delete()
            raise
        try:
            with _netlink("joining the namespaces by a veth pair") as netlink:
                # Created straight inside the namespaces: the names never appear in the host's.
                netlink.add_veth(self.INTERFACE, self.INTERFACE, peer_netns=self.b.name, netns=self.a.name)
                for ns, address in ((self.a, address_a), (self.b, address_b)):
                    netlink.add_address(self.INTERFACE, address, prefix, netns=ns.name)
                    netlink.set_link(self.INTERFACE, up=True, netns=ns.name)
        except BaseException:
            self.delete()
            raise

    def netem(self, *, delay: float = 0.0, jitter: float = 0.0, loss: float = 0.0, duplicate: float = 0.0,
              side: str = "both") -> None:
        """Replaces the egress qdisc of ``veth0`` in namespace a, b or both with netem: ``delay``
        and ``jitter`` in seconds, ``loss`` and ``duplicate`` as probabilities (0..1). Raises
        NetnsUnavailable if the kernel has no netem (sch_netem)."""
        if side not in ("a", "b", "both"):
            raise ValueError(f"side must be 'a', 'b' or 'both', not {side!r}")
        for probability, name in ((loss, "loss"), (duplicate, "duplicate")):
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], not {probability}")
        spec = ["delay", f"{delay * 1e6:.0f}us"] + ([f"{jitter * 1e6:.0f}us"] if jitter else [])
        spec += ["loss", f"{loss * 100:g}%", "duplicate", f"{duplicate * 100:g}%"]
        for ns in (self.a, self.b) if side == "both" else ((self.a,) if side == "a" else (self.b,)):
            try:
                _tc(ns.name, ["qdisc", "replace", "dev", self.INTERFACE, "root", "netem", *spec])
            except NetnsUnavailable as error:
                raise NetnsUnavailable(f"tc netem is not available in this kernel (sch_netem): {error}") from None

    def delete(self) -> None:
        """Deletes both namespaces (the veth pair goes with them). Idempotent."""
        self.a.delete()
        if hasattr(self, "b"):
            self.b.delete()

    def __repr__(self) -> str:
        return f"<socketeer.testing.NetnsPair {self.a.name} {self.address_a} <-> {self.b.name} {self.address_b}>"


def _tc(namespace: str, args: list[str]) -> None:
    result = subprocess.run(["tc", "-n", namespace, *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NetnsUnavailable(f"'tc {' '.join(args)}' failed: {result.stderr.strip() or result.returncode}")
