"""Optional Python tools a few tests need (notebook runners, Sphinx): skipped where they are not
installed, a failure in CI, which installs them with the test extra."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest


def needs(module: str) -> Any:
    """Imports a tool; outside CI a missing one skips (``pip install ".[test]"`` brings them), in
    CI it fails: .ci/run installs the test extra."""
    if os.environ.get("CI"):
        return importlib.import_module(module)  # __import__("a.b") would return a, not a.b
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install '.[test]')")
