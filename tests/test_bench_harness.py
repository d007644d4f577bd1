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


# ---- issue 14's matrix: one server module per API, several event loops; the goals ----------------


def test_an_asyncio_server_runs_on_the_loop_its_entry_names() -> None:
    """One module per API, the loop chosen per entry: socketeer-loop-* pass --loop socketeer to the
    same modules the stock-loop and uvloop entries run, and that flag makes a socketeer.aio.Loop."""
    from socketeer import aio
    from socketeer.benchmark import harness
    from socketeer.benchmark.servers import common

    by_name = {server.name: server for server in harness.SERVERS}
    for api, module in (("protocol", "asyncio_protocol"), ("streams", "asyncio_streams"), ("aio", "socketeer_aio")):
        names = {"asyncio": "socketeer-aio" if api == "aio" else f"asyncio-{api}", "socketeer": f"socketeer-loop-{api}"}
        if api != "aio":
            names["uvloop"] = f"uvloop-{api}"
        for loop, name in names.items():
            argv = by_name[name].argv(Path("ref"), "tcp://127.0.0.1:0", None, 10)
            assert argv[1:3] == ["-m", f"socketeer.benchmark.servers.{module}"], argv
            assert argv[argv.index("--loop") + 1] == loop, argv
    loop = common.new_event_loop("socketeer")
    try:
        assert type(loop) is aio.Loop
    finally:
        loop.close()


def test_the_loop_servers_serve_every_transport_and_the_goals_are_judged(bench_build: Path) -> None:
    """Our loop's Protocol (UDP: DatagramProtocol), streams and aio Stream servers each answer the
    300-connection config and UDP (streams: n/a), and the report judges the goals those cells
    measure; performance is never asserted, only that every figure and verdict is there."""
    from socketeer.benchmark import goals

    report = run_harness(bench_build, "--servers", "c-reference,socketeer-loop-*,uvloop-protocol",
                         "--configs", "tcp-300x64,udp-10x64")
    rows = {(row["config"], row["server"]): row for row in report["results"]}
    for config in ("tcp-300x64", "udp-10x64"):
        for server in ("socketeer-loop-protocol", "socketeer-loop-aio", "socketeer-loop-streams"):
            row = rows[(config, server)]
            if (config, server) == ("udp-10x64", "socketeer-loop-streams"):
                assert row["status"] == "n/a (asyncio streams have no datagram API)"
                continue
            assert row["status"] == "ok" and row["rps"] > 0 and row["ratio_to_c"] > 0, row
            assert row["connections"] == (300 if config == "tcp-300x64" else 10)
    judged = {(goal["goal"], goal["config"]): goal for goal in report["goals"]}
    uvloop = rows[("udp-10x64", "uvloop-protocol")]["status"]
    assert set(judged) == {("socketeer-loop-protocol >= 1.3x uvloop-protocol", "tcp-300x64"),
                           ("socketeer-loop-protocol >= 1.0x uvloop-protocol", "udp-10x64"),
                           ("socketeer-loop-protocol >= 0.9x c-reference", "udp-10x64")}
    for goal in judged.values():
        if goal["against"] == "uvloop-protocol" and uvloop != "ok":
            assert goal["verdict"] == f"uvloop-protocol {uvloop}"
            continue
        assert goal["verdict"] in ("met", "missed") or goal["verdict"].startswith("unclear"), goal
        assert goal["ratio"] > 0 and len(goal["ratios"]) == 1
    assert report["goals_left_out"] == sum(len(goal.configs) for goal in goals.GOALS) - 3


def test_every_goal_names_a_server_and_config_the_harness_has() -> None:
    """A renamed server or config cannot silently drop a goal from the report."""
    from socketeer.benchmark import goals, harness

    assert set(goals.servers()) <= {server.name for server in harness.SERVERS}
    assert set(goals.configs()) <= {config.name for config in harness.CONFIGS}
    assert goals.servers()[0] == "c-reference"


