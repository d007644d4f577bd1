"""The two C programs every benchmark runs: ``socketeer-loadgen`` (the load generator) and
``echo-reference`` (the plain C epoll echo server every req/s is a ratio to).

The wheel carries both, built by CMake next to the extension and installed into
``socketeer/bin/`` (see CMakeLists.txt). A source checkout without an installed package (the
extension built in place, ``PYTHONPATH=python``) builds them with CMake + Ninja into
``build/bench/`` on first use, as ``benchmarks/run.py`` always does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["LOADGEN", "REFERENCE_PROGRAM", "Tools", "ToolsError", "installed_dir", "installed", "checkout_root",
           "build", "find"]

LOADGEN = "socketeer-loadgen"
REFERENCE_PROGRAM = "echo-reference"


class ToolsError(RuntimeError):
    """The load generator or the C reference is missing and cannot be built; the message is one
    line saying which and what to do."""


@dataclass(frozen=True)
class Tools:
    loadgen: Path
    reference: Path


def installed_dir() -> Path:
    """Where an installed socketeer keeps the programs: the package's ``bin/``."""
    return Path(__file__).resolve().parent.parent / "bin"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def installed() -> Optional[Tools]:
    """The installed programs, or None when neither is there (a source tree); a half-present
    install raises ToolsError naming the missing one."""
    where = installed_dir()
    tools = Tools(where / LOADGEN, where / REFERENCE_PROGRAM)
    present = [_executable(tools.loadgen), _executable(tools.reference)]
    if all(present):
        return tools
    if any(present) or where.is_dir():
        missing = tools.loadgen if not present[0] else tools.reference
        raise ToolsError(f"{missing.name} is missing from this install ({missing} is not an executable file); "
                         "reinstall socketeer: pip install --force-reinstall socketeer")
    return None


def checkout_root() -> Optional[Path]:
    """The source tree this package was imported from (python/socketeer/ in a checkout), or None."""
    root = Path(__file__).resolve().parents[3]
    if (root / "CMakeLists.txt").is_file() and (root / "benchmarks" / "loadgen.cpp").is_file():
        return root
    return None


def build(root: Path, build_dir: Path, *, verbose: bool = False) -> Tools:
    """Configure (once) and build socketeer-loadgen and echo-reference (and syscall-costs, so that
    it keeps compiling) from the source tree ``root`` into ``build_dir``."""
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    if not cmake or not ninja:
        raise ToolsError('cmake and ninja are needed to build the benchmarks: pip install ".[bench]"')
    build_dir = Path(build_dir)
    out = None if verbose else subprocess.PIPE
    steps = []
    if not (build_dir / "build.ninja").exists():
        steps.append([cmake, "-S", str(root), "-B", str(build_dir), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
                      "-DCMAKE_BUILD_TYPE=Release", "-DSOCKETEER_PYTHON=OFF", "-DSOCKETEER_BUILD_BENCHMARKS=ON"])
    steps.append([cmake, "--build", str(build_dir), "--target", LOADGEN, REFERENCE_PROGRAM, "syscall-costs"])
    for step in steps:
        try:
            done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            raise ToolsError(f"{' '.join(step)} took more than 900 s") from None
        if done.returncode != 0:
            raise ToolsError(f"{' '.join(step)} failed:\n{done.stdout or ''}")
    return Tools(build_dir / LOADGEN, build_dir / REFERENCE_PROGRAM)


def find(build_dir: Optional[Path] = None) -> Tools:
    """The installed programs; else, in a source checkout, the ones built into ``build_dir``
    (default build/bench/); else ToolsError."""
    tools = installed()
    if tools is not None:
        return tools
    root = checkout_root()
    if root is None:
        raise ToolsError(f"the load generator is missing from this install (no {installed_dir() / LOADGEN}); "
                         "reinstall socketeer: pip install --force-reinstall socketeer")
    return build(root, build_dir or root / "build" / "bench")
