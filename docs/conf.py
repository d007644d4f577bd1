"""Sphinx configuration for socketeer's documentation.

Build (warnings are errors, as in CI; the doctests run every example on loopback)::

    python -m sphinx -W --keep-going -n -b html docs build/docs/html
    python -m sphinx -W --keep-going -n -b doctest docs build/docs/doctest

The package is imported as installed (``pip install ".[docs]"``) or from the source tree with
``PYTHONPATH=python`` after an in-place build: this file does not touch ``sys.path`` for it, so
the docs always describe the socketeer that the doctests run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import socketeer  # noqa: E402  (the version, and a clear failure when the extension is missing)

project = "socketeer"
author = "the socketeer authors"
copyright = "the socketeer authors"
release = version = socketeer.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "myst_parser",          # benchmarks/README.md is included as it is, one source for the results
    "socketeer_docs",       # docs/_ext: the CLI's --help pages and the pytest fixtures, generated
]

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
templates_path: list[str] = []

# autodoc: members in source order, signatures as the code writes them (string annotations kept,
# nothing evaluated), type hints in the description so long signatures stay readable.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True
autoclass_content = "class"

# Doctests: only the explicit ``.. doctest::`` / ``.. testcode::`` blocks of these pages run.
# Docstrings show some examples that must not run as they stand (netlink changes to a test's own
# namespace, a proxy in front of a server on port 8080); the pages' examples all run, on
# loopback and unix sockets only.
doctest_test_doctest_blocks = ""
doctest_global_setup = "import socketeer"

# Nitpicky (-n): every cross-reference must resolve. The standard library and third-party types
# in signatures are not in this project's inventory (intersphinx would need the network at build
# time), so references into those modules are the only ones excused.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(socket|selectors|asyncio|collections|typing|typing_extensions|enum|ssl|os|io|"
               r"ipaddress|contextlib|dataclasses|concurrent|types|pytest|_pytest|argparse|"
               r"subprocess|threading|pathlib)(\..*)?"),
    (r"py:.*", r"(int|str|bytes|bytearray|memoryview|float|bool|object|None|tuple|list|dict|set|"
               r"frozenset|type|Callable|Iterator|Iterable|AsyncIterator|Awaitable|Coroutine|Any|"
               r"Optional|Union|Literal|Sequence|Mapping|Buffer|ReadableBuffer|WriteableBuffer|"
               r"BaseException|Exception|OSError|ValueError|TimeoutError|EOFError|"
               r"ConnectionError|NoReturn|Self|TypeVar|Generator|AsyncGenerator|Protocol|"
               r"Ellipsis|\.\.\.)"),
    (r"py:class", r"socketeer(\.\w+)*\.[A-Z]"),  # a TypeVar (T) in a generic signature
]

myst_heading_anchors = 3
smartquotes = False  # "--self-test" in a command summary stays two hyphens
suppress_warnings: list[str] = []
