"""Build the sdist and the wheel as a release would, and check what they carry before anyone uploads them.

- ``python -m build`` (isolated, from the package registries) and ``twine check --strict``;
- the wheel: every module of the package, ``py.typed``, the provider entry point, LICENSE and NOTICE, the
  metadata a provider's index page needs, and nothing else (no tests, no example DAGs);
- the README as the index page: no relative links (they break there), and every link to the project's
  own files under the ``Source`` URL; provider info's docs link is the ``Documentation`` URL;
- the sdist: the files its tests need; unpacked, its whole suite collects and its fast tests pass.

Run by ``scripts/test``; exits non-zero with every problem listed.
"""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "airflow_provider_chatapi"
FAST_TESTS = [
    "tests/unit/protocol",
    "tests/unit/hooks/test_form.py",
    "tests/unit/test_provider_info.py",
    "tests/unit/testing/test_stand_in.py",
]
"""Run from the unpacked sdist: no DAG runs, so a few seconds; the rest of the suite is only collected."""
SDIST_MUST_HOLD = [
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "NOTICE",
    "pyproject.toml",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/scenarios.py",
    *(path.relative_to(ROOT).as_posix() for path in sorted((ROOT / "tests" / "dags" / "drills").glob("*.py"))),
    *(path.relative_to(ROOT).as_posix() for path in sorted((ROOT / "example_dags").glob("*.py"))),
]
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def main() -> None:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chatapi-dist-") as scratch:
        out = Path(scratch) / "dist"
        run(sys.executable, "-m", "build", "--outdir", str(out), str(ROOT))
        (wheel,) = out.glob("*.whl")
        (sdist,) = out.glob("*.tar.gz")
        run(sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist))
        metadata = check_wheel(wheel, problems)
        check_links(metadata, problems)
        check_sdist(sdist, Path(scratch), problems)
        print(f"Built and checked {wheel.name} and {sdist.name}")
    if problems:
        sys.exit("The package is not fit to release:\n  " + "\n  ".join(problems))


def run(*command: str, cwd: Path | None = None) -> None:
    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"`{' '.join(command)}` failed:\n{finished.stdout}{finished.stderr}")


def check_wheel(wheel: Path, problems: list[str]) -> email.message.Message:
    from airflow_provider_chatapi import __version__

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"airflow_provider_chatapi-{__version__}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()

    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / PACKAGE).rglob("*.py")}
    for missing in sorted(modules - names):
        problems.append(f"wheel: {missing} is missing")
    expected = {*modules, f"{PACKAGE}/py.typed", f"{dist_info}/licenses/LICENSE", f"{dist_info}/licenses/NOTICE"}
    for missing in sorted(expected - names):
        problems.append(f"wheel: {missing} is missing")
    for stray in sorted(name for name in names - expected if not name.startswith(f"{dist_info}/")):
        problems.append(f"wheel: {stray} should not be in it")
    if "apache_airflow_provider" not in entry_points or f"{PACKAGE}:get_provider_info" not in entry_points:
        problems.append("wheel: no apache_airflow_provider entry point to get_provider_info")

    requires = [Requirement(requirement) for requirement in metadata.get_all("Requires-Dist") or []]
    urls = project_urls(metadata)
    classifiers = metadata.get_all("Classifier") or []
    for field, ok in {
        f"Version {__version__}": metadata["Version"] == __version__,
        "License-Expression Apache-2.0": metadata["License-Expression"] == "Apache-2.0",
        "Requires-Python >=3.11": metadata["Requires-Python"] == ">=3.11",
        "Requires-Dist apache-airflow>=2.11.0,<4": any(
            r.name == "apache-airflow" and r.specifier == SpecifierSet(">=2.11.0,<4") for r in requires
        ),
        "Requires-Dist apache-airflow-providers-common-compat": any(
            r.name == "apache-airflow-providers-common-compat" for r in requires
        ),
        "an Author": bool(metadata["Author"] or metadata["Author-email"]),
        "Project-URLs Source, Issues, Changelog, Documentation": {"Source", "Issues", "Changelog", "Documentation"}
        <= set(urls),
        "a Development Status classifier": any(c.startswith("Development Status ::") for c in classifiers),
        "a Python 3.11 classifier": "Programming Language :: Python :: 3.11" in classifiers,
        "the README as its long description": metadata["Description-Content-Type"] == "text/markdown",
    }.items():
        if not ok:
            problems.append(f"wheel metadata: no {field}")
    return metadata


def project_urls(metadata: email.message.Message) -> dict[str, str]:
    """The wheel's ``Project-URL`` fields, by label."""
    return dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])


def check_links(metadata: email.message.Message, problems: list[str]) -> None:
    from airflow_provider_chatapi import get_provider_info

    urls = project_urls(metadata)
    source = urls.get("Source", "")
    for link in MARKDOWN_LINK.findall((ROOT / "README.md").read_text()):
        if not re.match(r"https?://|#", link):
            problems.append(f"README: relative link {link!r} breaks on the package index; link under {source}")
        elif "github.com" in link and not link.startswith(source):
            problems.append(f"README: {link!r} is not under the Source URL {source}")
    (integration,) = get_provider_info()["integrations"]
    if integration["external-doc-url"] != urls.get("Documentation"):
        problems.append(
            f"provider info: external-doc-url {integration['external-doc-url']!r} is not the Documentation URL"
        )


def check_sdist(sdist: Path, scratch: Path, problems: list[str]) -> None:
    with tarfile.open(sdist) as archive:
        archive.extractall(scratch, filter="data")
    unpacked = scratch / sdist.name.removesuffix(".tar.gz")
    for needed in SDIST_MUST_HOLD:
        if not (unpacked / needed).is_file():
            problems.append(f"sdist: {needed} is missing")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    for command in ([*pytest, "--collect-only"], [*pytest, *FAST_TESTS]):
        finished = subprocess.run(command, cwd=unpacked, capture_output=True, text=True)
        if finished.returncode:
            problems.append(f"sdist: `{' '.join(command[2:])}` failed:\n{finished.stdout[-3000:]}{finished.stderr}")


if __name__ == "__main__":
    main()
