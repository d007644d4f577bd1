"""The package's type hints hold: mypy checks socketeer (with its _core.pyi stubs) as users'
type checkers will see it, installed or from the source tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

from subprocess_env import child_env


def test_mypy_accepts_the_package(tmp_path) -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "-p", "socketeer"],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
