"""Running socketeer programs (examples, the CLI, benchmarks) as subprocesses from the tests.

The child must import the same socketeer the tests import: pip-installed in CI, or the source
tree via PYTHONPATH in development. Putting the directory that holds the imported package first
on the child's PYTHONPATH gives it that one in both cases.
"""

from __future__ import annotations

import os
from pathlib import Path

import socketeer

ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """os.environ with the imported socketeer's parent directory first on PYTHONPATH."""
    package_parent = str(Path(os.path.abspath(socketeer.__file__)).parent.parent)
    env = dict(os.environ)
    paths = [package_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != package_parent]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env
