"""``Poller``: readiness notification over epoll, with wake-ups and timers.

    with Poller() as poller:
        poller.register(sock, EVENT_READ)                 # level-triggered by default
        poller.register(other, EVENT_READ | EVENT_WRITE, edge=True)
        for event in poller.poll(timeout=1.0):            # one C++ call fills the whole batch
            if event.readable: ...
            if event.hangup or event.error: ...

Events are ``PollEvent`` objects: ``.fd``, ``.events`` (``EVENT_*`` bits plus ``EVENT_ERROR``
and ``EVENT_HANGUP``) and one boolean per bit (``readable``, ``writable``, ``priority``,
``read_closed``, ``error``, ``hangup``). They unpack like the stdlib's epoll pairs,
``for fd, events in poller.poll()``, and compare equal to ``(fd, events)`` tuples.

Modes, chosen per registration: level-triggered (default), ``edge=True`` (reported once per
change: read until ``BlockingIOError``), ``oneshot=True`` (disarmed after one report; ``modify``
re-arms it), ``exclusive=True`` (EPOLLEXCLUSIVE: when several pollers wait on one fd, only one
wakes; readable/writable interest only, not with oneshot).

``modify`` is cheap: changes are remembered and applied when ``poll`` next runs, one
``epoll_ctl`` per fd however many times it changed, none if the change was undone. A change
the kernel then refuses (the fd was closed meanwhile, or its number now belongs to another
file) comes back from that ``poll`` as an event with ``error`` set, and the registration is
*lost*: it is never put back in the kernel (that could watch the number's next owner under the
old registration), nothing more is reported for it, and every later ``modify`` of it raises
the kernel's refusal (``OSError``, ``EBADF`` or ``ENOENT``, ``filename`` ``"epoll_ctl(MOD) fd
N"``) until ``unregister`` forgets it. ``register`` and ``unregister`` act at once, so
``unregister`` then ``close`` is always safe, and a bad fd is refused by ``register`` itself.
An fd closed while registered, with no change pending, is not detected until its next
``modify`` or ``unregister`` (epoll drops such a registration without an event); until then
its number counts as registered, and ``register`` of a new file on it raises ``KeyError``.

Timers are ``Timer`` objects (timerfd on the monotonic clock): register one for
``EVENT_READ`` like any fd; it becomes readable when it expires, and ``timer.read()`` returns
how many times it has expired since the last read (and makes it unreadable again; read it
after each event)::

    with Timer(0.5, interval=0.5) as tick:
        poller.register(tick, EVENT_READ)

``wake()`` makes a blocked (or the next) ``poll`` return, from any thread.
"""

from __future__ import annotations

import selectors as _selectors
from typing import TYPE_CHECKING, Optional, Protocol, Union

from . import _core
from ._display import Closeable, html_table

__all__ = [
    "Poller",
    "PollEvent",
    "Timer",
    "EVENT_READ",
    "EVENT_WRITE",
    "EVENT_PRIORITY",
    "EVENT_READ_CLOSED",
    "EVENT_ERROR",
    "EVENT_HANGUP",
    "fileobj_to_fd",
]

EVENT_READ: int = _selectors.EVENT_READ
EVENT_WRITE: int = _selectors.EVENT_WRITE
EVENT_PRIORITY: int = 4
"""Out-of-band data (EPOLLPRI), e.g. TCP urgent data sent with ``MSG_OOB``."""
EVENT_READ_CLOSED: int = 8
"""The peer shut down its sending side (EPOLLRDHUP); also set with every hangup."""
EVENT_ERROR: int = _core.EVENT_ERROR
"""Reported, never requested: a pending error on the fd (EPOLLERR)."""
EVENT_HANGUP: int = _core.EVENT_HANGUP
"""Reported, never requested: both directions closed (EPOLLHUP)."""


PollEvent = _core.PollEvent


class HasFileno(Protocol):
    """Any object with a ``fileno()`` method (a socket, a file, a Poller): what ``register`` takes
    besides an int fd."""

    def fileno(self) -> int: ...


FileDescriptorLike = Union[int, HasFileno]


