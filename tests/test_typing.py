"""The package's type hints hold: mypy checks socketeer (with its _core.pyi stubs) as users'
type checkers will see it, installed or from the source tree; a strict user's code type-checks
with no error and the types it sees are the precise ones; mistakes are reported; and stubtest
keeps _core.pyi true to the built extension."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from subprocess_env import ROOT, child_env

SAMPLES = Path(__file__).resolve().parent / "typing"
# A user's settings: --strict for their code; socketeer is theirs to import, not to check here
# (test_mypy_accepts_the_package does that), as for any installed package.
USER_CONFIG = "[mypy]\nstrict = True\n\n[mypy-socketeer.*]\nfollow_imports = silent\n"


def _mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), *args],
                          cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300)


def _user_mypy(tmp_path: Path, sample: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "mypy.ini"
    config.write_text(USER_CONFIG)
    return _mypy(tmp_path, "--config-file", str(config), "--no-pretty", "--show-error-codes", str(SAMPLES / sample))


def _marked(sample: str, marker: str) -> dict[int, str]:
    """{line: text} of every `# <marker>: text` comment in the sample."""
    lines = (SAMPLES / sample).read_text().splitlines()
    return {number: line.split(f"# {marker}: ", 1)[1].strip()
            for number, line in enumerate(lines, 1) if f"# {marker}: " in line}


def test_mypy_accepts_the_package(tmp_path: Path) -> None:
    result = _mypy(tmp_path, "-p", "socketeer")
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_user_code_type_checks_with_the_precise_types(tmp_path: Path) -> None:
    """Every public name imports under --strict, nothing is Any where the type is known:
    local_address is an Address connect() takes back, connect() a Stream or a Datagram."""
    result = _user_mypy(tmp_path, "user_code.py")
    output = result.stdout + result.stderr
    assert result.returncode == 0 and " error: " not in output, output
    revealed = {int(m[1]): m[2] for m in re.finditer(r"user_code\.py:(\d+): note: Revealed type is \"(.*)\"", output)}
    assert revealed == _marked("user_code.py", "R")


def test_strict_mypy_reports_a_users_mistakes(tmp_path: Path) -> None:
    result = _user_mypy(tmp_path, "user_mistakes.py")
    output = result.stdout + result.stderr
    found = {(int(m[1]), m[2]) for m in re.finditer(r"user_mistakes\.py:(\d+): error: .*\[([a-z-]+)\]$", output, re.M)}
    assert result.returncode == 1, output
    assert found == {(line, code) for line, code in _marked("user_mistakes.py", "E").items()}, output


def test_stubtest_finds_core_pyi_true_to_the_extension(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    allowlist = ROOT / ".ci" / "stubtest-allowlist.txt"
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "socketeer._core", "--allowlist", str(allowlist)],
                            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pyright_accepts_strict_user_code(tmp_path: Path) -> None:
    """pyright (installed from PyPI with the test extra; it runs on the machine's node) reads
    the same exports: the user's module has no error, the mistakes sample one per mistake."""
    if shutil.which("pyright") is None and shutil.which("pyright", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pyright is not installed")
    if shutil.which("node") is None:
        pytest.skip("pyright needs node, and would download it")
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or "pyright"
    for sample in ("user_code.py", "user_mistakes.py"):
        result = subprocess.run([pyright, "--pythonpath", sys.executable, str(SAMPLES / sample)], cwd=tmp_path,
                                env=child_env(), capture_output=True, text=True, timeout=300)
        lines = {int(m[1]) for m in re.finditer(rf"{sample}:(\d+):\d+ - error", result.stdout)}
        assert lines == set(_marked(sample, "E")), result.stdout + result.stderr
