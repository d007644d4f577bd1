"""socketeer.Poller and socketeer.Timer: events, modes, coalesced changes, wake-ups, timers,
threads, and every bad-input path. Peers are stdlib sockets (loopback and unix only)."""

from __future__ import annotations

import errno
import math
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import socketeer
from socketeer import EVENT_PRIORITY, EVENT_READ, EVENT_READ_CLOSED, EVENT_WRITE, Poller, Timer
from socketeer.poller import EVENT_ERROR, EVENT_HANGUP, PollEvent


@pytest.fixture
def poller() -> Iterator[Poller]:
    with Poller() as p:
        yield p


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def only(events: list[PollEvent], fd: int) -> int:
    """The events mask poll() reported for fd (0 if none)."""
    return next((event.events for event in events if event.fd == fd), 0)


def wait_for(poller: Poller, fd: int, timeout: float = 10.0) -> PollEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in poller.poll(deadline - time.monotonic()):
            if event.fd == fd:
                return event
    raise AssertionError(f"no event for fd {fd}")


# --- constants and the event object --------------------------------------------------------------


def test_constants_match_selectors_and_are_distinct_bits():
    assert EVENT_READ == selectors.EVENT_READ
    assert EVENT_WRITE == selectors.EVENT_WRITE
    bits = [EVENT_READ, EVENT_WRITE, EVENT_PRIORITY, EVENT_READ_CLOSED, EVENT_ERROR, EVENT_HANGUP]
    assert all(bit & (bit - 1) == 0 for bit in bits)
    assert len(set(bits)) == len(bits)
    assert socketeer.Poller is Poller and socketeer.Timer is Timer


def test_event_object_shape(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ | EVENT_WRITE)
    b.send(b"x")
    [event] = poller.poll(0)
    assert isinstance(event, PollEvent)
    assert (event.fd, event.events) == (a.fileno(), EVENT_READ | EVENT_WRITE)
    assert event.readable and event.writable
    assert not (event.priority or event.read_closed or event.error or event.hangup)
    fd, events = event  # unpacks like the stdlib's (fd, events) pairs
    assert (fd, events) == tuple(event) == (a.fileno(), 3)
    assert event == (a.fileno(), 3) and event != (a.fileno(), 1)
    assert hash(event) == hash((a.fileno(), 3))
    assert repr(event) == f"PollEvent(fd={a.fileno()}, events=3: readable|writable)"
    assert len(event) == 2
    with pytest.raises(IndexError):
        event[2]
    match event:
        case PollEvent(fd, events):
            assert fd == a.fileno()


# --- registration and modes ----------------------------------------------------------------------


def test_level_triggered_reports_until_drained(poller, pair):
    a, b = pair
    poller.register(a.fileno(), EVENT_READ)  # an int works as well as a file object
    assert poller.poll(0) == []
    b.send(b"x")
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    a.recv(1)
    assert poller.poll(0) == []
    assert len(poller) == 1 and a in poller and b not in poller and "nonsense" not in poller


def test_edge_triggered_reports_each_arrival_once(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ, edge=True)
    b.send(b"x")
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    assert poller.poll(0) == []  # not drained, but no new edge
    b.send(b"y")
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]


def test_oneshot_is_rearmed_by_modify(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ, oneshot=True)
    b.send(b"x")
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    assert poller.poll(0) == []
    poller.modify(a, EVENT_READ)  # same interest, mode kept: re-armed
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    poller.modify(a, EVENT_READ, oneshot=False)  # now level-triggered
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]


def test_modify_keeps_or_changes_each_mode_flag(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ, edge=True, oneshot=True)
    poller.modify(a, EVENT_WRITE, oneshot=False)
    assert poller._registration(a.fileno()) == (EVENT_WRITE, socketeer._core.MODE_EDGE)
    poller.modify(a, EVENT_READ)
    assert poller._registration(a.fileno()) == (EVENT_READ, socketeer._core.MODE_EDGE)


def test_exclusive_registration(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ, exclusive=True)
    b.send(b"x")
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    poller.modify(a, EVENT_WRITE)  # EPOLL_CTL_MOD cannot touch exclusive entries: DEL + ADD
    assert poller.poll(0) == [(a.fileno(), EVENT_WRITE)]
    poller.modify(a, EVENT_READ, exclusive=False, edge=True)
    assert poller.poll(0) == [(a.fileno(), EVENT_READ)]
    assert poller.poll(0) == []


