"""Running socketeer programs (examples, the CLI, benchmarks) and real peers (curl) as subprocesses
from the tests.

The child must import the same socketeer the tests import: pip-installed in CI, or the source
tree via PYTHONPATH in development. Putting the directory that holds the imported package first
on the child's PYTHONPATH gives it that one in both cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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


def peer_env() -> dict[str, str]:
    """The environment for a real peer program a test starts (curl, socat): this one without the
    AddressSanitizer runtime CI's sanitized run preloads. The peer is not what that run checks,
    and curl hangs at start-up with the runtime preloaded (beyond its own --max-time)."""
    env = dict(os.environ)
    kept = [lib for lib in env.pop("LD_PRELOAD", "").split() if "/libasan.so" not in lib
            and "/libstdc++.so" not in lib]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    return env


def run_with_sigpipe_at_default(body: str) -> "subprocess.CompletedProcess[str]":
    """Runs the Python code `body` in a child whose SIGPIPE is at its default action (death).
    Python sets SIG_IGN at start-up, so the child restores SIG_DFL before anything else, as a
    C program embedding Python (or a process started with SIGPIPE at its default) has it."""
    code = "import signal\nsignal.signal(signal.SIGPIPE, signal.SIG_DFL)\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60)
