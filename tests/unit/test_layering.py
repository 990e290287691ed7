"""The package's imports run downward: no cycle (type-only imports included), the error module imports
nothing of the package, and the protocol package is pure (no Airflow, no HTTP client, nothing public above
it). Every file stays small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_chatapi

PACKAGE = Path(airflow_provider_chatapi.__file__).parent
ROOT = PACKAGE.parent
IO_OR_AIRFLOW = ("airflow", "requests", "httpx", "urllib3", "socket", "http", "tenacity")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every module ``name`` imports, at run time or for type checking, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from package import module`` imports the module
            found.update(
                f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES
            )
    return found


def package_imports(name: str) -> set[str]:
    own = {target for target in imports_of(name) if target in MODULES and target != name}
    # Importing a.b.c runs a and a.b first, but those are the package's own __init__ files: edges to them
    # would only say "a submodule exists", so they are left out.
    return {target for target in own if not name.startswith(f"{target}.")}


def test_no_import_cycle() -> None:
    graph = {name: package_imports(name) for name in MODULES}
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_the_error_module_imports_nothing_of_the_package() -> None:
    assert not {target for target in imports_of("airflow_provider_chatapi.exceptions") if "chatapi" in target}


@pytest.mark.parametrize("name", [name for name in MODULES if name.startswith("airflow_provider_chatapi._protocol")])
def test_the_protocol_is_pure(name: str) -> None:
    imported = imports_of(name)
    io = sorted(target for target in imported if target.split(".")[0] in IO_OR_AIRFLOW)
    assert not io, f"{name} imports {io}"
    above = sorted(
        target
        for target in imported
        if target.startswith("airflow_provider_chatapi")
        and not target.startswith("airflow_provider_chatapi._protocol")
        and target != "airflow_provider_chatapi.exceptions"
    )
    assert not above, f"{name} imports from above the protocol: {above}"