def test_changes_are_coalesced_until_poll(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ)
    b.send(b"x")
    for events in (EVENT_WRITE, EVENT_READ | EVENT_WRITE, EVENT_WRITE):
        poller.modify(a, events)
    assert poller.poll(0) == [(a.fileno(), EVENT_WRITE)]


def test_modify_of_a_closed_fd_comes_back_as_an_error_event(poller, pair):
    a, b = pair
    fd = a.fileno()
    poller.register(fd, EVENT_READ)
    a.close()
    poller.modify(fd, EVENT_WRITE)  # deferred: cannot raise here
    assert poller.poll(0) == [(fd, EVENT_ERROR)]
    poller.unregister(fd)  # and it can still be forgotten


def next_owner(number: int) -> tuple[socket.socket, socket.socket]:
    """A new connected pair whose first socket holds fd ``number`` (closed just before): the
    number's next owner, on the number itself whatever else the process has open."""
    new, peer = socket.socketpair()
    if new.fileno() == number:  # the lowest free number, as usual
        return new, peer
    os.dup2(new.fileno(), number, inheritable=False)
    new.close()
    return socket.socket(fileno=number), peer


def test_a_failed_change_never_registers_the_fds_next_owner(poller, pair):
    a, b = pair
    fd = a.fileno()
    poller.register(fd, EVENT_READ)
    a.close()  # behind the poller's back
    owner, peer = next_owner(fd)
    with owner, peer:
        peer.send(b"x")  # the next owner is readable and writable: any registration of it would show
        poller.modify(fd, EVENT_WRITE)  # deferred: the kernel refuses it (ENOENT) in poll()
        assert poller.poll(0) == [(fd, EVENT_ERROR)]
        with pytest.raises(FileNotFoundError) as info:  # lost for good: never an epoll_ctl(ADD)
            poller.modify(fd, EVENT_READ | EVENT_WRITE)
        assert info.value.errno == errno.ENOENT and info.value.filename == f"epoll_ctl(MOD) fd {fd}"
        with pytest.raises(FileNotFoundError):
            poller.modify(fd, EVENT_READ, edge=True)
        assert poller.poll(0) == []  # the next owner is never reported as the old registration
        with pytest.raises(KeyError, match="already registered"):
            poller.register(owner, EVENT_READ)  # the lost registration holds the number until...
        poller.unregister(fd)  # ...it is forgotten
        poller.register(owner, EVENT_READ)
        assert poller.poll(0) == [(fd, EVENT_READ)]
        poller.unregister(owner)


def test_an_exclusive_change_never_registers_the_fds_next_owner(poller, pair):
    a, b = pair
    fd = a.fileno()
    poller.register(fd, EVENT_READ, exclusive=True)
    a.close()
    owner, peer = next_owner(fd)
    with owner, peer:
        peer.send(b"x")
        poller.modify(fd, EVENT_READ, exclusive=False)  # DEL + ADD: the DEL finds nothing of ours
        assert poller.poll(0) == [(fd, EVENT_ERROR)]
        with pytest.raises(FileNotFoundError, match=rf"epoll_ctl\(DEL\) fd {fd}"):
            poller.modify(fd, EVENT_READ)
        assert poller.poll(0) == []
        poller.unregister(fd)


def test_a_lost_registration_reports_nothing_after_its_error(poller, pair):
    a, b = pair
    fd = a.fileno()
    poller.register(fd, EVENT_READ)
    keep = os.dup(fd)  # the file, and so its registration in the kernel, outlives the number
    try:
        a.close()
        poller.modify(fd, EVENT_READ | EVENT_WRITE)
        assert poller.poll(0) == [(fd, EVENT_ERROR)]  # EBADF: the number is closed
        b.send(b"x")  # the old file turns readable, and the kernel still holds its registration
        assert poller.poll(0) == []
        with pytest.raises(OSError) as info:
            poller.modify(fd, EVENT_READ)
        assert info.value.errno == errno.EBADF and info.value.filename == f"epoll_ctl(MOD) fd {fd}"
        poller.unregister(fd)
    finally:
        os.close(keep)


