"""The import rules of docs/architecture.md, checked by parsing every module.

Every import statement counts: at the top, inside a function (the plugin's
lazy ones), and under TYPE_CHECKING, since a rule is about what a module
knows of, not only what it loads.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The doors, each by the modules that are its own.
DOORS = {
    "line": ("chatd.protocol", "chatd.line"),
    "irc": ("chatd.irc",),
    "web": ("chatd.web",),
}
# The one crossing docs/architecture.md allows: the web door is the line
# protocol over a WebSocket, so it speaks with the line door's translation
# (chatd.line: commands, rendering, their kinds), never its connection class.
CROSSINGS = {("web", "chatd.line")}
# What the code does today that the rules forbid, each with the slice of
# issue 23 that removes it; a pair that no longer occurs is simply not met.
KNOWN = {
    # The web site's /healthz is the ops' HealthResource.
    ("chatd.web.site", "chatd.ops.health"),
}


def within(module: str, *packages: str) -> bool:
    """Whether module is one of packages or inside one."""
    return any(module == name or module.startswith(name + ".") for name in packages)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def imports() -> dict[str, frozenset[str]]:
    """Each module of chatd, and the chatd modules it imports."""
    found: dict[str, frozenset[str]] = {}
    for path in sorted((ROOT / "chatd").rglob("*.py")):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names.add(base)
                # from chatd.line import wire: the module chatd.line.wire
                names.update(f"{base}.{alias.name}" for alias in node.names)
        found[module] = frozenset(name for name in names if within(name, "chatd"))
    return found


def breaches(
    sources: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """(module, import) pairs where a module of sources imports a forbidden one."""
    return sorted(
        (module, name)
        for module, names in imports().items()
        if within(module, *sources)
        for name in names
        if within(name, *forbidden)
        and not within(name, *allowed)
        and not any(module == who and within(name, what) for who, what in KNOWN)
    )


def test_the_packages_of_the_layout_exist() -> None:
    """The floors the rules speak of are where docs/architecture.md says."""
    modules = set(imports())
    for package in ("chatd.model", "chatd.net", "chatd.line", "chatd.irc"):
        assert any(within(module, package) for module in modules if module != package)
    for module in ("chatd.protocol", "chatd.factory", "chatd.doors", "chatd.web.door"):
        assert module in modules


def test_the_model_imports_no_door_net_store_cluster_or_ops() -> None:
    """chatd.model knows no door, no socket, no store but its interface."""
    assert (
        breaches(
            ("chatd.model",),
            (
                "chatd.protocol",
                "chatd.line",
                "chatd.irc",
                "chatd.web",
                "chatd.net",
                "chatd.store",
                "chatd.cluster",
                "chatd.ops",
                "chatd.factory",
                "chatd.doors",
                "chatd.client",
                "chatd.tk_client",
            ),
            allowed=("chatd.store.interface",),
        )
        == []
    )


@pytest.mark.parametrize("door", sorted(DOORS))
def test_no_door_imports_another_door(door: str) -> None:
    """A door imports none of the others (the web door may use the line door's
    translation, chatd.line: it is the line protocol over a WebSocket)."""
    others = tuple(
        package
        for other, packages in DOORS.items()
        if other != door
        for package in packages
    )
    allowed = tuple(package for who, package in CROSSINGS if who == door)
    assert breaches(DOORS[door], others, allowed) == []


def test_the_connection_layer_imports_only_the_model_and_config() -> None:
    """chatd.net, below every door, knows no door, hub, store, cluster or ops."""
    mine = tuple(module for module in imports() if within(module, "chatd.net"))
    for module in mine:
        assert all(
            within(name, "chatd.net", "chatd.model", "chatd.config")
            for name in imports()[module]
        ), module


def test_the_hub_and_the_contract_import_no_door() -> None:
    """chatd.factory (the hub) and chatd.doors (the contract) sit below the
    doors: the registry names its doors as strings, loaded on use."""
    doors = tuple(package for packages in DOORS.values() for package in packages)
    assert breaches(("chatd.factory", "chatd.doors"), doors) == []


def test_only_the_top_imports_ops_and_the_cluster() -> None:
    """chatd.ops and chatd.cluster are read by the plugin, not by what is below."""
    assert [
        (module, name)
        for module, names in sorted(imports().items())
        if not within(module, "chatd.ops", "chatd.cluster")
        for name in sorted(names)
        if within(name, "chatd.ops", "chatd.cluster")
        and not any(module == who and within(name, what) for who, what in KNOWN)
    ] == []
