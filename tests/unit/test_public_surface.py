"""The provider's public surface is declared: each public module says in ``__all__`` what users may import,
and nothing else it defines is without an underscore."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import airflow_provider_chatapi

PACKAGE = Path(airflow_provider_chatapi.__file__).parent
MAX_PUBLIC_NAMES = 50


def public_modules() -> list[str]:
    names = ["airflow_provider_chatapi"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="airflow_provider_chatapi."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def source_of(module_name: str) -> Path:
    module = importlib.import_module(module_name)
    assert module.__file__
    return Path(module.__file__)


def defined_names(path: Path) -> set[str]:
    """The names a module's own top-level statements bind: functions, classes, assignments."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_") or name == "__version__"}


def declared(module_name: str) -> list[str]:
    return list(getattr(importlib.import_module(module_name), "__all__", []))


def namespace_only(path: Path) -> bool:
    """A package ``__init__`` that only holds its submodules: nothing to declare."""
    return path.name == "__init__.py" and not path.read_text().strip()


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_module_declares_what_it_defines(module_name: str) -> None:
    path = source_of(module_name)
    if namespace_only(path):
        return
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    undeclared = defined_names(path) - set(module.__all__)
    assert not undeclared, f"{module_name} defines public names missing from __all__: {sorted(undeclared)}"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not have: {missing}"


def test_the_public_surface_is_small() -> None:
    names = {f"{module}.{name}" for module in public_modules() for name in declared(module)}
    assert len(names) <= MAX_PUBLIC_NAMES, sorted(names)


def test_the_modules_users_import_are_public() -> None:
    assert set(public_modules()) >= {
        "airflow_provider_chatapi",
        "airflow_provider_chatapi.exceptions",
        "airflow_provider_chatapi.hooks.chatapi",
        "airflow_provider_chatapi.operators.chatapi",
        "airflow_provider_chatapi.notifications.chatapi",
        "airflow_provider_chatapi.testing",
    }
    assert set(declared("airflow_provider_chatapi.exceptions")) >= {"ChatApiError", "FanOutError", "NotSentError"}


def test_provider_info_names_only_public_modules() -> None:
    info = airflow_provider_chatapi.get_provider_info()
    paths = [
        *(module for entry in info["hooks"] + info["operators"] for module in entry["python-modules"]),
        *(path.rpartition(".")[0] for path in info["notifications"]),
        *(entry["hook-class-name"].rpartition(".")[0] for entry in info["connection-types"]),
    ]
    for path in paths:
        assert path in public_modules(), path
