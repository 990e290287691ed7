"""Benchmarks of airflow-provider-chatapi against the floors it cannot beat. Run with ``scripts/bench``.

``scripts/bench`` runs this file in the newest Airflow environment (``scripts/env.sh``); with the project
installed anywhere, ``python benchmarks/run.py`` does the same; ``--only 2,3`` runs some items only. It
needs only the project's dependencies, sends traffic to 127.0.0.1 only (stand-in gateways of
``airflow_provider_chatapi.testing``: ``StandInGateway`` in this process, or ``python -m
airflow_provider_chatapi.testing --port 0 [--delay D]`` in a process of its own), takes about three
minutes on two cores and exits 1 if a target is missed. The variants of an item run interleaved, their
order rotated each round, so that machine noise hits all of them alike; each figure is the median of
the rounds, with their min and max.

Stand-in ceiling (printed before item 2): time per request of one sequential client of a stand-in in
its own process, through a bare ``requests.Session`` and through a raw socket sending prebuilt
requests. The latter is the stand-in's own time: how much of item 2's floor is the gateway.

1. Import cost at DAG parse: fresh interpreters importing ``SendContactOperator`` against ones importing
   only ``airflow.sdk.BaseOperator`` (what any DAG file pays). Each child imports ``BaseOperator`` first
   and then the operator (which imports it anyway), timing both, so the operator's own cost is measured
   inside the same interpreter, free of the run-to-run noise of a 3 s import; the ratio is
   ``(baseline + that cost) / baseline``, and the ratio of the fresh-interpreter medians is printed
   beside it. That cost is also what a DAG processor already holding Airflow pays on every parse.
   Official Slack and Telegram operators are measured the same way when installed. Target: under +5 %.
2. Sync send overhead: time per ``ChatApiHook.send_contact()`` over N sequential calls to an in-process
   stand-in (a fresh hook each round, so reading its connection and opening its session are timed; the
   input is human-written, so the hook validates and normalises it) against the floor: the same N
   already-normalised requests, token as a query parameter, through a bare ``requests.Session`` that
   parses each answer. Also printed: ``requests.post()`` without a session (what connection reuse
   saves) and the hook's validation alone (``protocol.sends.build_send_contact``). Target: at most 1.05x the
   floor.
3. Async fan-out: ``await ChatApiHook().asend_to_many(contacts, recipients, max_in_flight=20)`` for 200
   recipients against a stand-in in its own process answering after 20 ms, against the same 200 sent
   one after another with ``send_contact()``. Targets: at least 8x faster, and within 1.5x of the ideal
   ``ceil(200 / 20) * 20 ms``. Printed to explain a miss: the client's CPU time; the floor (the same
   requests, prebuilt, through a bare ``httpx.AsyncClient`` with the same bound); a run against a
   100 ms gateway, where the same CPU time hides behind the waiting; and a run against an in-process
   stand-in, which competes with the client for the GIL (hence the separate process elsewhere) and
   counts the connections and concurrent requests it saw, to check that ``max_in_flight`` holds.
4. Memory: peak RSS (``ru_maxrss``) of a process that imports the operator and the hook and sends 1,000
   cards, against one that imports the same and sends nothing. The stand-in runs in its own process,
   as it keeps every request it receives. Target: under 10 MB added. The import peaks above what the
   sends need, so the RSS at exit of both is printed too: growth that stays under the peak shows there.
5. DAG level: ``dag.test()`` of 50 mapped task instances of ``SendContactOperator`` against 50 of
   ``EmptyOperator`` (which the scheduler marks done without running them) and 50 of a trivial operator
   that does run (``mapped_dags.py``), on a fresh SQLite metadata DB; ms per task instance. No target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import runpy
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from unittest import mock
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    Measure = Callable[[], float]
    Send = Callable[[list[str]], list[str]]  # recipients -> the ids of their queued cards

T = TypeVar("T")

# ---- sizes, repeats and targets ------------------------------------------------------------------

IMPORT_ROUNDS = 7
CEILING_REQUESTS = 500
CEILING_ROUNDS = 3
SEND_CALLS = 300
SEND_ROUNDS = 9
SEND_WARM_UP = 20
FAN_OUT_RECIPIENTS = 200
FAN_OUT_DELAY = 0.02
FAN_OUT_MAX_IN_FLIGHT = 20
FAN_OUT_ROUNDS = 3
FAN_OUT_SLOW_DELAY = 0.1  # a diagnostic run at a more realistic gateway latency
FAN_OUT_SLOW_ROUNDS = 2
MEMORY_SENDS = 1_000
MEMORY_ROUNDS = 3
DAG_MAP_LENGTH = 50
DAG_ROUNDS = 3

IMPORT_MAX_ADDED = 0.05
SEND_MAX_RATIO = 1.05
FAN_OUT_MIN_SPEEDUP = 8.0
FAN_OUT_MAX_OVER_IDEAL = 1.5
MEMORY_MAX_ADDED_MB = 10.0

# ---- everything else -----------------------------------------------------------------------------

REQUEST_TIMEOUT = 30.0  # the hook's default, given to the bare clients too
SUBPROCESS_TIMEOUT = 300
CONNECTION_VARIABLE = "AIRFLOW_CONN_CHATAPI_DEFAULT"
STAND_IN_MODULE = "airflow_provider_chatapi.testing"
DAG_FILE = Path(__file__).resolve().parent / "mapped_dags.py"

BASELINE_IMPORT = "from airflow.sdk import BaseOperator"
PROVIDER_IMPORT = "from airflow_provider_chatapi.operators.chatapi import SendContactOperator"
OFFICIAL_OPERATORS = {
    "apache-airflow-providers-telegram": "from airflow.providers.telegram.operators.telegram import TelegramOperator",
    "apache-airflow-providers-slack": "from airflow.providers.slack.operators.slack import SlackAPIPostOperator",
}
# Run in a fresh interpreter: the baseline, then the statement; prints the total and the statement's share.
IMPORT_PROBE = """\
import time
start = time.perf_counter()
{baseline}
loaded = time.perf_counter()
{statement}
end = time.perf_counter()
print(end - start, end - loaded)
"""

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


def chatapi_default(connection: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """Point the ``chatapi_default`` connection at a gateway while the block runs."""
    return mock.patch.dict(os.environ, {CONNECTION_VARIABLE: json.dumps(connection)})


def send_target(connection: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The ``sendContact`` URL and query parameters for a bare client."""
    return f"{connection['host']}/sendContact", {"token": connection["password"]}


