"""2,000 concurrent connections through each serving engine, every one with a random payload whose
echo must have the same sha256, checked at the server too wherever Python sees the bytes: Server
(built-in echo, and a Python handler), Listener.serve, socketeer.aio Listener.serve, and FaultProxy
slicing into 1000-byte pieces with 5 ms latency. All of them open at once (the fd limit's soft
value raised to the hard one for the test, if the machine allows fewer: as many as fit).

The workloads and the clients are benchmarks/stress.py's, which runs them at 10,000 connections
and prints what these tests assert: nothing lost, nothing corrupted, no fd left open."""

from __future__ import annotations

import importlib.util
import random
import sys

import pytest

from subprocess_env import ROOT

_spec = importlib.util.spec_from_file_location("benchmarks_stress", ROOT / "benchmarks" / "stress.py")
assert _spec is not None and _spec.loader is not None
stress = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = stress  # its dataclasses look their module up there
_spec.loader.exec_module(stress)

CONNECTIONS = 2000
MAX_SIZE = 16 * 1024


@pytest.mark.timeout(150)
@pytest.mark.parametrize("workload", list(stress.WORKLOADS))
def test_every_byte_comes_back_intact(workload: str) -> None:
    seed = random.randrange(1 << 32)
    report = stress.run_workload(workload, CONNECTIONS, MAX_SIZE, seed, timeout=120)
    outcome = report.outcome
    seen = f"seed {seed}, {outcome.error_count} error(s), first: {outcome.errors}"
    assert outcome.peak_open == report.wave, seen  # all open at once (unless fds ran short)
    assert (outcome.connections, outcome.intact) == (CONNECTIONS, CONNECTIONS), seen
    assert (outcome.lost_bytes, outcome.corrupted, outcome.error_count) == (0, 0, 0), seen
    assert report.server_mismatches in (None, 0), seen
    assert report.fds_leaked == 0