def test_priority_read_closed_hangup_and_error(poller):
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            poller.register(peer, EVENT_PRIORITY | EVENT_READ_CLOSED)
            client.send(b"!", socket.MSG_OOB)
            assert wait_for(poller, peer.fileno()).priority
            peer.recv(1, socket.MSG_OOB)
            client.shutdown(socket.SHUT_WR)
            event = wait_for(poller, peer.fileno())
            assert event.read_closed and not event.hangup
            poller.unregister(peer)
        port = server.getsockname()[1]
    refused = socket.socket()
    with refused:
        refused.setblocking(False)
        poller.register(refused, EVENT_WRITE)
        assert refused.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
        event = wait_for(poller, refused.fileno())
        assert event.error and event.hangup and event.read_closed
        poller.unregister(refused)


def test_hangup_is_reported_without_interest(poller, pair):
    a, b = pair
    poller.register(a, 0)
    assert poller.poll(0) == []
    b.close()
    [event] = poller.poll(0)
    assert event.hangup and event.read_closed and event.readable is False


def test_unregister_after_close_and_stale_registrations(poller, pair):
    a, b = pair
    fd = a.fileno()
    poller.register(fd, EVENT_READ)
    keep = os.dup(fd)  # the open file description, and so its registration, lives on
    try:
        a.close()
        poller.unregister(fd)  # EBADF from the kernel, forgotten quietly
        b.send(b"x")  # the lost registration is readable under the old number
        reused = os.eventfd(0) if hasattr(os, "eventfd") else os.dup(b.fileno())
        try:
            assert reused == fd
            poller.register(reused, EVENT_READ)
            assert poller.poll(0) == []  # nothing from the old file under the reused number
        finally:
            poller.unregister(reused)
            os.close(reused)
    finally:
        os.close(keep)


# --- bad input -----------------------------------------------------------------------------------


def test_bad_file_objects(poller, pair, tmp_path):
    a, b = pair
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        poller.register(-1, EVENT_READ)
    with pytest.raises(ValueError, match="Invalid file object"):
        poller.register(object(), EVENT_READ)
    with pytest.raises(ValueError, match="Invalid file object"):
        poller.register("3", EVENT_READ)
    closed = socket.socket()
    closed.close()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        poller.register(closed, EVENT_READ)
    fd = os.dup(a.fileno())
    os.close(fd)
    with pytest.raises(OSError) as info:
        poller.register(fd, EVENT_READ)
    assert info.value.errno == errno.EBADF
    with open(tmp_path / "regular", "w") as regular:
        with pytest.raises(PermissionError) as info:
            poller.register(regular, EVENT_READ)
    assert info.value.errno == errno.EPERM
    assert len(poller) == 0


def test_bad_masks_and_modes(poller, pair):
    a, b = pair
    for events in (16, 32, 64, -1, 1 << 40):
        with pytest.raises((ValueError, OverflowError)):
            poller.register(a, events)
    with pytest.raises(TypeError):
        poller.register(a, "1")
    with pytest.raises(ValueError, match="oneshot"):
        poller.register(a, EVENT_READ, exclusive=True, oneshot=True)
    with pytest.raises(ValueError, match="exclusive"):
        poller.register(a, EVENT_PRIORITY, exclusive=True)
    assert len(poller) == 0
    poller.register(a, EVENT_READ)
    with pytest.raises(ValueError):
        poller.modify(a, 64)
    with pytest.raises(ValueError):
        poller.modify(a, EVENT_READ_CLOSED, exclusive=True)
    assert poller._registration(a.fileno()) == (EVENT_READ, 0)


def test_registration_key_errors(poller, pair):
    a, b = pair
    poller.register(a, EVENT_READ)
    with pytest.raises(KeyError, match="already registered"):
        poller.register(a.fileno(), EVENT_WRITE)
    for call in (lambda: poller.modify(b, EVENT_READ), lambda: poller.modify(b, EVENT_READ, edge=True),
                 lambda: poller.unregister(b)):
        with pytest.raises(KeyError, match="not registered"):
            call()
    poller.unregister(a)
    with pytest.raises(KeyError):
        poller.unregister(a)