# ---- 1. Import cost at DAG parse -----------------------------------------------------------------


def import_times(statement: str) -> tuple[float, float]:
    """(seconds for the baseline and the statement, seconds for the statement alone), fresh interpreter."""
    code = IMPORT_PROBE.format(baseline=BASELINE_IMPORT, statement=statement or "pass")
    command = [sys.executable, "-c", code]
    finished = subprocess.run(command, capture_output=True, text=True, check=True, timeout=SUBPROCESS_TIMEOUT)
    total, alone = finished.stdout.split()[-2:]
    return float(total), float(alone)


def bench_imports() -> list[Verdict]:
    heading(f"1. Import cost at DAG parse ({IMPORT_ROUNDS} fresh interpreters each, alternating)")
    statements = {"baseline": "", "SendContactOperator": PROVIDER_IMPORT}
    for distribution, statement in OFFICIAL_OPERATORS.items():
        if version_of(distribution):
            statements[statement.rsplit(" ", 1)[1]] = statement
        else:
            print(f"  {distribution}: not installed")
    for statement in statements.values():
        import_times(statement)  # warm the page cache and let Airflow write its config, untimed
    runs = interleaved(
        IMPORT_ROUNDS, {name: partial(import_times, statement) for name, statement in statements.items()}
    )
    baseline = Sample(f"{BASELINE_IMPORT} (baseline)", column(runs.pop("baseline"), 0))
    print(baseline.line())
    verdicts = []
    for name, times in runs.items():
        total = Sample(f"baseline + {name}", column(times, 0))
        alone = Sample(f"  {name} alone, after it", column(times, 1))
        print_samples(total, alone)
        ratio = (baseline.median + alone.median) / baseline.median
        spread = max(*baseline.values, *total.values) - min(*baseline.values, *total.values)
        print(
            f"  {name} adds {alone.median * 1e3:.1f} ms: {ratio:.4f}x the baseline ({(ratio - 1) * 100:+.2f} %);"
            f" fresh-interpreter medians: {total.median / baseline.median:.3f}x"
            f" ({(total.median - baseline.median) * 1e3:+.0f} ms; rounds spread over {spread * 1e3:,.0f} ms)"
        )
        if name == "SendContactOperator":
            ok = judge(f"target: under +{IMPORT_MAX_ADDED:.0%}", ratio - 1 < IMPORT_MAX_ADDED)
            measured = f"+{alone.median * 1e3:.1f} ms on {baseline.median * 1e3:,.0f} ms"
            verdicts.append(
                Verdict("1 import at DAG parse", measured, f"{ratio:.3f}x", f"< +{IMPORT_MAX_ADDED:.0%}", ok)
            )
    return verdicts


