"""Pages generated from the code, so they cannot fall behind it.

``.. socketeer-cli::`` documents every ``socketeer`` command from the program's own ``--help``
(the commands are read from ``socketeer --help``: a command added to the CLI appears here without
touching the docs). ``.. socketeer-fixtures::`` documents every public fixture of
``socketeer.testing.plugin`` with its docstring.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

HELP_WIDTH = "96"  # argparse wraps --help to $COLUMNS: a fixed width gives the same page everywhere


def command_help(*args: str) -> str:
    """``socketeer ARGS --help`` as the installed (or PYTHONPATH) package prints it."""
    env = dict(os.environ, COLUMNS=HELP_WIDTH)
    done = subprocess.run([sys.executable, "-m", "socketeer", *args, "--help"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"socketeer {' '.join(args)} --help failed ({done.returncode}): {done.stderr}")
    return done.stdout.rstrip()


def commands(top_help: str) -> list[tuple[str, str]]:
    """(name, one-line summary) for each command ``socketeer --help`` lists under COMMAND."""
    found: list[tuple[str, str]] = []
    listing = top_help.split("\n  COMMAND\n", 1)
    if len(listing) != 2:
        raise RuntimeError(f"no COMMAND list in socketeer --help:\n{top_help}")
    for line in listing[1].splitlines():
        if not line.strip() or not line.startswith("    "):
            break
        match = re.match(r"    (\S+)(?:\s+(.*))?$", line)
        if match and not line.startswith("      "):
            found.append((match.group(1), match.group(2) or ""))
        elif found:  # a wrapped summary
            found[-1] = (found[-1][0], f"{found[-1][1]} {line.strip()}".strip())
    if not found:
        raise RuntimeError(f"no commands found in socketeer --help:\n{top_help}")
    return found


def literal(text: str) -> list[str]:
    return ["::", ""] + ["   " + line if line else "" for line in text.splitlines()] + [""]


class CliDirective(SphinxDirective):
    """Every ``socketeer`` command: its summary and its ``--help``, one section each."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        top = command_help()
        lines = ["The program's own summary (``socketeer --help``)", ""] + literal(top)
        for name, summary in commands(top):
            title = f"socketeer {name}"
            lines += [title, "-" * len(title), "", summary[:1].upper() + summary[1:] + ".", ""]
            lines += literal(command_help(name))
        return self.parse(lines)

    def parse(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines, source="socketeer --help"), container)
        return list(container.children)


def fixture_name(obj: Any) -> str | None:
    """The name pytest registers ``obj`` under, None if it is not a fixture."""
    from _pytest.fixtures import getfixturemarker  # the one way pytest 7 to 9 all answer this
    marker = getfixturemarker(obj)
    if marker is None:
        return None
    return marker.name or getattr(obj, "name", None) or getattr(obj, "__name__", None)


def literal_examples(lines: list[str]) -> list[str]:
    """The fixtures' docstrings indent their examples under a paragraph, as ``pytest --fixtures``
    prints them; in reST that would be a quotation, so each such block becomes a literal one."""
    out: list[str] = []
    for i, line in enumerate(lines):
        starts_block = (line.startswith(" ") and i >= 2 and not lines[i - 1].strip()
                        and lines[i - 2].strip() and not lines[i - 2].startswith(" "))
        if starts_block:
            paragraph_end = len(out) - 2
            if out[paragraph_end].endswith("::"):
                pass
            elif out[paragraph_end].endswith(":"):
                out[paragraph_end] += ":"
            else:
                out[-1:] = ["", "::", ""]
        out.append(line)
    return out


class FixturesDirective(SphinxDirective):
    """Every public fixture in a plugin module, with its docstring, in source order."""

    required_arguments = 1  # the plugin module

    def run(self) -> list[nodes.Node]:
        module = __import__(self.arguments[0], fromlist=["*"])
        lines: list[str] = []
        for attr, obj in vars(module).items():
            name = fixture_name(obj)
            if name is None or name.startswith("_"):
                continue
            doc = inspect.getdoc(obj)
            if not doc:
                raise RuntimeError(f"fixture {name} in {module.__name__} has no docstring")
            lines += [f".. py:data:: {name}", "   :module:", ""]  # no module: a test names it bare
            lines += ["   " + line if line else "" for line in literal_examples(doc.splitlines())] + [""]
        if not lines:
            raise RuntimeError(f"no fixtures found in {module.__name__}")
        container = nodes.section()
        self.state.nested_parse(StringList(lines, source=module.__file__), self.content_offset, container)
        return list(container.children)


def pybind_signature(app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None,
                     return_annotation: str | None) -> tuple[str, str | None] | None:
    """pybind11 methods say ``(self: socketeer._core.Socket, address: handle)``: the reader needs
    ``(address)``. ``handle`` and ``object`` are pybind11's words for "any Python object"; the
    docstring says what the argument may be. A return "type" that is a phrase is dropped."""
    if not signature or what not in ("method", "class", "function", "property"):
        return None
    new = re.sub(r"^\(self(: [\w.]+)?(, )?", "(", signature)
    new = re.sub(r": (handle|object)\b", "", new)
    returns = return_annotation
    if returns and re.search(r"\w \w", returns):  # "makefile(...) -> an I/O stream connected to ..."
        returns = None                             # is prose (the stdlib's docstring), not a type
    return (new, returns) if (new, returns) != (signature, return_annotation) else None


def reexported(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolves what autodoc writes by definition site to where the page documents it: the
    re-exported name (``socketeer.address.InetAddress`` and ``socketeer._core.Socket`` are
    documented as ``socketeer.InetAddress`` and ``socketeer.Socket``), and a forward reference
    written as a string (``'Link'``) to the name inside it."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    candidates = [target.strip("'\"")]
    domain = env.get_domain("py")
    if candidates[0].startswith("socketeer.") or "." not in candidates[0]:
        short = candidates[0].rsplit(".", 1)[-1]
        candidates.append("socketeer." + short)
        # documented in a submodule's page only (socketeer.server.DatagramEndpoint), or named
        # bare by an annotation (EndpointLike)
        candidates += sorted(name for name in domain.objects
                             if name.startswith("socketeer.") and name.endswith("." + short))
    for candidate in candidates:
        if candidate == target:
            continue
        retry = node.deepcopy()
        retry["reftarget"] = candidate
        found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], candidate, retry, contnode)
        if found is not None:
            return found
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("socketeer-cli", CliDirective)
    app.add_directive("socketeer-fixtures", FixturesDirective)
    app.connect("autodoc-process-signature", pybind_signature)
    app.connect("missing-reference", reexported)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
