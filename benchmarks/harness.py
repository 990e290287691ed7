"""What the benchmark items share: samples and verdicts, interleaved rounds, printing, stand-in gateways.

Imported by ``run.py`` and by the ``item_*.py`` modules, including when one of those runs as a child
process of its own; it imports only the standard library, so that it adds nothing to what item 4 measures.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from unittest import mock
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

T = TypeVar("T")

REQUEST_TIMEOUT = 30.0  # the hook's default, given to the bare clients too
SUBPROCESS_TIMEOUT = 300
CONNECTION_VARIABLE = "AIRFLOW_CONN_CHATAPI_DEFAULT"
STAND_IN_MODULE = "airflow_provider_chatapi.testing"
STAND_IN_CONTROL = "/_standin/"  # the stand-in's control API (testing/_gateway.py), on the gateway's own port

# Contacts as a DAG author writes them (for the hook) and as they go on the wire (for the floors).
HUMAN_CONTACTS = ["+7 900 111-11-11", "79002222222@c.us"]
WIRE_CONTACTS = ["79001111111@c.us", "79002222222@c.us"]


def human_phone(index: int) -> str:
    """Recipient ``index`` as a person writes it: ``+7 (900) 000-00-01``."""
    return f"+7 (900) {index // 10_000 % 1000:03d}-{index // 100 % 100:02d}-{index % 100:02d}"


def wire_phone(index: int) -> str:
    """The same recipient as the gateway wants it: ``79000000001``."""
    return f"7900{index % 10_000_000:07d}"


def wire_body(index: int) -> dict[str, Any]:
    return {"phone": wire_phone(index), "contactId": WIRE_CONTACTS}


# ---- samples, verdicts and printing --------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """Repeated measurements of one variant, in seconds (or bytes); shown in ``unit`` after ``scale``."""

    label: str
    values: list[float]
    unit: str = "ms"
    scale: float = 1e3

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, value: float) -> str:
        scaled = value * self.scale
        return f"{scaled:,.0f}" if abs(scaled) >= 1000 else f"{scaled:.1f}"

    def line(self, suffix: str = "") -> str:
        return (
            f"  {self.label:<46} median {self.show(self.median):>7} {self.unit}{suffix}"
            f"  (min {self.show(min(self.values))}, max {self.show(max(self.values))}, n={len(self.values)})"
        )


def micros(label: str, values: list[float]) -> Sample:
    return Sample(label, values, "µs", 1e6)


def megabytes(label: str, values: list[float]) -> Sample:
    return Sample(label, values, "MB", 1e-6)


@dataclass(frozen=True)
class Verdict:
    """One row of the summary; ``ok`` is None for an item without a target."""

    item: str
    measured: str
    ratio: str
    target: str
    ok: bool | None

    @property
    def result(self) -> str:
        return "-" if self.ok is None else pass_fail(self.ok)


def pass_fail(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def heading(title: str) -> None:
    print(f"\n== {title}", flush=True)


def judge(claim: str, ok: bool) -> bool:
    print(f"  {claim} -> {pass_fail(ok)}")
    return ok


def judged(item: str, claim: str, ok: bool, *, measured: str, ratio: str, target: str) -> Verdict:
    """:func:`judge` ``claim``, and the summary's row for it."""
    return Verdict(item, measured, ratio, target, judge(claim, ok))


def print_samples(*samples: Sample, suffix: str = "") -> None:
    for sample in samples:
        print(sample.line(suffix))