def test_bad_timeouts(poller):
    with pytest.raises(ValueError):
        poller.poll(math.nan)
    with pytest.raises(TypeError):
        poller.poll("1")
    with pytest.raises(TypeError):
        poller.poll(1, 2)
    with pytest.raises(TypeError):
        poller.poll(timeout=1, other=2)


def test_closed_poller(pair):
    a, b = pair
    poller = Poller()
    poller.register(a, EVENT_READ)
    poller.close()
    poller.close()  # idempotent
    assert poller.closed and len(poller) == 0
    assert repr(poller) == "<socketeer.Poller state=closed>"
    for call in (lambda: poller.poll(0), lambda: poller.register(b, EVENT_READ), lambda: poller.modify(a, EVENT_READ),
                 lambda: poller.unregister(a), poller.wake, poller.fileno):
        with pytest.raises(ValueError, match="closed poller"):
            call()


# --- timeouts, wake-ups, threads, signals --------------------------------------------------------


def test_timeouts_follow_selectors(poller):
    start = time.monotonic()
    assert poller.poll(0) == [] and poller.poll(-5) == []  # <= 0: no wait
    assert poller.poll(0.0001) == []  # rounded up to 1 ms, not a busy zero
    assert time.monotonic() - start >= 0.001


def test_wake_before_poll_makes_it_return(poller):
    poller.wake()
    assert poller.poll(None) == []


def test_wake_from_other_threads_while_polling(poller):
    for _ in range(50):
        waker = threading.Thread(target=poller.wake)
        waker.start()
        assert poller.poll(None) == []
        waker.join()


def test_poll_releases_the_gil_and_is_woken_from_the_main_thread(poller):
    returned = threading.Event()

    def polling():
        poller.poll(None)
        returned.set()

    thread = threading.Thread(target=polling)
    thread.start()
    counted = sum(1 for _ in range(100_000))  # runs while the other thread blocks in epoll_wait
    assert counted == 100_000
    while not returned.is_set():
        poller.wake()
        returned.wait(0.01)
    thread.join()


def test_unregister_and_close_from_another_thread_while_polling(poller):
    stop = threading.Event()
    seen: list[PollEvent] = []
    errors: list[BaseException] = []

    def loop():
        try:
            while not stop.is_set():
                seen.extend(poller.poll(None))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=loop)
    thread.start()
    for _ in range(50):
        a, b = socket.socketpair()
        poller.register(a, EVENT_READ)

        def unregister_and_close():
            poller.unregister(a)
            a.close()

        closer = threading.Thread(target=unregister_and_close)
        closer.start()
        closer.join()
        b.close()
    stop.set()
    poller.wake()
    thread.join()
    assert errors == [] and len(poller) == 0


def test_close_from_another_thread_ends_a_blocked_poll():
    poller = Poller()
    result: list[object] = []

    def polling():
        try:
            while True:
                result.append(poller.poll(None))
        except ValueError as error:
            result.append(error)

    thread = threading.Thread(target=polling)
    thread.start()
    poller.close()
    thread.join()
    assert isinstance(result[-1], ValueError)


def test_only_one_thread_polls_at_a_time(poller):
    stop = threading.Event()

    def polling():
        while not stop.is_set():
            try:
                poller.poll(None)
            except RuntimeError:  # the main thread got in first this time
                pass

    thread = threading.Thread(target=polling)
    thread.start()
    try:
        while True:
            try:
                poller.poll(0)
            except RuntimeError as error:
                assert "already running" in str(error)
                break
    finally:
        stop.set()
        poller.wake()
        thread.join()


def test_signal_handlers_run_during_poll(poller):
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        sender = threading.Thread(target=signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGUSR1))
        with pytest.raises(Interrupted):
            sender.start()
            poller.poll(None)
        sender.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)


# --- timers --------------------------------------------------------------------------------------


def test_one_shot_timer(poller):
    with Timer(0.005) as timer:
        assert 0 < timer.remaining <= 0.005 and timer.interval is None
        poller.register(timer, EVENT_READ)
        assert wait_for(poller, timer.fileno()).readable
        assert timer.read() == 1
        assert timer.read() == 0 and timer.remaining is None
        assert poller.poll(0) == []
        poller.unregister(timer)


