"""Optional Python tools a few tests need (notebook runners, Sphinx): skipped where they are not
installed, a failure in CI, which installs them with the test extra."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest


def needs(module: str, install: str = "pip install '.[test]'") -> Any:
    """Imports a tool; outside CI a missing one skips (``install`` says what brings it: the test
    extra for most), in CI it fails: .ci/run installs them all."""
    if os.environ.get("CI"):
        return importlib.import_module(module)  # __import__("a.b") would return a, not a.b
    return pytest.importorskip(module, reason=f"{module} is not installed ({install})")
