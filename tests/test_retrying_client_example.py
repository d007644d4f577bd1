"""examples/retrying_client/: the program runs, and its pytest file (a user's tests of their own
client through the fault proxy) passes in a sub-pytest that gets the fixtures from the plugin."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import socketeer

from subprocess_env import ROOT, child_env

pytest_plugins = ["pytester"]

EXAMPLE = ROOT / "examples" / "retrying_client"


def test_the_example_program_runs() -> None:
    result = subprocess.run([sys.executable, "-W", "error", str(EXAMPLE / "retrying_client.py")], env=child_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "GET colour -> blue" in result.stdout and "1 connection(s) for 2 requests" in result.stdout


def test_the_example_tests_pass_through_the_fault_proxy(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # what else is installed cannot change it
    for name in ("retrying_client.py", "test_retrying_client.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    pytester.makeini("""
        [pytest]
        addopts = --strict-markers --strict-config
        filterwarnings = error
    """)
    result = pytester.runpytest_subprocess("-p", "socketeer.testing.plugin", "-p", "no:cacheprovider", "-rs",
                                           timeout=45)
    if not hasattr(socketeer, "FaultProxy"):
        result.assert_outcomes(skipped=8)
        return
    result.assert_outcomes(passed=8)
