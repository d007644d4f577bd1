"""Factory fixtures that say they are factories.

``socketeer_server`` and ``socketeer_fault_proxy`` hand a test a callable that makes servers (or
proxies), not a server: a test that writes ``socketeer_server.endpoint`` has forgotten the call.
A bare function would answer "'function' object has no attribute 'endpoint'"; a ``Factory``
answers with what to write instead, and closes what it made when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Factory"]


class _Closeable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=_Closeable)


class Factory(Generic[T]):
    """A fixture's factory: ``fixture(...)`` makes a ``T``; each one made is closed by
    :meth:`close_all` (the fixture's teardown), newest first.

    Any attribute that is not the factory's own raises AttributeError naming the mistake:
    ``socketeer_server is a factory: call socketeer_server(...) to get a TestServer``.
    """

    __slots__ = ("_fixture", "_made", "_make", "_product")

    def __init__(self, fixture: str, product: str, make: Callable[..., T]):
        self._fixture = fixture
        self._product = product
        self._make = make
        self._made: list[T] = []

    def __call__(self, *args: Any, **options: Any) -> T:
        made = self._make(*args, **options)
        self._made.append(made)
        return made

    @property
    def made(self) -> list[T]:
        """What this factory made so far, oldest first (a copy)."""
        return list(self._made)

    def close_all(self) -> None:
        """Closes everything made, newest first (the fixture's teardown)."""
        while self._made:
            self._made.pop().close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle, pytest and IPython probing for protocols
            raise AttributeError(name)
        raise AttributeError(
            f"{self._fixture} is a factory: call {self._fixture}(...) to get a {self._product}, "
            f"and use .{name} on that")

    def __repr__(self) -> str:
        return f"<{self._fixture}: factory of {self._product} objects; {len(self._made)} made>"