def fileobj_to_fd(fileobj: FileDescriptorLike) -> int:
    """An int fd, or ``fileobj.fileno()``; ``ValueError`` otherwise, as ``selectors`` does."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _mode(edge: bool, oneshot: bool, exclusive: bool) -> int:
    return (_core.MODE_EDGE if edge else 0) | (_core.MODE_ONESHOT if oneshot else 0) | (
        _core.MODE_EXCLUSIVE if exclusive else 0
    )


class _Resource(Closeable):
    """Notebook display for an fd-owning object with a ``_summary()``."""

    if TYPE_CHECKING:  # provided by the C++ base and the subclass

        def close(self) -> None: ...

        def _summary(self) -> list[tuple[str, object]]: ...

    def __repr__(self) -> str:
        details = ", ".join(f"{name}={value}" for name, value in self._summary())
        return f"<socketeer.{type(self).__name__} {details}>"

    def _repr_html_(self) -> str:
        return html_table(f"socketeer.{type(self).__name__}", self._summary())


class Poller(_Resource, _core.Poller):
    """An epoll instance (CLOEXEC) with a built-in waker.

    ``poll(timeout=None) -> list[PollEvent]`` is the C++ method itself: ``None`` waits until
    something is ready (or ``wake()``), a timeout <= 0 does not wait, any other timeout is
    rounded up to whole milliseconds (never a busy loop on sub-millisecond values). Wake-ups
    are not reported as events: a woken ``poll`` may return an empty list. ``len(poller)`` is
    the number of registrations. Thread safety: ``register``, ``modify``, ``unregister``,
    ``wake`` and ``close`` may be called from any thread, also while another thread polls;
    ``poll`` runs in one thread at a time (a second concurrent ``poll`` raises RuntimeError).
    After ``fork()``, the child must not use an inherited Poller: parent and child share the
    kernel's interest set. An fd closed (or its number reused) behind the Poller's back is
    never reported as its old registration: the first change of it fails with an ``error``
    event from ``poll`` and later ones raise ``OSError`` (see the module notes).
    """

    def __init__(self) -> None:
        super().__init__()

    def register(
        self, fileobj: FileDescriptorLike, events: int, *, edge: bool = False, oneshot: bool = False,
        exclusive: bool = False,
    ) -> None:
        """Starts watching ``fileobj`` (an int fd or an object with ``fileno()``).

        ``events`` is a mask of ``EVENT_READ``, ``EVENT_WRITE``, ``EVENT_PRIORITY`` and
        ``EVENT_READ_CLOSED`` (0 is allowed: only errors and hangups are then reported).
        Raises ``KeyError`` if the fd is already registered, ``ValueError`` for a bad fd,
        mask or mode combination, and ``OSError`` from the kernel (``EBADF`` for a closed fd,
        ``EPERM`` for a regular file, which epoll cannot watch).
        """
        fd = fileobj_to_fd(fileobj)
        if not self._register(fd, events, _mode(edge, oneshot, exclusive)):
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")

    def modify(
        self, fileobj: FileDescriptorLike, events: int, *, edge: Optional[bool] = None,
        oneshot: Optional[bool] = None, exclusive: Optional[bool] = None,
    ) -> None:
        """Changes the interest (and, for each mode flag given, the mode) of a registered fd.

        Mode flags left as ``None`` keep their value. Calling it with the same interest
        re-arms a oneshot registration. Applied by the next ``poll``, which reports a change
        the kernel refuses as an ``error`` event for the fd (see the module notes). Raises
        ``KeyError`` if the fd is not registered, and ``OSError`` (the kernel's refusal, with
        ``filename`` naming the ``epoll_ctl`` operation and the fd) if a refused change lost
        the registration: ``unregister`` it, then ``register`` the fd again if it is still open.
        """
        fd = fileobj_to_fd(fileobj)
        mode = None
        if edge is not None or oneshot is not None or exclusive is not None:
            current = self._registration(fd)
            if current is None:
                raise KeyError(f"{fileobj!r} is not registered")
            old = current[1]
            mode = _mode(
                bool(old & _core.MODE_EDGE) if edge is None else edge,
                bool(old & _core.MODE_ONESHOT) if oneshot is None else oneshot,
                bool(old & _core.MODE_EXCLUSIVE) if exclusive is None else exclusive,
            )
        if not self._modify(fd, events, mode):
            raise KeyError(f"{fileobj!r} is not registered")

    def unregister(self, fileobj: FileDescriptorLike) -> None:
        """Stops watching the fd, at once. Raises ``KeyError`` if it is not registered.

        Unregister before closing the fd. If the fd was closed first, this still forgets it
        quietly; but if another fd (a ``dup``, a forked child) keeps the same file open, the
        kernel keeps reporting it under the old number: such events are dropped, never
        reported for a new file that reuses the number.
        """
        fd = fileobj_to_fd(fileobj)
        if not self._unregister(fd):
            raise KeyError(f"{fileobj!r} is not registered")

    def __contains__(self, fileobj: object) -> bool:
        try:
            return self._registration(fileobj_to_fd(fileobj)) is not None  # type: ignore[arg-type]
        except ValueError:
            return False

    def _summary(self) -> list[tuple[str, object]]:
        if self.closed:
            return [("state", "closed")]
        return [("fd", self.fileno()), ("registrations", len(self))]


class Timer(_Resource, _core.Timer):
    """A timer delivered as an ordinary fd event (timerfd, CLOCK_MONOTONIC, CLOEXEC).

    ``Timer(delay, interval=None)`` expires ``delay`` seconds from now, then every
    ``interval`` seconds if one is given; ``Timer()`` starts disarmed. ``set(delay,
    interval=None)`` re-arms it (a delay <= 0 expires at once; None, or more than 1e9 s,
    never comes and leaves it disarmed), ``cancel()`` disarms it.
    The fd is readable once the timer has expired; ``read()`` returns the number of
    expirations since the last read (0 if none; it never blocks) and makes it unreadable.
    Read it after each event: level-triggered, an unread timer is reported on every poll;
    edge-triggered, its later expiries are not reported until it has been read.
    """

    def __init__(self, delay: Optional[float] = None, interval: Optional[float] = None) -> None:
        super().__init__()
        if delay is not None or interval is not None:
            first = delay if delay is not None else interval
            assert first is not None
            self.set(first, interval)

    @property
    def remaining(self) -> Optional[float]:
        """Seconds until the next expiry, or None when disarmed."""
        remaining, _ = self._setting()
        return remaining or None

    @property
    def interval(self) -> Optional[float]:
        """The period in seconds, or None for a one-shot timer."""
        _, interval = self._setting()
        return interval or None

    def _summary(self) -> list[tuple[str, object]]:
        if self.closed:
            return [("state", "closed")]
        remaining, interval = self._setting()
        rows: list[tuple[str, object]] = [("fd", self.fileno())]
        rows.append(("remaining", f"{remaining:.6f}s" if remaining else "disarmed"))
        if interval:
            rows.append(("interval", f"{interval:.6f}s"))
        return rows
