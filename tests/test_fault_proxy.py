"""socketeer.FaultProxy with real peers on both sides: no SIGPIPE whatever the clients do. (The
schedule's arithmetic is unit-tested in cpp/tests/test_fault_schedule.cpp; the pytest fixture
is tested in test_plugin.py.)"""

from __future__ import annotations

from subprocess_env import run_with_sigpipe_at_default

# --- never SIGPIPE ----------------------------------------------------------------------------

def test_clients_resetting_mid_stream_never_kill_the_process_with_sigpipe():
    """The proxy's zero-copy path (splice, which has no MSG_NOSIGNAL) writes into a client that
    has reset: EPIPE, and a SIGPIPE for the proxy's thread, which must not end the process. (A
    reset after the client's FIN is reported as EPIPE rather than ECONNRESET by the first write.)"""
    done = run_with_sigpipe_at_default("""
        import socketeer
        echo = socketeer.Server(builtin="echo")
        echo.listen("tcp://127.0.0.1:0")
        payload = bytes(256 * 1024)
        with echo, socketeer.FaultProxy(echo.endpoint()) as proxy:
            for round in range(40):
                with socketeer.connect(proxy.endpoint, timeout=10) as client:
                    client.send_all(payload)
                    if round % 2:
                        client.close_write()   # FIN first: the proxy's side is in CLOSE_WAIT
                    client.recv_exactly(1024)  # the echo is flowing back through the splice path
                    client.abort()             # RST while the proxy still has echo to write
            with socketeer.connect(proxy.endpoint, timeout=10) as client:  # still serving
                client.send_all(b"ping")
                assert client.recv_exactly(4) == b"ping"
        print("alive")
    """)
    assert (done.returncode, done.stdout) == (0, "alive\n"), done.stderr
