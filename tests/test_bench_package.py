"""``socketeer bench`` from the installed package: the wheel carries the load generator and the C
reference (socketeer/bin), and the harness finds them there or says in one line what is missing.
The table itself is tested in test_cli.py; run.py's full matrix in test_bench_harness.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from socketeer.benchmark import tools


def test_the_installed_package_carries_both_programs() -> None:
    """pip install . (what the README and .ci/run do) puts them in the package's bin/, executable."""
    if tools.installed() is None and tools.checkout_root() is not None:
        pytest.skip("socketeer is imported from a source tree without an install (the programs are built on "
                    "first use there); .ci/run tests the installed package")
    found = tools.installed()
    assert found is not None, f"nothing in {tools.installed_dir()}"
    assert found.loadgen.parent == found.reference.parent == tools.installed_dir()
    for program in (found.loadgen, found.reference):
        assert program.is_file() and os.access(program, os.X_OK), program
        done = subprocess.run([str(program), "--help"], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0 and f"usage: {program.name}" in done.stdout, done.stdout + done.stderr
    assert tools.find() == found


def fake_bin(tmp_path: Path, *names: str) -> Path:
    where = tmp_path / "bin"
    where.mkdir()
    for name in names:
        (where / name).write_text("#!/bin/sh\n")
        (where / name).chmod(0o755)
    return where


def test_find_prefers_the_installed_programs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    where = fake_bin(tmp_path, tools.LOADGEN, tools.REFERENCE_PROGRAM)
    monkeypatch.setattr(tools, "installed_dir", lambda: where)
    assert tools.find() == tools.Tools(where / tools.LOADGEN, where / tools.REFERENCE_PROGRAM)


@pytest.mark.parametrize("present, missing", [
    ((tools.LOADGEN,), tools.REFERENCE_PROGRAM),
    ((tools.REFERENCE_PROGRAM,), tools.LOADGEN),
], ids=["no reference", "no loadgen"])
def test_a_half_install_names_the_missing_program(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 present: tuple[str, ...], missing: str) -> None:
    where = fake_bin(tmp_path, *present)
    monkeypatch.setattr(tools, "installed_dir", lambda: where)
    with pytest.raises(tools.ToolsError, match=f"^{missing} is missing from this install .*pip install"):
        tools.find()


def test_a_program_that_is_not_executable_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    where = fake_bin(tmp_path, tools.LOADGEN, tools.REFERENCE_PROGRAM)
    (where / tools.LOADGEN).chmod(0o644)
    monkeypatch.setattr(tools, "installed_dir", lambda: where)
    with pytest.raises(tools.ToolsError, match=f"^{tools.LOADGEN} is missing from this install"):
        tools.find()


def test_no_install_and_no_source_tree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tools, "installed_dir", lambda: tmp_path / "bin")
    monkeypatch.setattr(tools, "checkout_root", lambda: None)
    with pytest.raises(tools.ToolsError, match="^the load generator is missing from this install"):
        tools.find()
