"""docs/security.md names only tests and code that exist.

Its table of what every door and node enforces points at the model function
that decides each rule and the test that holds it: a rename or a removal that
leaves the page pointing at nothing fails here, so the page cannot drift.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "security.md"
TEST_REFERENCE = re.compile(r"`?(tests/[\w/]+\.py)(?:::(\w+))?")
CODE_REFERENCE = re.compile(
    r"`([A-Z]\w*\.)?(\w+)`(?:, `[\w.]+`)* \(`(chatd/[\w/]+\.py)`"
)


@cache
def defined(path: Path) -> frozenset[str]:
    """The functions, classes and methods (as Class.method too) of a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}.{item.name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return frozenset(names)


def test_every_test_the_page_names_exists() -> None:
    """Each `tests/x.py` and `tests/x.py::test_y` of the page is there."""
    found = TEST_REFERENCE.findall(DOC.read_text())
    assert len(found) > 20
    for path, name in found:
        assert (ROOT / path).is_file(), path
        if name:
            assert name in defined(ROOT / path), f"{path}::{name}"


def test_every_function_the_page_says_decides_exists() -> None:
    """Each `Class.method` (`chatd/x.py`) of the page is defined in that module
    (by that class, or by a class of that module that it takes in)."""
    found = CODE_REFERENCE.findall(DOC.read_text())
    assert len(found) > 10
    for owner, name, path in found:
        assert (ROOT / path).is_file(), path
        names = defined(ROOT / path)
        # Chat.may_see may be defined by a class Chat takes in (Permissions).
        methods = {defined_name.rpartition(".")[2] for defined_name in names}
        assert owner + name in names or (owner and name in methods), (
            f"{owner}{name} in {path}"
        )