def interleaved(rounds: int, variants: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run every variant once per round, rotating the order each round; return each one's results."""
    results: dict[str, list[T]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
    return results


def column(rows: list[tuple[float, float]], index: int) -> list[float]:
    return [row[index] for row in rows]


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        models = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = models[0].split(":", 1)[1].strip() if models else cpu
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    names = ("apache-airflow", "airflow-provider-chatapi", "requests", "httpx")
    return [
        f"CPU: {cpu}; {os.cpu_count()} cores ({usable} usable); load average {os.getloadavg()[0]:.2f}",
        f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        ", ".join(f"{name} {version_of(name)}" for name in names),
    ]


def summary(verdicts: list[Verdict]) -> None:
    heading("Summary")
    columns = [("item", 27), ("ratio", 7), ("target", 14), ("result", 6)]
    print("  " + " | ".join(name.ljust(width) for name, width in columns) + " | measured")
    print("  " + "-+-".join("-" * width for _, width in columns) + "-+-" + "-" * 50)
    for verdict in verdicts:
        cells = (verdict.item, verdict.ratio, verdict.target, verdict.result)
        row = " | ".join(cell.ljust(width) for cell, (_, width) in zip(cells, columns, strict=True))
        print(f"  {row} | {verdict.measured}")


def expect(condition: bool, problem: str) -> None:
    if not condition:
        raise RuntimeError(problem)


def expect_queued(card_ids: list[str], count: int) -> None:
    """Check that ``card_ids`` are the queued cards of recipients 0 to ``count - 1``, in order."""
    expect(len(card_ids) == count, f"{len(card_ids)} results for {count} recipients")
    in_order = all(f"_{wire_phone(index)}@c.us_" in card for index, card in enumerate(card_ids))  # true_<chat>_<n>
    expect(in_order, "the results are not the recipients' queued cards in recipient order")


# ---- stand-in gateways and connections -----------------------------------------------------------


@contextlib.contextmanager
def stand_in_process(delay: float = 0.0) -> Iterator[dict[str, Any]]:
    """``python -m airflow_provider_chatapi.testing`` on a free loopback port; yields its connection."""
    command = [sys.executable, "-m", STAND_IN_MODULE, "--port", "0", "--delay", str(delay)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # "Stand-in ... at URL", then "AIRFLOW_CONN_CHATAPI_DEFAULT='{...}'"
            name, _, value = line.strip().partition("=")
            if name == CONNECTION_VARIABLE:
                break
        else:
            raise RuntimeError(f"the stand-in gateway exited with {process.wait()} before printing its connection")
        yield json.loads(value.strip("'"))
    finally:
        process.terminate()
        process.wait(timeout=10)


def stand_in_control(connection: dict[str, Any], name: str, *, method: str = "GET") -> dict[str, Any]:
    """Ask the control API of the stand-in behind ``connection`` (``stats``, ``reset``, ...); its JSON answer.

    What a benchmark needs of a stand-in in another process: to empty it between rounds, and to count what
    it queued. Control requests are not recorded and meet no delay.
    """
    url = urlsplit(connection["host"])
    request = urllib.request.Request(f"{url.scheme}://{url.netloc}{STAND_IN_CONTROL}{name}", method=method)
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as answer:
        return dict(json.load(answer))


def child_stdout(script: str, arguments: list[str], connection: dict[str, Any]) -> str:
    """Run ``script`` (an item's own file) as a child process with ``chatapi_default`` set; its stdout.

    ``subprocess.run`` kills the child on a timeout or any other error, so none is left behind. A child that
    fails raises ``RuntimeError`` with the end of its stderr.
    """
    finished = subprocess.run(
        [sys.executable, script, *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, CONNECTION_VARIABLE: json.dumps(connection)},
        timeout=SUBPROCESS_TIMEOUT,
    )
    ran = f"{Path(script).name} {' '.join(arguments)}"
    expect(finished.returncode == 0, f"{ran} exited with {finished.returncode}:\n{finished.stderr[-3000:]}")
    return finished.stdout


def chatapi_default(connection: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """Point the ``chatapi_default`` connection at a gateway while the block runs."""
    return mock.patch.dict(os.environ, {CONNECTION_VARIABLE: json.dumps(connection)})


def send_target(connection: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The ``sendContact`` URL and query parameters for a bare client."""
    return f"{connection['host']}/sendContact", {"token": connection["password"]}
