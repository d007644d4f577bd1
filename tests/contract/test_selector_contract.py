"""The selectors contract, written once and run against the stdlib's EpollSelector (the oracle)
and socketeer's: same keys, same results, same exception types for every mistake."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Iterator

import pytest

import socketeer.selectors

IMPLEMENTATIONS = [selectors.EpollSelector, socketeer.selectors.EpollSelector]
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


@pytest.fixture(params=IMPLEMENTATIONS, ids=["stdlib", "socketeer"])
def selector(request) -> Iterator[selectors.BaseSelector]:
    with request.param() as sel:
        yield sel


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_is_a_base_selector_with_default_alias():
    assert issubclass(socketeer.selectors.EpollSelector, selectors.BaseSelector)
    assert socketeer.selectors.DefaultSelector is socketeer.selectors.EpollSelector


def test_register_returns_a_selector_key(selector, pair):
    a, b = pair
    key = selector.register(a, READ, "data")
    assert type(key) is selectors.SelectorKey
    assert key == selectors.SelectorKey(a, a.fileno(), READ, "data")
    assert selector.get_key(a) is key and selector.get_key(a.fileno()) is key
    mapping = selector.get_map()
    assert len(mapping) == 1 and list(mapping) == [a.fileno()]
    assert mapping[a] is key and mapping.get(a) is key and a in mapping and b not in mapping
    assert mapping.get(b, "default") == "default"
    with pytest.raises(KeyError):
        mapping[b]


def test_select_reports_ready_keys_masked_by_interest(selector, pair):
    a, b = pair
    key_a = selector.register(a, READ)
    key_b = selector.register(b, READ | WRITE, "b")
    assert selector.select(0) == [(key_b, WRITE)]
    b.send(b"x")
    assert sorted(selector.select(0), key=lambda item: item[0].fd) == sorted(
        [(key_a, READ), (key_b, WRITE)], key=lambda item: item[0].fd
    )


def test_hangup_wakes_readers_and_writers(selector, pair):
    a, b = pair
    key = selector.register(a, READ | WRITE)
    b.close()
    assert selector.select(0) == [(key, READ | WRITE)]
    selector.modify(a, READ)
    assert selector.select(0) == [(selector.get_key(a), READ)]


def test_modify_events_and_data(selector, pair):
    a, b = pair
    key = selector.register(a, READ, "one")
    same = selector.modify(a, READ, "one")
    assert same == key
    renamed = selector.modify(a, READ, "two")
    assert renamed == key._replace(data="two") and selector.get_key(a) is renamed
    writing = selector.modify(a, WRITE)
    assert writing == selectors.SelectorKey(a, a.fileno(), WRITE, None)
    assert selector.select(0) == [(writing, WRITE)]
    selector.modify(a, READ)
    assert selector.select(0) == []


def test_unregister(selector, pair):
    a, b = pair
    key = selector.register(a, READ)
    assert selector.unregister(a) is key
    assert len(selector.get_map()) == 0
    b.send(b"x")
    assert selector.select(0) == []
    with pytest.raises(KeyError):
        selector.get_key(a)
    again = selector.register(a, WRITE)  # and can be registered again
    assert selector.get_key(a) is again


def test_unregister_after_the_fd_was_closed(selector, pair):
    a, b = pair
    key = selector.register(a, READ)
    a.close()  # the socket's fileno() is now -1: found by identity
    assert selector.unregister(a) is key
    c, d = socket.socketpair()
    with d:
        fd = c.detach()
        key_int = selector.register(fd, READ)
        os.close(fd)
        assert selector.unregister(fd) is key_int  # EBADF from the kernel, swallowed


def test_unregister_after_the_fd_number_was_reused(selector, pair):
    a, b = pair
    fd = a.fileno()
    key = selector.register(fd, READ)
    a.close()
    c, d = socket.socketpair()  # c takes the lowest free number: a's
    with c, d:
        assert c.fileno() == fd
        assert selector.unregister(fd) is key
        new_key = selector.register(c, READ)
        assert new_key.fd == fd and selector.select(0) == []
        d.send(b"x")
        assert selector.select(0) == [(new_key, READ)]
        selector.unregister(c)


def test_modify_of_an_fd_closed_behind_its_back_raises_and_unregisters(selector, pair):
    """bpo-30014: the failed modify raises the kernel's error and drops the key, so the fd's next
    owner can register."""
    a, b = pair
    fd = a.fileno()
    selector.register(fd, READ)
    a.close()
    with pytest.raises(OSError) as info:
        selector.modify(fd, READ | WRITE)
    assert info.value.errno == errno.EBADF
    assert len(selector.get_map()) == 0
    with pytest.raises(KeyError):
        selector.get_key(fd)
    c, d = socket.socketpair()  # c takes the lowest free number: a's
    with c, d:
        assert c.fileno() == fd
        new_key = selector.register(c, READ)
        d.send(b"x")
        assert selector.select(0) == [(new_key, READ)]
        selector.unregister(c)


def test_modify_after_the_fd_number_was_reused_raises_and_unregisters(selector, pair):
    a, b = pair
    fd = a.fileno()
    selector.register(fd, READ)
    a.close()
    c, d = socket.socketpair()
    with c, d:
        assert c.fileno() == fd
        with pytest.raises(FileNotFoundError):  # ENOENT: the new file was never registered
            selector.modify(fd, WRITE)
        assert len(selector.get_map()) == 0
        new_key = selector.register(c, READ)
        d.send(b"x")
        assert selector.select(0) == [(new_key, READ)]
        selector.unregister(c)


def test_select_timeouts(selector):
    assert selector.select(0) == []
    assert selector.select(-1) == []  # negative: poll without waiting
    start = time.monotonic()
    assert selector.select(0.0001) == []  # rounded up to a whole millisecond
    assert time.monotonic() - start >= 0.001
    with pytest.raises((TypeError)):
        selector.select("1")
    with pytest.raises(ValueError):
        selector.select(float("nan"))


# --- mistakes: the stdlib's exception types ------------------------------------------------------


def test_register_negative_fd(selector):
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        selector.register(-1, READ)


def test_register_object_without_fileno(selector):
    with pytest.raises(ValueError, match="Invalid file object"):
        selector.register(object(), READ)

    class BadFileno:
        def fileno(self):
            return "three"

    with pytest.raises(ValueError, match="Invalid file object"):
        selector.register(BadFileno(), READ)


def test_register_closed_socket_object(selector):
    sock = socket.socket()
    sock.close()
    with pytest.raises(ValueError):
        selector.register(sock, READ)
    assert len(selector.get_map()) == 0


def test_register_closed_fd_rolls_back(selector, pair):
    fd = os.dup(pair[0].fileno())
    os.close(fd)
    with pytest.raises(OSError) as info:
        selector.register(fd, READ)
    assert info.value.errno == errno.EBADF
    assert len(selector.get_map()) == 0
    with pytest.raises(KeyError):
        selector.get_key(fd)


def test_register_regular_file_is_refused_with_eperm(selector, tmp_path):
    with open(tmp_path / "regular", "w") as regular:
        with pytest.raises(PermissionError) as info:
            selector.register(regular, READ)
        assert info.value.errno == errno.EPERM
        assert len(selector.get_map()) == 0


def test_double_register(selector, pair):
    a, _ = pair
    selector.register(a, READ)
    with pytest.raises(KeyError, match="already registered"):
        selector.register(a, WRITE)
    with pytest.raises(KeyError):
        selector.register(a.fileno(), READ)


def test_unknown_fd_on_modify_unregister_get_key(selector, pair):
    a, _ = pair
    for call in (lambda: selector.modify(a, READ), lambda: selector.unregister(a), lambda: selector.get_key(a)):
        with pytest.raises(KeyError, match="not registered"):
            call()


@pytest.mark.parametrize("events", [0, 4, 8, -1, READ | WRITE | 4])
def test_invalid_event_masks(selector, pair, events):
    with pytest.raises(ValueError, match="Invalid events"):
        selector.register(pair[0], events)
    assert len(selector.get_map()) == 0


def test_non_integer_event_mask(selector, pair):
    with pytest.raises(TypeError):
        selector.register(pair[0], "1")
    key = selector.register(pair[0], READ)
    with pytest.raises(TypeError):
        selector.modify(pair[0], "1")
    assert selector.get_key(pair[0]) is key


def test_using_a_closed_selector(pair):
    a, b = pair
    for cls in IMPLEMENTATIONS:
        sel = cls()
        sel.register(a, READ)
        sel.close()
        sel.close()  # idempotent
        assert sel.get_map() is None
        with pytest.raises(RuntimeError, match="Selector is closed"):
            sel.get_key(a)
        with pytest.raises(ValueError):
            sel.select(0)
        with pytest.raises(ValueError):
            sel.register(b, READ)
        with pytest.raises(KeyError):
            sel.unregister(a)
        with pytest.raises(KeyError):
            sel.modify(a, WRITE)
        with pytest.raises(ValueError):
            sel.fileno()


def test_fileno_is_the_epoll_fd(selector):
    fd = selector.fileno()
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]"
