"""What `socketeer` exports, as the interpreter and as type checkers see it.

The package loads its re-exports lazily (PEP 562) from a table that type checkers do not run, so
`__all__` is also written out as a literal list and the same names are imported under
TYPE_CHECKING. These tests keep the three in step, read from the source as a type checker reads it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import socketeer
import socketeer.constants

INIT = Path(socketeer.__file__)
CONSTANTS = Path(socketeer.constants.__file__)


def _module_literal(path: Path, name: str) -> object:
    """The value of the first top-level `name = <literal>` in the file at `path`."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no literal {name} in {path}")


def _type_checking_imports(path: Path) -> dict[str, str]:
    """{name: module} of every `from M import name` inside the file's `if TYPE_CHECKING:` blocks."""
    names: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in ast.walk(node):
                if isinstance(statement, ast.ImportFrom):
                    for alias in statement.names:
                        names[alias.asname or alias.name] = "." * statement.level + (statement.module or "")
    return names


def test_the_literal_all_is_what_the_lazy_table_exports() -> None:
    static = _module_literal(INIT, "__all__")
    table = _module_literal(INIT, "_EXPORTS")
    assert isinstance(static, list) and isinstance(table, dict)
    lazy = [name for names in table.values() for name in names]
    assert len(static) == len(set(static)), "a name twice in __all__"
    assert set(static) == set(lazy) | {"AddressFamily", "SocketKind", "TcpState", "framing", "aio"}
    assert socketeer.__all__ == static + socketeer.constants.__all__


def test_type_checkers_see_an_import_of_every_lazy_name() -> None:
    table = _module_literal(INIT, "_EXPORTS")
    assert isinstance(table, dict)
    imported = _type_checking_imports(INIT)
    for module, names in table.items():
        for name in names:
            assert imported.get(name) == module, f"{name}: imported under TYPE_CHECKING from {imported.get(name)}"
    for submodule in _module_literal(INIT, "_SUBMODULES"):  # type: ignore[attr-defined]
        assert imported.get(submodule) == ".", f"socketeer.{submodule} not imported under TYPE_CHECKING"


def test_every_exported_name_loads_and_is_the_submodules_object() -> None:
    table = _module_literal(INIT, "_EXPORTS")
    assert isinstance(table, dict)
    for module, names in table.items():
        for name in names:
            assert getattr(socketeer, name) is getattr(importlib.import_module(module, "socketeer"), name)
    for name in socketeer.__all__:
        getattr(socketeer, name)


def test_constants_declare_to_type_checkers_only_names_that_exist() -> None:
    """constants.py lists the names its loop copies from the stdlib twice for type checkers (an
    import of each, and `__all__ += [...]`): the two agree, and each is there at run time."""
    imported = set(_type_checking_imports(CONSTANTS))
    declared: set[str] = set()
    for node in ast.walk(ast.parse(CONSTANTS.read_text())):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__" \
                and isinstance(node.value, ast.List):
            declared |= {ast.literal_eval(item) for item in node.value.elts}
    assert declared and declared == imported
    assert declared <= set(socketeer.constants.__all__)
    assert declared <= set(socketeer.__all__)
