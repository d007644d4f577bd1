"""The suite's own pytest settings (pyproject.toml's [tool.pytest.ini_options] and tests/conftest.py)
in sub-pytests: a third-party plugin that warns while pytest starts (as pytest-asyncio does about
an unset asyncio_default_fixture_loop_scope) is shown, not an INTERNALERROR; any warning inside a
test is still an error, whichever module it comes from; our conftest's start-up warning too."""

from __future__ import annotations

import shutil

import pytest

from subprocess_env import ROOT, child_env

pytest_plugins = ["pytester"]

# A stand-in for a third-party plugin: it warns while being imported, in pytest_configure, and
# through pytest's own config-time channel.
THIRD_PARTY_PLUGIN = """
import warnings

import pytest

warnings.warn(DeprecationWarning("third_party_plugin: imported"))


def pytest_configure(config):
    warnings.warn(pytest.PytestDeprecationWarning("third_party_plugin: option unset"))
    config.issue_config_time_warning(pytest.PytestConfigWarning("third_party_plugin: config"), stacklevel=2)
"""

# A library that is not ours, warning when a test calls it.
THIRD_PARTY_LIBRARY = """
import warnings


def deprecated():
    warnings.warn(DeprecationWarning("third_party_library: deprecated"))
"""

TESTS = """
import warnings

import pytest

import third_party_library


def test_quiet():
    pass


def test_our_warning_fails():
    warnings.warn(UserWarning("ours"))


def test_a_third_party_warning_in_a_test_fails():
    third_party_library.deprecated()


@pytest.mark.filterwarnings("ignore:third_party_library")
def test_a_test_may_allow_a_warning_it_expects():
    third_party_library.deprecated()
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester's directory holding this project's pyproject.toml and tests/conftest.py."""
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    shutil.copy(ROOT / "pyproject.toml", pytester.path / "pyproject.toml")
    shutil.copy(ROOT / "tests" / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(third_party_plugin=THIRD_PARTY_PLUGIN, third_party_library=THIRD_PARTY_LIBRARY,
                        test_warnings=TESTS)
    return pytester


def test_a_third_party_plugins_start_up_warning_is_shown_not_fatal(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "third_party_plugin", "-p", "no:cacheprovider", "-rA",
                                          "test_warnings.py", timeout=45)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED and "INTERNALERROR" not in output, output
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["PASSED test_warnings.py::test_quiet",
                                 "PASSED test_warnings.py::test_a_test_may_allow_a_warning_it_expects",
                                 "FAILED test_warnings.py::test_our_warning_fails - UserWarning: ours",
                                 "FAILED test_warnings.py::test_a_third_party_warning_in_a_test_fails - *"])
    result.stdout.fnmatch_lines(["E * DeprecationWarning: third_party_library: deprecated"])
    for shown in ("third_party_plugin: imported", "third_party_plugin: option unset", "third_party_plugin: config"):
        assert shown in output


def test_a_warning_from_our_conftest_at_start_up_is_still_an_error(project: pytest.Pytester) -> None:
    conftest = project.path / "conftest.py"
    conftest.write_text(conftest.read_text() + '\nimport warnings\nwarnings.warn(UserWarning("conftest: ours"))\n')
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "test_warnings.py", timeout=45)
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert "conftest: ours" in result.stdout.str() + result.stderr.str()