def test_goals_are_judged_on_paired_rounds_by_their_quartiles() -> None:
    """met when the lower quartile of the per-round ratios reaches the goal, missed when the upper
    one stays below, unclear in between; a server that could not run gives its reason; cells of a
    goal the run did not pick are counted as left out."""
    from socketeer.benchmark import goals

    def rounds(*rps: float) -> list[dict]:
        return [{"rps": value} for value in rps]

    # Round 2 is slow for everyone (the host drifted): paired ratios stay near 1.35.
    runs = {("tcp-300x64", "socketeer-loop-protocol"): rounds(135.0, 68.0, 140.0),
            ("tcp-300x64", "uvloop-protocol"): rounds(100.0, 50.0, 100.0),
            ("udp-10x64", "socketeer-loop-protocol"): rounds(95.0, 80.0, 85.0),
            ("udp-10x64", "uvloop-protocol"): [],
            ("udp-10x64", "c-reference"): rounds(100.0, 100.0, 100.0),
            ("tcp-300x64", "c-reference"): rounds(100.0, 100.0, 100.0)}
    rows = [{"config": config, "server": server, "status": "ok"} for config, server in runs]
    rows[3]["status"] = "n/a (uvloop is not installed)"
    checked, left_out = goals.evaluate(rows, runs)
    judged = {(goal["goal"], goal["config"]): goal for goal in checked}
    many = judged[("socketeer-loop-protocol >= 1.3x uvloop-protocol", "tcp-300x64")]
    assert many["ratios"] == [1.35, 1.36, 1.4] and many["ratio"] == 1.36 and many["verdict"] == "met"
    udp = judged[("socketeer-loop-protocol >= 0.9x c-reference", "udp-10x64")]
    assert udp["ratio"] == 0.85 and udp["ratio_range"] == [0.825, 0.9]
    assert udp["verdict"].startswith("unclear")
    assert judged[("socketeer-loop-protocol >= 1.0x uvloop-protocol", "udp-10x64")]["verdict"] == \
        "uvloop-protocol n/a (uvloop is not installed)"
    assert len(checked) == 3 and left_out == sum(len(goal.configs) for goal in goals.GOALS) - 3
    assert goals.verdict(0.9, [0.5, 0.89]) == "missed" and goals.verdict(0.9, [0.9, 0.95]) == "met"


def test_goals_option_picks_the_matrix_the_goals_name() -> None:
    """--goals: every server and config a goal names (and the context beside them); an explicit
    --servers still wins."""
    import argparse

    from socketeer.benchmark import command, goals

    profile = command.Profile(servers="c-reference", configs="tcp-1x64", cells=command.Cells(1, 0, 1),
                              quick_servers="c-reference", quick_configs="tcp-1x64",
                              quick_cells=command.Cells(1, 0, 1))

    def parsed(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        command.add_arguments(parser, profile)
        return command.parse(parser, profile, list(argv))

    args = parsed("--goals")
    assert args.servers.split(",") == goals.servers() and args.configs.split(",") == goals.configs()
    assert {"asyncio-protocol", "uvloop-streams", "socketeer-loop-streams", "socketeer-aio"} <= set(goals.servers())
    assert {"tcp-300x64", "udp-10x64", "tcp-10x64k"} <= set(goals.configs())
    assert parsed("--goals", "--servers", "c-reference").servers == "c-reference"


def test_reading_a_servers_log_leaves_where_the_server_writes_next() -> None:
    """The harness polls a server's stdout file for its endpoint while the server writes to it
    through the same open file (one offset): reading must not move the server's next write. With
    seek(0) + readline, a newline written apart from its line (3.10's print) landed at the start
    and the load generator got an empty endpoint."""
    import os
    import tempfile

    from socketeer.benchmark.harness import written

    with tempfile.TemporaryFile() as log:
        server_stdout = os.dup(log.fileno())  # as the child's fd 1: the same open file
        try:
            os.write(server_stdout, b"tcp://127.0.0.1:9")
            assert written(log) == b"tcp://127.0.0.1:9"  # no newline yet: polled again later
            os.write(server_stdout, b"\n")
            assert written(log) == b"tcp://127.0.0.1:9\n"
            os.lseek(server_stdout, 4, os.SEEK_SET)  # wherever the writer is, reading leaves it there
            assert written(log) == b"tcp://127.0.0.1:9\n" and os.lseek(server_stdout, 0, os.SEEK_CUR) == 4
        finally:
            os.close(server_stdout)
