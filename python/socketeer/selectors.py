"""``EpollSelector``: a complete ``selectors.BaseSelector`` over socketeer's C++ poller.

Drop-in for ``selectors.EpollSelector`` (and so for ``selectors.DefaultSelector`` on Linux)::

    loop = asyncio.SelectorEventLoop(EpollSelector())

Keys are real ``selectors.SelectorKey`` tuples and the stdlib's rules hold: ``register``
validates the mask and rolls back when the kernel refuses the fd (``EPERM`` for a regular file,
``EBADF`` for a closed one), ``unregister`` works after the fd was closed, timeouts <= 0 poll
without waiting and others are rounded up to whole milliseconds. ``select`` runs in C++: one
``epoll_wait`` with the GIL released, then one pass that looks each fd up and builds the
``(key, events)`` pairs.

``modify`` changes the kernel's registration at once, as the stdlib's does (one ``epoll_ctl``;
the Poller's own ``modify`` defers and coalesces instead, see cpp/src/sys/linux/poller_epoll.cpp):
a ``modify`` of an fd closed behind the selector's back raises the kernel's error (``EBADF``, or
``ENOENT`` once the number names another file) and unregisters the key, so the fd's next owner
can register it (bpo-30014).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from selectors import EVENT_READ, EVENT_WRITE, BaseSelector, SelectorKey
from typing import Any, Optional

from . import _core
from .poller import FileDescriptorLike, fileobj_to_fd

__all__ = ["EpollSelector", "DefaultSelector", "SelectorKey", "EVENT_READ", "EVENT_WRITE"]


class _SelectorMapping(Mapping[FileDescriptorLike, SelectorKey]):
    """The read-only fileobj -> SelectorKey view that ``get_map()`` returns."""

    def __init__(self, selector: EpollSelector) -> None:
        self._selector = selector

    def __len__(self) -> int:
        return len(self._selector._fd_to_key)

    def get(self, fileobj: Any, default: Any = None) -> Any:
        fd = self._selector._fileobj_lookup(fileobj)
        return self._selector._fd_to_key.get(fd, default)

    def __getitem__(self, fileobj: Any) -> SelectorKey:
        fd = self._selector._fileobj_lookup(fileobj)
        key = self._selector._fd_to_key.get(fd)
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        return key

    def __iter__(self) -> Iterator[int]:
        return iter(self._selector._fd_to_key)


class EpollSelector(BaseSelector):
    """``selectors.EpollSelector`` semantics over socketeer's epoll Poller."""

    def __init__(self) -> None:
        self._poller = _core.Poller()
        self._fd_to_key: dict[int, SelectorKey] = {}
        self._map: Optional[_SelectorMapping] = _SelectorMapping(self)

    def _fileobj_lookup(self, fileobj: Any) -> int:
        """The fd of fileobj; for a closed file object still registered, the fd it had."""
        try:
            return fileobj_to_fd(fileobj)
        except ValueError:
            for key in self._fd_to_key.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    def register(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> SelectorKey:
        """Watches ``fileobj`` (an fd or an object with ``fileno()``) for ``events``
        (``EVENT_READ | EVENT_WRITE``); returns its SelectorKey, which carries ``data``.
        ValueError for other events, KeyError if it is registered already."""
        if (not events) or (events & ~(EVENT_READ | EVENT_WRITE)):
            raise ValueError(f"Invalid events: {events!r}")
        key = SelectorKey(fileobj, self._fileobj_lookup(fileobj), events, data)
        if key.fd in self._fd_to_key:
            raise KeyError(f"{fileobj!r} (FD {key.fd}) is already registered")
        # The kernel first: if it refuses the fd, nothing was recorded, so nothing to roll back.
        if not self._poller._register(key.fd, events, 0):
            raise KeyError(f"{fileobj!r} (FD {key.fd}) is already registered")
        self._fd_to_key[key.fd] = key
        return key

    def unregister(self, fileobj: FileDescriptorLike) -> SelectorKey:
        try:
            key = self._fd_to_key.pop(self._fileobj_lookup(fileobj))
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        try:
            self._poller._unregister(key.fd)
        except OSError:  # as the stdlib: the fd may be gone already
            pass
        return key

    def modify(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> SelectorKey:
        try:
            key = self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        changed = False
        if events != key.events:
            interest = events & (EVENT_READ | EVENT_WRITE)  # a bad mask raises here, keeping the key
            try:
                self._poller._modify(key.fd, interest, None, True)
            except BaseException:  # as the stdlib's: a key whose change failed must not linger
                self.unregister(fileobj)
                raise
            changed = True
        if changed or data != key.data:
            key = key._replace(events=events, data=data)
            self._fd_to_key[key.fd] = key
        return key

    def select(self, timeout: Optional[float] = None) -> list[tuple[SelectorKey, int]]:
        """Waits until a registered file is ready, at most ``timeout`` seconds (None: no limit, 0
        or less: do not wait), and returns ``(key, events)`` for each ready one."""
        return self._poller._select(self._fd_to_key, timeout)

    def get_key(self, fileobj: FileDescriptorLike) -> SelectorKey:
        if self._map is None:
            raise RuntimeError("Selector is closed")
        try:
            return self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def get_map(self) -> Optional[Mapping[FileDescriptorLike, SelectorKey]]:  # type: ignore[override]  # None once closed, as the stdlib's
        return self._map

    def fileno(self) -> int:
        """The epoll fd (as selectors.EpollSelector.fileno)."""
        return self._poller.fileno()

    def close(self) -> None:
        self._poller.close()
        self._fd_to_key.clear()
        self._map = None

    def __repr__(self) -> str:
        if self._map is None:
            return "<socketeer.selectors.EpollSelector closed>"
        return f"<socketeer.selectors.EpollSelector fd={self.fileno()} keys={len(self._fd_to_key)}>"


DefaultSelector = EpollSelector
