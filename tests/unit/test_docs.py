"""The docs say what the code is: the README's error tree is the error module's, and the module map of
``docs/design.md`` names every module of the package."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import airflow_provider_chatapi
from airflow_provider_chatapi import exceptions

PACKAGE = Path(airflow_provider_chatapi.__file__).parent
ROOT = PACKAGE.parent
ROOT_ERROR = "ChatApiError"
_TREE_LINE = re.compile(r"(?P<indent>(?:[│ ] {3})*)(?:[├└]── )?(?P<name>\w+)")
_MAP_HEADING = "## The layers and the module map"


def error_tree(text: str) -> list[tuple[str, str | None]]:
    """Each class of the first drawn tree rooted at ``ChatApiError`` in ``text``, in order, with its parent."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip() == ROOT_ERROR)
    margin = lines[start][: lines[start].index(ROOT_ERROR)]  # the module's docstring indents its tree
    tree: list[tuple[str, str | None]] = [(ROOT_ERROR, None)]
    ancestors = [ROOT_ERROR]  # the last class seen at each depth
    for line in lines[start + 1 :]:
        drawn = line.removeprefix(margin)
        if not line.startswith(margin) or not drawn.startswith(("├", "└", "│")):
            break
        match = _TREE_LINE.match(drawn)
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match["indent"]) // 4 + 1
        del ancestors[depth:]
        tree.append((match["name"], ancestors[depth - 1]))
        ancestors.append(match["name"])
    return tree


def class_tree() -> dict[str, str | None]:
    """Each error the module declares, with its base among them (None for the root)."""
    declared = {name: getattr(exceptions, name) for name in exceptions.__all__}
    classes = {name: cls for name, cls in declared.items() if inspect.isclass(cls)}
    return {
        name: next((base.__name__ for base in cls.__bases__ if base.__name__ in classes), None)
        for name, cls in classes.items()
    }


def test_the_error_modules_tree_is_its_classes() -> None:
    assert exceptions.__doc__
    assert dict(error_tree(exceptions.__doc__)) == class_tree()


def test_the_readmes_error_tree_is_the_error_modules() -> None:
    assert exceptions.__doc__
    assert error_tree((ROOT / "README.md").read_text()) == error_tree(exceptions.__doc__)


def module_map() -> str:
    """The module map of ``docs/design.md``: its section, up to the next section."""
    design = (ROOT / "docs" / "design.md").read_text()
    start = design.index(f"\n{_MAP_HEADING}\n")
    end = design.find("\n## ", start + 1)
    return design[start : end if end >= 0 else None]


def subsection(text: str, folder: str) -> str:
    """The part of ``text`` under the heading ``### `folder/`…``, up to the next heading; empty if none."""
    match = re.search(rf"^### `{re.escape(folder)}/`.*?(?=^#|\Z)", text, re.MULTILINE | re.DOTALL)
    return match[0] if match else ""


def how_mapped(path: Path) -> tuple[str, str | None]:
    """What the map must name for the module at ``path``: its path in the package (a package's folder, the
    root's own name), and the name that stands for it in its folder's subsection, if it has one."""
    relative = path.relative_to(PACKAGE)
    if relative.name != "__init__.py":
        return relative.as_posix(), relative.stem
    folder = relative.parent.as_posix()
    return (PACKAGE.name, None) if folder == "." else (f"{folder}/", None)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: path.relative_to(PACKAGE).as_posix())
def test_the_module_map_names_every_module(path: Path) -> None:
    text = module_map()
    full, short = how_mapped(path)
    end = "" if full.endswith("/") else r"(?!\w)"  # a folder is named by any of its paths: hooks/chatapi.py
    named = re.search(rf"(?<![\w/]){re.escape(full)}{end}", text)
    in_folder = short is not None and f"`{short}`" in subsection(text, path.relative_to(PACKAGE).parent.as_posix())
    assert named or in_folder, f"docs/design.md's module map does not name {full}"
