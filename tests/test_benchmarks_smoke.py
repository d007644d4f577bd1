"""The benchmarks still run (a few iterations, no timing checked: that is for people to read)."""

from __future__ import annotations

import json
import subprocess
import sys

from subprocess_env import ROOT, child_env

BENCH_CALLS = str(ROOT / "benchmarks" / "bench_calls.py")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error", BENCH_CALLS, *args], env=child_env(),
                          capture_output=True, text=True, timeout=30)


def test_bench_calls_prints_a_table() -> None:
    result = run("--iterations", "20", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    for row in ("send+recv_into 64 B, socketpair", "sendto+recvfrom 64 B, UDP 127.0.0.1", "getsockname", "fileno"):
        assert row in result.stdout
    assert "ratio" in result.stdout


def test_bench_calls_json() -> None:
    result = run("--iterations", "20", "--repeats", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["case"].split(",")[0] for r in report["results"]] == [
        "send+recv_into 64 B", "sendto+recvfrom 64 B", "getsockname", "fileno"]
    for r in report["results"]:
        assert r["stdlib_ns"] >= 0 and r["socketeer_ns"] >= 0
        assert r["ratio"] is None or r["ratio"] >= 0  # None: too few calls to time


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error", str(ROOT / "benchmarks" / name), *args], env=child_env(),
                          capture_output=True, text=True, timeout=60)


def test_bench_proxy_reports_throughput_and_latency() -> None:
    result = run_script("bench_proxy.py", "--megabytes", "2", "--round-trips", "20", "--repeats", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["proxy_bps"] > 0 and report["direct_bps"] > 0
    assert report["proxy_rtt"] > 0 and report["direct_rtt"] > 0


def test_bench_poller_prints_ratios() -> None:
    result = run_script("bench_poller.py", "--repeats", "1", "--sizes", "10")
    assert result.returncode == 0, result.stderr
    assert "Poller.poll" in result.stdout and "x the stdlib" in result.stdout


def test_bench_streams_reports_every_case() -> None:
    result = run_script("bench_streams.py", "--repeats", "1", "--messages", "20", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["case"] for r in report["results"]] == ["lines", "messages", "aio lines", "aio messages"]
    for r in report["results"]:
        assert r["stdlib_ns"] > 0 and r["socketeer_ns"] > 0 and r["ratio"] > 0


def test_stress_reports_every_workload() -> None:
    result = run_script("stress.py", "--connections", "20", "--max-size", "2048", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [w["workload"] for w in report["workloads"]] == [
        "server-echo", "server-handler", "listener-serve", "aio-serve", "fault-proxy"]
    for w in report["workloads"]:
        assert (w["outcome"]["connections"], w["outcome"]["intact"], w["outcome"]["lost_bytes"]) == (20, 20, 0)
        assert w["fds_leaked"] == 0 and w["peak_rss_mib"] > 0


def test_bench_sockets_reports_socketeer_first() -> None:
    result = run_script("bench_sockets.py", "--sockets", "20", "--repeats", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sockets_opened"] == 21 and report["tcp_sockets_listed"] >= 21
    assert report["results"][0]["case"] == "socketeer.sockets(tcp_info=True)"
    assert all(r["median_s"] > 0 for r in report["results"])


def test_bench_loop_calls_compares_the_three_loops() -> None:
    result = run_script("bench_loop_calls.py", "--callbacks", "50", "--repeats", "1", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["results"]
    assert [row["case"] for row in rows] == ["call_soon chain", "call_soon batch", "call_soon_threadsafe",
                                              "timers fire", "timer chain", "timers cancelled"]
    assert all(row["socketeer_per_s"] > 0 and row["stock_per_s"] > 0 for row in rows)
