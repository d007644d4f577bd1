"""Testing RetryingClient (retrying_client.py) against a real server through socketeer's fault
proxy: latency, resets, early closes, slices and a black hole, each with what the client must do.

Needs only `pip install socketeer`: the fixtures come from its pytest plugin.

    pytest examples/retrying_client/
"""

from __future__ import annotations

import time

import pytest

from socketeer.framing import lines

from retrying_client import RequestFailed, RetryingClient

VALUES = {b"GET colour": b"blue\n", b"GET shape": b"a rather long description of a round shape\n"}


@pytest.fixture
def kv_server(socketeer_server):
    """A key-value server in socketeer's C++ reactor: one request line in, one reply line out."""
    return socketeer_server("scripted", "tcp", script=lambda line: VALUES.get(line, b"ERR unknown\n"),
                            framing=lines())


@pytest.fixture
def proxy(socketeer_fault_proxy, kv_server):
    return socketeer_fault_proxy(kv_server)


def clear_faults(proxy):
    """An on_retry hook: the fault lasts for the first attempt only."""
    return lambda attempt, error: proxy.clear()


def test_plain_request_uses_one_connection(proxy) -> None:
    with RetryingClient(proxy.endpoint, timeout=2.0) as client:
        assert client.request("GET colour") == "blue"
        assert client.request("GET nothing") == "ERR unknown"
        assert client.connections == 1


def test_latency_within_the_timeout_only_slows_it_down(proxy) -> None:
    proxy.set_latency(0.05)  # each way
    with RetryingClient(proxy.endpoint, timeout=2.0) as client:
        started = time.monotonic()
        assert client.request("GET colour") == "blue"
        assert time.monotonic() - started >= 0.1
        assert client.connections == 1


def test_latency_beyond_the_timeout_fails_every_attempt_in_bounded_time(proxy) -> None:
    proxy.set_latency(0.5)
    with RetryingClient(proxy.endpoint, timeout=0.2, attempts=3, backoff=0) as client:
        started = time.monotonic()
        with pytest.raises(RequestFailed) as failed:
            client.request("GET colour")
        assert time.monotonic() - started < 1.5  # 3 attempts of 0.2 s, not 3 of 1 s
    assert [type(error) for error in failed.value.errors] == [TimeoutError] * 3


def test_a_reset_mid_reply_is_retried_on_a_new_connection(proxy) -> None:
    proxy.reset_after(10, direction="downstream")  # the reply is cut after 10 bytes
    with RetryingClient(proxy.endpoint, timeout=2.0, backoff=0, on_retry=clear_faults(proxy)) as client:
        assert client.request("GET shape") == VALUES[b"GET shape"][:-1].decode()
        assert client.connections == 2


def test_resets_on_every_attempt_raise_with_each_error(proxy) -> None:
    proxy.reset_after(0, direction="downstream")
    with RetryingClient(proxy.endpoint, timeout=2.0, attempts=2, backoff=0) as client:
        with pytest.raises(RequestFailed) as failed:
            client.request("GET colour")
    assert len(failed.value.errors) == 2
    assert all(isinstance(error, ConnectionError) for error in failed.value.errors), failed.value


def test_a_close_mid_reply_is_not_taken_for_a_reply(proxy) -> None:
    proxy.close_after(3, direction="downstream")
    with RetryingClient(proxy.endpoint, timeout=2.0, backoff=0, on_retry=clear_faults(proxy)) as client:
        assert client.request("GET colour") == "blue"  # never "blu"
        assert client.connections == 2


def test_slices_in_both_directions_still_make_whole_lines(proxy, kv_server) -> None:
    proxy.slice(1, 0.001)  # one byte at a time, 1 ms apart, each way
    with RetryingClient(proxy.endpoint, timeout=5.0) as client:
        assert client.request("GET shape") == VALUES[b"GET shape"][:-1].decode()
        assert client.connections == 1
    assert kv_server.received == [b"GET shape"]  # the server saw one whole line


def test_a_black_hole_times_out_every_attempt(proxy) -> None:
    proxy.black_hole(True)
    with RetryingClient(proxy.endpoint, timeout=0.2, attempts=2, backoff=0) as client:
        with pytest.raises(RequestFailed) as failed:
            client.request("GET colour")
    assert [type(error) for error in failed.value.errors] == [TimeoutError] * 2