# ---- the stand-in's ceiling ----------------------------------------------------------------------


def session_round_trip(connection: dict[str, Any], count: int) -> float:
    """Seconds per request of ``count`` sends through one bare ``requests.Session``."""
    import requests

    url, params = send_target(connection)
    with requests.Session() as session:
        start = time.perf_counter()
        for index in range(count):
            session.post(url, params=params, json=wire_body(index), timeout=REQUEST_TIMEOUT).json()
        return (time.perf_counter() - start) / count


def raw_round_trip(connection: dict[str, Any], count: int) -> float:
    """Seconds per request of ``count`` prebuilt requests on one kept-alive socket: the stand-in's own time."""
    url = urlsplit(connection["host"])
    head = (
        f"POST {url.path}/sendContact?token={connection['password']} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    bodies = [json.dumps(wire_body(index)).encode() for index in range(count)]
    prebuilt = [head.format(length=len(body)).encode() + body for body in bodies]
    with socket.create_connection((url.hostname, url.port)) as sock, sock.makefile("rb") as answers:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        for request in prebuilt:
            sock.sendall(request)
            length = 0
            while (line := answers.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            answers.read(length)
        return (time.perf_counter() - start) / count


def bench_ceiling() -> float:
    """Print what a stand-in in its own process serves one sequential client; return its own share, in s."""
    heading(f"Stand-in gateway ceiling ({CEILING_REQUESTS} sequential requests, stand-in in its own process)")
    with stand_in_process() as connection:
        raw_round_trip(connection, CEILING_REQUESTS)  # warm-up
        variants = {"session": session_round_trip, "raw": raw_round_trip}
        results = interleaved(
            CEILING_ROUNDS, {name: partial(measure, connection, CEILING_REQUESTS) for name, measure in variants.items()}
        )
    session = micros("bare requests.Session", results["session"])
    raw = micros("raw socket (the stand-in's own time)", results["raw"])
    print_samples(session, raw, suffix=" per request")
    print(f"  ceiling: {1 / session.median:,.0f} requests/s with requests, {1 / raw.median:,.0f}/s with a raw client")
    return raw.median


# ---- 2. Sync send overhead -----------------------------------------------------------------------


def bench_sync_send(gateway_share: float | None) -> list[Verdict]:
    import requests

    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
    from airflow_provider_chatapi.protocol.sends import build_send_contact
    from airflow_provider_chatapi.testing import StandInGateway

    heading(f"2. Sync send overhead ({SEND_CALLS} sequential sends, {SEND_ROUNDS} rounds, in-process stand-in)")
    phones = [human_phone(index) for index in range(SEND_CALLS)]
    bodies = [wire_body(index) for index in range(SEND_CALLS)]
    with StandInGateway() as gateway:
        connection = json.loads(gateway.connection_json())
        url, params = send_target(connection)

        def per_call(send: Callable[[int], object], count: int) -> float:
            gateway.reset()  # the stand-in's per-send work grows with what it holds
            start = time.perf_counter()
            for index in range(count):
                send(index)
            elapsed = time.perf_counter() - start
            expect(len(gateway.messages) == count, f"the stand-in queued {len(gateway.messages)} of {count} cards")
            return elapsed / count

        def hook_sends(count: int = SEND_CALLS) -> float:
            hook = ChatApiHook()  # fresh: it reads its connection and opens its session on the first send
            return per_call(lambda i: hook.send_contact(HUMAN_CONTACTS, phone=phones[i]), count)

        def bare_sends(post: Callable[..., Any], count: int = SEND_CALLS) -> float:
            return per_call(lambda i: post(url, params=params, json=bodies[i], timeout=REQUEST_TIMEOUT).json(), count)

        def session_sends(count: int = SEND_CALLS) -> float:
            with requests.Session() as session:
                return bare_sends(session.post, count)

        def validation_only() -> float:
            start = time.perf_counter()
            for phone in phones:
                build_send_contact(HUMAN_CONTACTS, phone=phone)
            return (time.perf_counter() - start) / SEND_CALLS

        post_sends = partial(bare_sends, requests.post)
        with chatapi_default(connection):
            for warm_up in (hook_sends, session_sends, post_sends):
                warm_up(SEND_WARM_UP)
            variants: dict[str, Measure] = {
                "hook": hook_sends,
                "session": session_sends,
                "post": post_sends,
                "validation": validation_only,
            }
            results = interleaved(SEND_ROUNDS, variants)
    hook = micros("ChatApiHook.send_contact()", results["hook"])
    floor = micros("bare requests.Session (the floor)", results["session"])
    post = micros("requests.post(), no session", results["post"])
    validation = micros("  hook's validation and normalisation alone", results["validation"])
    print_samples(hook, floor, post, validation, suffix=" per call")
    ratio, added = hook.median / floor.median, hook.median - floor.median
    print(
        f"  the hook adds {added * 1e6:+.0f} µs per call ({validation.median * 1e6:.0f} µs of it validation):"
        f" {ratio:.3f}x the floor; requests.post() is {post.median / floor.median:.2f}x"
    )
    if gateway_share:
        print(f"  the stand-in's own time is ~{gateway_share * 1e6:.0f} µs of the floor's {floor.median * 1e6:.0f} µs")
    ok = judge(f"target: at most {SEND_MAX_RATIO}x the floor", ratio <= SEND_MAX_RATIO)
    measured = f"{hook.median * 1e6:.0f} vs {floor.median * 1e6:.0f} µs per call ({added * 1e6:+.0f} µs)"
    return [Verdict("2 sync send overhead", measured, f"{ratio:.3f}x", f"<= {SEND_MAX_RATIO}x", ok)]


# ---- 3. Async fan-out ----------------------------------------------------------------------------


def timed_sends(send: Callable[[list[str]], list[str]], phones: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for ``send(phones)`` to queue the recipients' cards (checked)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    card_ids = send(phones)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    expect_queued(card_ids, len(phones))
    return elapsed, cpu


def sequential_sends(phones: list[str]) -> list[str]:
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

    hook = ChatApiHook()
    return [hook.send_contact(HUMAN_CONTACTS, phone=phone).id for phone in phones]


def hook_fan_out(phones: list[str]) -> list[str]:
    """One ``asend_to_many`` over ``phones``, with a hook built inside the timing."""
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

    async def send() -> list[str]:
        results = await ChatApiHook().asend_to_many(HUMAN_CONTACTS, phones, max_in_flight=FAN_OUT_MAX_IN_FLIGHT)
        return [result.id for result in results]

    return asyncio.run(send())


def httpx_fan_out(connection: dict[str, Any], phones: list[str]) -> list[str]:
    """The async floor: the same requests, prebuilt, through a bare ``httpx.AsyncClient`` with the same bound."""
    import httpx

    url, params = send_target(connection)
    bodies = [wire_body(index) for index in range(len(phones))]
    limits = httpx.Limits(max_connections=FAN_OUT_MAX_IN_FLIGHT, max_keepalive_connections=FAN_OUT_MAX_IN_FLIGHT)

    async def send_all() -> list[str]:
        in_flight = asyncio.Semaphore(FAN_OUT_MAX_IN_FLIGHT)
        async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT) as client:

            async def send(body: dict[str, Any]) -> str:
                async with in_flight:
                    answer = await client.post(url, params=params, json=body)
                return answer.json()["id"]

            return list(await asyncio.gather(*(send(body) for body in bodies)))

    return asyncio.run(send_all())


def fan_out_slow_gateway(phones: list[str]) -> Sample:
    """Fan-outs against a stand-in answering after :data:`FAN_OUT_SLOW_DELAY`: the same CPU, more waiting."""
    with stand_in_process(delay=FAN_OUT_SLOW_DELAY) as connection, chatapi_default(connection):
        values = [timed_sends(hook_fan_out, phones)[0] for _ in range(FAN_OUT_SLOW_ROUNDS)]
    return Sample(f"asend_to_many, gateway delay {FAN_OUT_SLOW_DELAY * 1e3:.0f} ms", values)


def fan_out_in_process(phones: list[str]) -> tuple[Sample, int, int]:
    """Fan-outs against an in-process stand-in; the most connections and concurrent requests it saw."""
    from airflow_provider_chatapi.testing import StandInGateway

    values, connections, peak = [], 0, 0
    with StandInGateway(delay=FAN_OUT_DELAY) as gateway, chatapi_default(json.loads(gateway.connection_json())):
        for _ in range(FAN_OUT_ROUNDS + 1):  # the first is a warm-up
            gateway.reset()
            values.append(timed_sends(hook_fan_out, phones)[0])
            connections = max(connections, len({request.client_port for request in gateway.requests}))
            peak = max(peak, gateway.peak_in_flight)
    return Sample("asend_to_many, stand-in in this process", values[1:]), connections, peak


def bench_fan_out() -> list[Verdict]:
    heading(
        f"3. Async fan-out ({FAN_OUT_RECIPIENTS} recipients, gateway delay {FAN_OUT_DELAY * 1e3:.0f} ms,"
        f" max_in_flight={FAN_OUT_MAX_IN_FLIGHT}, {FAN_OUT_ROUNDS} rounds, stand-in in its own process)"
    )
    phones = [human_phone(index) for index in range(FAN_OUT_RECIPIENTS)]
    with stand_in_process(delay=FAN_OUT_DELAY) as connection, chatapi_default(connection):
        bare_httpx = partial(httpx_fan_out, connection)
        senders: dict[str, Send] = {"sequential": sequential_sends, "concurrent": hook_fan_out, "httpx": bare_httpx}
        for send in senders.values():
            timed_sends(send, phones[:FAN_OUT_MAX_IN_FLIGHT])  # warm-up
        runs = interleaved(FAN_OUT_ROUNDS, {name: partial(timed_sends, send, phones) for name, send in senders.items()})
    one_by_one = Sample("sequential send_contact()", column(runs["sequential"], 0))
    together = Sample(f"asend_to_many(max_in_flight={FAN_OUT_MAX_IN_FLIGHT})", column(runs["concurrent"], 0))
    client_cpu = Sample("  CPU time of this process per asend_to_many", column(runs["concurrent"], 1))
    floor = Sample("  bare httpx.AsyncClient, same bound (floor)", column(runs["httpx"], 0))
    in_process, connections, peak = fan_out_in_process(phones)
    slow = fan_out_slow_gateway(phones)
    print_samples(one_by_one, together, client_cpu, floor, in_process, slow)

    waves = math.ceil(FAN_OUT_RECIPIENTS / FAN_OUT_MAX_IN_FLIGHT)
    ideal, slow_ideal = waves * FAN_OUT_DELAY, waves * FAN_OUT_SLOW_DELAY
    print(
        f"  with a {FAN_OUT_SLOW_DELAY * 1e3:.0f} ms gateway the ideal is {slow_ideal * 1e3:,.0f} ms:"
        f" {slow.median / slow_ideal:.2f}x"
    )
    honoured = "" if max(connections, peak) <= FAN_OUT_MAX_IN_FLIGHT else ": max_in_flight is NOT honoured"
    print(f"  the in-process stand-in saw {connections} connections, {peak} requests in flight at most{honoured}")
    print(f"  ideal: {waves} waves of {FAN_OUT_MAX_IN_FLIGHT} x {FAN_OUT_DELAY * 1e3:.0f} ms = {ideal * 1e3:.0f} ms;")
    print(
        f"  the client is busy {client_cpu.median / together.median:.0%} of the time"
        f" ({client_cpu.median / len(phones) * 1e6:,.0f} µs of CPU per recipient); bare httpx is"
        f" {floor.median / ideal:.2f}x the ideal, asend_to_many {together.median / floor.median:.2f}x bare httpx"
    )
    speedup, over_ideal = one_by_one.median / together.median, together.median / ideal
    fast_ok = speedup >= FAN_OUT_MIN_SPEEDUP
    ideal_ok = over_ideal <= FAN_OUT_MAX_OVER_IDEAL
    judge(f"{speedup:.1f}x faster than sequential (target >= {FAN_OUT_MIN_SPEEDUP:.0f}x)", fast_ok)
    judge(f"{over_ideal:.2f}x the ideal (target <= {FAN_OUT_MAX_OVER_IDEAL}x)", ideal_ok)
    measured = f"{together.median * 1e3:.0f} vs {one_by_one.median * 1e3:,.0f} ms sequential; ideal {ideal * 1e3:.0f}"
    return [
        Verdict("3a async fan-out speed-up", measured, f"{speedup:.1f}x", f">= {FAN_OUT_MIN_SPEEDUP:.0f}x", fast_ok),
        Verdict("3b async fan-out vs ideal", measured, f"{over_ideal:.2f}x", f"<= {FAN_OUT_MAX_OVER_IDEAL}x", ideal_ok),
    ]


# ---- 4. Memory -----------------------------------------------------------------------------------


def resident_kib() -> int:
    """This process's resident set now, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_child(sends: int) -> None:
    """Child process: import the operator and the hook, send ``sends`` cards; print peak and final RSS, KiB."""
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
    from airflow_provider_chatapi.operators.chatapi import SendContactOperator  # noqa: F401 (imported to be measured)

    if sends:
        hook = ChatApiHook()
        expect_queued([hook.send_contact(HUMAN_CONTACTS, phone=human_phone(i)).id for i in range(sends)], sends)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resident_kib())


def child_rss(sends: int, connection: dict[str, Any]) -> tuple[float, float]:
    """Peak and final RSS in bytes of a child that imports the provider and sends ``sends`` cards."""
    finished = subprocess.run(
        [sys.executable, __file__, "--child", "memory", "--sends", str(sends)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, CONNECTION_VARIABLE: json.dumps(connection)},
        timeout=SUBPROCESS_TIMEOUT,
    )
    peak, final = finished.stdout.split()[-2:]
    return int(peak) * 1024, int(final) * 1024  # ru_maxrss and VmRSS are in KiB on Linux


def bench_memory() -> list[Verdict]:
    heading(f"4. Memory (peak RSS; {MEMORY_SENDS:,} sends vs none, {MEMORY_ROUNDS} processes each)")
    with stand_in_process() as connection:
        variants = {"idle": partial(child_rss, 0, connection), "sending": partial(child_rss, MEMORY_SENDS, connection)}
        runs = interleaved(MEMORY_ROUNDS, variants)
    labels = {"idle": "imports only (baseline)", "sending": f"imports + {MEMORY_SENDS:,} send_contact()"}
    peaks = {name: megabytes(f"{labels[name]}, peak", column(runs[name], 0)) for name in runs}
    finals = {name: megabytes(f"{labels[name]}, at exit", column(runs[name], 1)) for name in runs}
    print_samples(*peaks.values(), *finals.values())
    idle, sending, idle_now, sending_now = peaks["idle"], peaks["sending"], finals["idle"], finals["sending"]
    added, ratio = (sending.median - idle.median) / 1e6, sending.median / idle.median
    held = (sending_now.median - idle_now.median) / 1e6
    print(f"  added: {added:+.1f} MB at the peak ({ratio:.3f}x), {held:+.1f} MB still resident at exit")
    if held > max(added, MEMORY_MAX_ADDED_MB / 2):
        print("  the import peak hides much of what the sends hold: the resident figures matter more here")
    ok = judge(f"target: under {MEMORY_MAX_ADDED_MB:.0f} MB added to the peak", added < MEMORY_MAX_ADDED_MB)
    measured = (
        f"{added:+.1f} MB peak ({sending.median / 1e6:.0f} vs {idle.median / 1e6:.0f} MB), {held:+.1f} MB at exit"
    )
    return [Verdict("4 memory, 1,000 sends", measured, f"{ratio:.3f}x", f"< +{MEMORY_MAX_ADDED_MB:.0f} MB", ok)]


# ---- 5. DAG level --------------------------------------------------------------------------------

DAG_VARIANTS = {
    "empty": "EmptyOperator (never runs)",
    "noop": "trivial operator (runs)",
    "chatapi": "SendContactOperator",
}


def time_dag_test(dag: Any) -> float:
    """Seconds for one successful ``dag.test()``."""
    start = time.perf_counter()
    dag_run = dag.test()
    elapsed = time.perf_counter() - start
    expect(dag_run.state == "success", f"{dag.dag_id} ended {dag_run.state}")
    return elapsed


def dag_child(dag_file: Path, rounds: int, out: Path) -> None:
    """Child process: ``dag.test()`` each DAG of ``dag_file`` once to warm up, then ``rounds`` times each."""
    from airflow_provider_chatapi.testing import StandInGateway

    namespace = runpy.run_path(str(dag_file))
    tests = {name: partial(time_dag_test, namespace[f"{name}_dag"]) for name in DAG_VARIANTS}
    with StandInGateway() as gateway, chatapi_default(json.loads(gateway.connection_json())):
        for test in tests.values():
            test()  # warm-up
        results = interleaved(rounds, tests)
        sent = len(gateway.messages)
    expect(sent == (rounds + 1) * DAG_MAP_LENGTH, f"the stand-in queued {sent} cards")
    out.write_text(json.dumps(results))


def bench_dag(home: Path) -> list[Verdict]:
    heading(f"5. DAG level (dag.test() of {DAG_MAP_LENGTH} mapped task instances, {DAG_ROUNDS} rounds, SQLite)")
    dags_folder = home / "dags"
    dags_folder.mkdir(parents=True)
    shutil.copy(DAG_FILE, dags_folder)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "CHATAPI_BENCH_MAP_LENGTH": str(DAG_MAP_LENGTH),
    }
    log, out = home / "airflow.log", home / "results.json"
    child = [sys.executable, __file__, "--child", "dags", "--dag-file", str(dags_folder / DAG_FILE.name)]
    steps = {
        "airflow db migrate": [sys.executable, "-m", "airflow", "db", "migrate"],
        "airflow dags reserialize": [sys.executable, "-m", "airflow", "dags", "reserialize"],
        "dag.test(), warm-up and rounds": [*child, "--rounds", str(DAG_ROUNDS), "--out", str(out)],
    }
    for step, command in steps.items():
        start = time.perf_counter()
        with log.open("a") as output:
            finished = subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT, env=env, timeout=SUBPROCESS_TIMEOUT, check=False
            )
        expect(finished.returncode == 0, f"{step} failed:\n{log.read_text()[-3000:]}")
        print(f"  {step}: {time.perf_counter() - start:.1f} s", flush=True)
    results = json.loads(out.read_text())
    print_samples(*(Sample(f"{label}, whole run", results[name], "s", 1) for name, label in DAG_VARIANTS.items()))
    per_task = {name: statistics.median(results[name]) / DAG_MAP_LENGTH * 1e3 for name in DAG_VARIANTS}
    for name, label in DAG_VARIANTS.items():
        print(f"  {label + ', per task instance':<46} median {per_task[name]:>7.1f} ms")
    ours, empty, noop = per_task["chatapi"], per_task["empty"], per_task["noop"]
    print(f"  SendContactOperator: {ours - empty:+.1f} ms per task instance over EmptyOperator;")
    print(f"  of that, running a task at all: {noop - empty:+.1f} ms; sending a card: {ours - noop:+.1f} ms")
    measured = f"{ours:.1f} vs {empty:.1f} ms per task ({ours - empty:+.1f} ms; {ours - noop:+.1f} ms over a no-op)"
    return [Verdict("5 DAG level, 50 mapped", measured, f"{ours / empty:.1f}x", "none (report)", None)]


# ---- main ----------------------------------------------------------------------------------------


def main(only: set[int]) -> int:
    started = time.perf_counter()
    home = Path(tempfile.mkdtemp(prefix="chatapi-bench-"))
    # Airflow reads its configuration at import: a private home keeps ~/airflow untouched.
    os.environ.update(AIRFLOW_HOME=str(home / "main"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    os.environ.pop(CONNECTION_VARIABLE, None)
    print("airflow-provider-chatapi benchmarks")
    for line in machine():
        print(f"  {line}")
    items: dict[int, Callable[[], list[Verdict]]] = {
        1: bench_imports,
        2: lambda: bench_sync_send(bench_ceiling()),
        3: bench_fan_out,
        4: bench_memory,
        5: lambda: bench_dag(home / "dag"),
    }
    verdicts: list[Verdict] = []
    try:
        for number, bench in items.items():
            if number in only:
                verdicts += bench()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    summary(verdicts)
    print(f"\nFinished in {time.perf_counter() - started:.0f} s (load average now {os.getloadavg()[0]:.2f}).")
    return 1 if any(verdict.ok is False for verdict in verdicts) else 0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", default="1,2,3,4,5", help="comma-separated items to run, e.g. 2,3")
    parser.add_argument("--child", choices=["memory", "dags"], help=argparse.SUPPRESS)
    parser.add_argument("--sends", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dag-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=DAG_ROUNDS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    if arguments.child == "memory":
        memory_child(arguments.sends)
    elif arguments.child == "dags":
        dag_child(arguments.dag_file, arguments.rounds, arguments.out)
    else:
        sys.exit(main({int(item) for item in arguments.only.split(",")}))
