"""The README's code runs: each ```python block is executed as written."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from subprocess_env import ROOT, child_env

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
RUNNABLE = [block for block in BLOCKS if "def test_" not in block]  # tests need a test session (and fixtures)


def test_the_readme_has_examples() -> None:
    assert RUNNABLE, "README.md lost its runnable example"


@pytest.mark.parametrize("code", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_readme_example_runs(code: str) -> None:
    if "asyncio.Runner(" in code and sys.version_info < (3, 11):
        pytest.skip("the block uses asyncio.Runner, new in 3.11 (as it says)")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], env=child_env(), capture_output=True,
                          text=True, timeout=30, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the example prints what happened"
