"""The benchmark harness works end to end: benchmarks/run.py builds the load generator and the C
reference, starts servers, measures and reports sane JSON. Performance is never asserted here
(the host is shared and noisy); only that the numbers exist and hang together."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from subprocess_env import ROOT, child_env

RUN_PY = ROOT / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """socketeer-loadgen and echo-reference, built once for this module in a private directory."""
    import shutil

    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (pip install '.[bench]')")
    build_dir = tmp_path_factory.mktemp("bench-build")
    done = subprocess.run([sys.executable, str(RUN_PY), "--build-only", "--build-dir", str(build_dir)],
                          env=child_env(), capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stdout + done.stderr
    return build_dir


def run_harness(build_dir: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(RUN_PY), "--quick", "--repeats", "1", "--duration", "0.2",
                           "--warmup", "0.05", "--json", "--quiet", "--build-dir", str(build_dir), *args],
                          env=child_env(), capture_output=True, text=True, timeout=40)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_quick_run_reports_every_figure(bench_build: Path) -> None:
    report = run_harness(bench_build, "--servers", "c-reference,asyncio-protocol", "--configs", "tcp-10x64")
    assert report["meta"]["repeats"] == 1
    rows = {row["server"]: row for row in report["results"]}
    assert set(rows) == {"c-reference", "asyncio-protocol"}
    for row in rows.values():
        assert row["status"] == "ok", row
        assert (row["config"], row["transport"], row["connections"], row["size"]) == ("tcp-10x64", "tcp", 10, 64)
        assert row["runs"] == 1 and row["rps"] > 0 and row["mib_per_s"] > 0
        assert row["errors"] == 0
        assert 0 < row["p50_us"] <= row["p99_us"]
        assert row["cpu_us_per_req"] is not None and row["cpu_us_per_req"] >= 0
        assert row["user_us_per_req"] + row["sys_us_per_req"] == pytest.approx(row["cpu_us_per_req"], abs=0.01)
    assert rows["c-reference"]["ratio_to_c"] == 1.0
    assert rows["asyncio-protocol"]["ratio_to_c"] > 0


def test_a_server_that_cannot_run_is_reported_not_fatal(bench_build: Path) -> None:
    report = run_harness(bench_build, "--servers", "c-reference,asyncio-streams", "--configs", "udp-10x64")
    rows = {row["server"]: row for row in report["results"]}
    assert rows["c-reference"]["status"] == "ok"
    assert rows["c-reference"]["lost"] >= 0
    assert rows["asyncio-streams"]["status"] == "n/a (asyncio streams have no datagram API)"
    assert rows["asyncio-streams"]["rps"] is None and rows["asyncio-streams"]["ratio_to_c"] is None


def test_udp_load_generator_counts_losses_instead_of_hanging(bench_build: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:  # bound, never answers
        black_hole.bind(("127.0.0.1", 0))
        port = black_hole.getsockname()[1]
        done = subprocess.run([str(bench_build / "socketeer-loadgen"), f"udp://127.0.0.1:{port}", "--connections", "2",
                               "--duration", "0.3", "--warmup", "0", "--loss-timeout-ms", "20", "--window", "4",
                               "--json"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 1, done.stderr  # 1: it ran, but nothing came back
    result = json.loads(done.stdout)
    assert result["requests"] == 0
    assert result["udp"]["window"] == 4 and result["udp"]["lost"] > 0


def test_c_reference_echoes_a_large_stream_intact(bench_build: Path, short_tmp: Path) -> None:
    """1 MiB through the reference while the client reads slowly: its partial-write path runs."""
    path = short_tmp / "echo.sock"
    server = subprocess.Popen([str(bench_build / "echo-reference"), f"unix:{path}", "--lifetime", "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == f"unix:{path}"
        payload = bytes(range(256)) * 4096
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(20)
            client.connect(str(path))
            sender = threading.Thread(target=client.sendall, args=(payload,))
            sender.start()
            received = bytearray()
            while len(received) < len(payload):
                chunk = client.recv(4096)
                assert chunk, "the reference closed early"
                received += chunk
            sender.join(timeout=20)
        assert received == payload
    finally:
        server.kill()
        server.wait(timeout=10)
        server.stdout.close()


VALGRIND_AND_ASAN = "valgrind cannot run a program with AddressSanitizer's runtime preloaded"


@pytest.mark.not_under_asan(VALGRIND_AND_ASAN)
@pytest.mark.timeout(180)  # three servers started under valgrind
def test_instructions_counts_per_request(bench_build: Path) -> None:
    """benchmarks/instructions.py: callgrind's count per request for two servers, side by side,
    and the reason a third cannot serve this config."""
    import shutil

    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "instructions.py"),
                           "--servers", "c-reference,socketeer-builtin,socketeer-streams", "--configs", "udp-10x64",
                           "--duration", "0.3", "--warmup", "0.1", "--top", "3", "--build-dir", str(bench_build)],
                          env=child_env(), capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[1]: line.split() for line in done.stdout.splitlines() if line.startswith("udp-10x64")}
    assert set(rows) == {"c-reference", "socketeer-builtin", "socketeer-streams"}, done.stdout
    # A server that cannot serve UDP says why, though valgrind's summary comes after its words.
    assert " ".join(rows["socketeer-streams"][2:]).startswith("n/a: line framing is for byte streams"), done.stdout
    assert float(rows["c-reference"][2]) > 0 and rows["c-reference"][3] == "1.0x"
    assert float(rows["socketeer-builtin"][2]) > 0 and rows["socketeer-builtin"][3].endswith("x")


# Load generators that fail: the Nth run prints OUTCOMES[N] (JSON on stdout, or "fail": an error on
# stderr and status 2). The first run is the warm-up.
FAILING_LOADGEN = """#!/bin/sh
n=$(cat "$0.runs" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$0.runs"
outcome=$(echo "$OUTCOMES" | cut -d' ' -f$n)
if [ "$outcome" = fail ]; then echo 'socketeer-loadgen: send: Operation not permitted' >&2; exit 2; fi
echo "{\\"requests\\": $outcome, \\"errors\\": 0}"
"""


@pytest.mark.not_under_asan(VALGRIND_AND_ASAN)
@pytest.mark.timeout(120)  # the C reference started under valgrind, three times
@pytest.mark.parametrize("outcomes, expected", [
    ("fail", "{'error': 'warm-up: socketeer-loadgen: send: Operation not permitted'}"),
    ("0 fail fail", "{'error': 'socketeer-loadgen: send: Operation not permitted'}"),
    ("0 fail 1000", "requests 1000"),
], ids=["warm-up fails", "window fails twice", "window fails once"])
def test_instructions_reports_why_the_load_generator_failed(bench_build: Path, tmp_path: Path, outcomes: str,
                                                            expected: str) -> None:
    """A load generator that dies makes a row with its stderr, not a traceback; a measured window
    that fails once is measured again, and the retry is said on stderr."""
    import shutil

    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    loadgen = tmp_path / "failing-loadgen"
    loadgen.write_text(FAILING_LOADGEN)
    loadgen.chmod(0o755)
    script = (
        "import argparse, sys, tempfile\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "import instructions, run\n"
        "server = run.pick(run.SERVERS, 'c-reference', 'server')[0]\n"
        "config = run.pick(run.CONFIGS, 'udp-10x64', 'config')[0]\n"
        "args = argparse.Namespace(warmup=0.1, duration=0.1, top=0)\n"
        "with tempfile.TemporaryDirectory() as workdir:\n"
        "    result = instructions.count(server, config, Path(sys.argv[1]), Path(sys.argv[2]), Path(workdir), args)\n"
        "print(result if 'error' in result else f\"requests {result['requests']}\")\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(loadgen), str(bench_build / "echo-reference")],
                          env={**child_env(), "OUTCOMES": outcomes}, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
    runs = len(outcomes.split())
    assert (tmp_path / "failing-loadgen.runs").read_text().strip() == str(runs)
    retries = done.stderr.count("instructions.py: c-reference udp-10x64: socketeer-loadgen: send: Operation not")
    assert retries == outcomes.count("fail") - (outcomes == "fail")


def test_ratios_to_c_are_paired_by_round() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", RUN_PY)
    run = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = run  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(run)
    finally:
        del sys.modules[spec.name]
    # The host slowed down between rounds (C: 100, 300, 200 req/s); the server under test lost
    # half its speed in round 2 only, and its round 4 failed (no pair).
    runs = {("cfg", "c-reference"): [{"rps": 100.0}, {"rps": 300.0}, {"rps": 200.0}, {"rps": 250.0}],
            ("cfg", "x"): [{"rps": 90.0}, {"rps": 150.0}, {"rps": 190.0}, {"error": "died"}]}
    rows = [{"config": "cfg", "server": "c-reference"}, {"config": "cfg", "server": "x"}]
    run.add_ratios(rows, runs)
    assert rows[0]["ratio_to_c"] == 1.0 and rows[0]["ratio_range"] == [1.0, 1.0]
    assert rows[1]["ratios_to_c"] == [0.5, 0.9, 0.95]
    assert rows[1]["ratio_to_c"] == 0.9  # the ratio of the medians would say 150 / 225 = 0.67
    assert rows[1]["ratio_range"] == [0.7, 0.925]