def test_periodic_timer(poller):
    with Timer(interval=0.002) as timer:
        assert timer.interval == pytest.approx(0.002)
        poller.register(timer, EVENT_READ)
        expirations = 0
        while expirations < 3:
            wait_for(poller, timer.fileno())
            expirations += timer.read()
        timer.cancel()
        assert timer.remaining is None and timer.read() == 0
        poller.unregister(timer)


def test_edge_triggered_timer_reports_again_after_a_read(poller):
    with Timer(interval=0.001) as timer:
        poller.register(timer, EVENT_READ, edge=True)
        wait_for(poller, timer.fileno())
        assert poller.poll(0.005) == []  # expired again meanwhile, but no new edge unread
        assert timer.read() >= 2
        wait_for(poller, timer.fileno())
        poller.unregister(timer)


def test_timer_rearm_and_immediate_expiry(poller):
    with Timer() as timer:
        assert timer.remaining is None and timer.read() == 0
        assert "disarmed" in repr(timer) and "disarmed" in timer._repr_html_()
        timer.set(3600)
        assert timer.remaining > 3500 and "remaining=" in repr(timer)
        timer.set(-1)  # already due
        poller.register(timer, EVENT_READ)
        wait_for(poller, timer.fileno())
        assert timer.read() == 1
        poller.unregister(timer)


def test_timer_bad_input():
    with Timer() as timer:
        with pytest.raises(ValueError):
            timer.set(1, -1)
        with pytest.raises(ValueError):
            timer.set(math.nan)
        timer.set(1e12)  # beyond 1e9 s: never comes, as every time in seconds (tests/test_timeouts.py)
        assert timer.remaining is None
        with pytest.raises(TypeError):
            timer.set("1")
    assert timer.closed and repr(timer) == "<socketeer.Timer state=closed>"
    for call in (timer.read, timer.cancel, lambda: timer.set(1), lambda: timer.remaining):
        with pytest.raises(ValueError, match="closed timer"):
            call()


def fd_kind(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # listdir's own fd, closed by now
        return ""


def test_every_fd_is_cloexec(poller):
    with Timer():
        kinds = {fd: fd_kind(fd) for fd in map(int, os.listdir("/proc/self/fd"))}
        ours = [fd for fd, kind in kinds.items() if kind.endswith(("[eventpoll]", "[eventfd]", "[timerfd]"))]
        assert sorted(kinds[fd] for fd in ours) == ["anon_inode:[eventfd]", "anon_inode:[eventpoll]",
                                                    "anon_inode:[timerfd]"]
        assert not any(os.get_inheritable(fd) for fd in ours)


# --- display -------------------------------------------------------------------------------------


def test_repr_and_html(poller, pair):
    poller.register(pair[0], EVENT_READ)
    assert repr(poller) == f"<socketeer.Poller fd={poller.fileno()}, registrations=1>"
    html = poller._repr_html_()
    assert "socketeer.Poller" in html and f"<code>{poller.fileno()}</code>" in html


# --- socketeer.selectors.EpollSelector specifics (the shared contract is in tests/contract) -----


def test_selector_modify_is_applied_at_once_and_the_poller_modify_stays_deferred(pair):
    """The selector raises a failed change from modify() itself (the stdlib's contract, in
    tests/contract); the Poller's own modify() still defers it to poll() (coalescing)."""
    from socketeer.selectors import EpollSelector

    a, b = pair
    with EpollSelector() as selector, socketeer.Poller() as poller:
        fd = os.dup(a.fileno())
        selector.register(fd, EVENT_READ)
        poller.register(fd, EVENT_READ)
        os.close(fd)
        poller.modify(fd, EVENT_WRITE)  # deferred: cannot raise here
        with pytest.raises(OSError, match=f"epoll_ctl\\(MOD\\) fd {fd}") as info:
            selector.modify(fd, EVENT_WRITE)
        assert info.value.errno == errno.EBADF
        assert "keys=0" in repr(selector)
        assert poller.poll(0) == [(fd, EVENT_ERROR)]
        poller.unregister(fd)
    assert repr(selector) == "<socketeer.selectors.EpollSelector closed>"
