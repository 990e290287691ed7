"""6. A 10,000-recipient fan-out with its exactly-once record.

``asend_to_many(contacts, recipients, max_in_flight=20, ledger=BatchLedger(store))`` to 10,000
recipients, where ``store`` stands for Airflow 3.3's ``context["task_state_store"]``: an in-memory store
that keeps each value as JSON text, as a real one does. Four figures:

- 6a, seconds per 1,000 recipients against a stand-in in its own process (no delay), with the ledger and
  without, side by side (each round on a fresh stand-in, which keeps every card). No target.
- 6b, peak RSS (``ru_maxrss``) of a fresh process that fans out to 10,000 with the ledger, against one
  that imports the same and sends nothing (as item 4). Target: at most +50 MB.
- 6c, what the record costs the store: ``len(json.dumps(store contents))`` after the fan-out, per
  recipient, and the largest value written to one key (Airflow warns above 65,535 bytes). Target: at most
  100 bytes per recipient.
- 6d, a crash at half-way: a child fans out to 10,000 over a store persisted to a JSON file on every
  ``set`` and is SIGKILLed once half the cards are queued at a stand-in in this process; a second child
  retries (``first_try=False``, the same generation) over the same file. Target: at most 100 gateway
  lookups (``GET messages``, ``GET showMessagesQueue``) in the retry; and (6e) every recipient ends
  with exactly one card, no duplicate, none lost.

The measured processes are this file run as a script (``--memory idle|fan-out``, ``--crash-store F``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    CONNECTION_VARIABLE,
    Sample,
    Verdict,
    chatapi_default,
    child_stdout,
    expect,
    expect_queued,
    heading,
    human_phone,
    interleaved,
    judge,
    megabytes,
    print_samples,
    stand_in_process,
    wire_phone,
)
from item_fan_out import FAN_OUT_MAX_IN_FLIGHT, hook_fan_out, timed_sends

BIG_RECIPIENTS = 10_000
SPEED_ROUNDS = 2
MEMORY_ROUNDS = 2
MAX_ADDED_MB = 50.0
MAX_RECORD_BYTES = 100.0
AIRFLOW_VALUE_WARNING = 65_535  # bytes per value above which Airflow warns
CRASH_RECIPIENTS = 10_000
CRASH_AT = CRASH_RECIPIENTS // 2  # queued cards at which the first try is killed
CRASH_WAIT = 120.0  # seconds the first try may take to get there
MAX_LOOKUPS = 100
LOOKUPS = {("GET", "messages"), ("GET", "showMessagesQueue")}


class MemoryStore:
    """A task state store in memory: each value kept as its JSON text; the largest ever written noted."""

    def __init__(self, texts: dict[str, str] | None = None) -> None:
        self.texts = dict(texts or {})
        self.writes = 0
        self.largest = 0

    def get(self, key: str, default: Any = None) -> Any:
        text = self.texts.get(key)
        return default if text is None else json.loads(text)

    def set(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        self.texts[key] = text
        self.writes += 1
        self.largest = max(self.largest, len(text.encode()))

    def contents_bytes(self) -> int:
        """``len(json.dumps(store contents))``: every key with its value."""
        return len(json.dumps({key: json.loads(text) for key, text in self.texts.items()}))


class FileStore(MemoryStore):
    """A :class:`MemoryStore` written whole to a JSON file on every ``set`` (atomically: a kill mid-write
    leaves the previous file), and read back from it when created."""

    def __init__(self, path: Path) -> None:
        super().__init__(json.loads(path.read_text()) if path.exists() else None)
        self.path = path

    def set(self, key: str, value: Any) -> None:
        super().set(key, value)
        partial_file = self.path.with_suffix(".tmp")
        partial_file.write_text(json.dumps(self.texts))
        os.replace(partial_file, self.path)


def ledger_over(store: MemoryStore, *, first_try: bool = True) -> Any:
    from airflow_provider_chatapi._protocol.ledger import BatchLedger

    return BatchLedger(store, first_try=first_try, generation=0)


def phones_to(count: int) -> list[str]:
    return [human_phone(index) for index in range(count)]


# ---- the child processes -------------------------------------------------------------------------


def memory_child(fan_out: bool) -> None:
    """Import what a fan-out task imports; fan out to :data:`BIG_RECIPIENTS` with a ledger if asked. Print the
    peak RSS in KiB."""
    from airflow_provider_chatapi._protocol.ledger import BatchLedger  # noqa: F401 (imported to be measured)
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook  # noqa: F401
    from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator  # noqa: F401

    if fan_out:
        expect_queued(hook_fan_out(phones_to(BIG_RECIPIENTS), ledger_over(MemoryStore())), BIG_RECIPIENTS)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def crash_child(store_file: Path, retry: bool) -> None:
    """Fan out to :data:`CRASH_RECIPIENTS` over ``store_file``; print how it ended, as one JSON line."""
    store = FileStore(store_file)
    try:
        card_ids = hook_fan_out(phones_to(CRASH_RECIPIENTS), ledger_over(store, first_try=not retry))
    except Exception as error:  # reported by the parent, with what the gateway holds
        failures = getattr(error, "failures", {})
        print(json.dumps({"error": f"{type(error).__name__}: {error}"[:600], "failed": len(failures)}))
        return
    print(json.dumps({"error": None, "results": len(card_ids), "store_writes": store.writes}))


# ---- 6a: speed -----------------------------------------------------------------------------------


def timed_big_fan_out(with_ledger: bool, phones: list[str]) -> float:
    """Seconds for one fan-out to ``phones`` against a fresh stand-in in its own process (checked)."""
    with stand_in_process() as connection, chatapi_default(connection):
        ledger = ledger_over(MemoryStore()) if with_ledger else None
        return timed_sends(partial(hook_fan_out, ledger=ledger), phones)[0]


def record_of_one_fan_out(phones: list[str]) -> MemoryStore:
    """The store after one fan-out to ``phones`` with a ledger (untimed)."""
    store = MemoryStore()
    with stand_in_process() as connection, chatapi_default(connection):
        expect_queued(hook_fan_out(phones, ledger_over(store)), len(phones))
    return store


# ---- 6b: memory ----------------------------------------------------------------------------------


def child_peak(mode: str, connection: dict[str, Any]) -> float:
    """Peak RSS in bytes of a fresh child in ``mode`` (``idle`` or ``fan-out``)."""
    return int(child_stdout(__file__, ["--memory", mode], connection).split()[-1]) * 1024  # KiB on Linux


# ---- 6d: a crash at half-way ---------------------------------------------------------------------


def kill_at_half_way(store_file: Path, gateway: Any) -> int:
    """Run the first try and SIGKILL it once :data:`CRASH_AT` cards are queued; how many were then."""
    command = [sys.executable, __file__, "--crash-store", str(store_file)]
    env = {**os.environ, CONNECTION_VARIABLE: gateway.connection_json()}
    output = store_file.with_name("first-try.log")  # a file, not a pipe that nobody reads while it runs
    with output.open("w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + CRASH_WAIT
        while (queued := len(gateway.messages)) < CRASH_AT:
            ended = child.poll()
            expect(ended is None, f"the first try ended ({ended}) at {queued} cards:\n{output.read_text()[-2000:]}")
            expect(time.monotonic() < deadline, f"the first try queued only {queued} cards in {CRASH_WAIT:.0f} s")
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        return queued
    finally:
        child.kill()  # a no-op if it is dead already
        child.wait(timeout=10)


def crash_and_retry() -> dict[str, Any]:
    """The first try killed at half-way, then the retry over the same file store; what the gateway saw."""
    from airflow_provider_chatapi.testing import StandInGateway

    with tempfile.TemporaryDirectory(prefix="chatapi-bench-crash-") as folder, StandInGateway() as gateway:
        store_file = Path(folder) / "task_state_store.json"
        connection = json.loads(gateway.connection_json())
        start = time.perf_counter()
        at_kill = kill_at_half_way(store_file, gateway)
        killed_after = time.perf_counter() - start
        gateway.wait_until_no_open_connections()  # the requests the kill cut short are answered, or dropped
        seen, before = len(gateway.requests), len(gateway.messages)
        record = json.loads(store_file.read_text()) if store_file.exists() else {}
        start = time.perf_counter()
        ended = json.loads(
            child_stdout(__file__, ["--crash-store", str(store_file), "--retry"], connection).splitlines()[-1]
        )
        retry_took = time.perf_counter() - start
        retry_requests = gateway.requests[seen:]
        cards = Counter(message.chat_id for message in gateway.messages)
        expect(not gateway.errors, f"the stand-in failed: {gateway.errors[:3]}")
    expected = {f"{wire_phone(index)}@c.us" for index in range(CRASH_RECIPIENTS)}
    return {
        "at_kill": at_kill,
        "killed_after": killed_after,
        "queued_by_first": before,
        "record_bytes": sum(len(text) for text in record.values()),
        "retry": ended,
        "retry_took": retry_took,
        "lookups": sum((request.method, request.endpoint) in LOOKUPS for request in retry_requests),
        "resent": sum(request.endpoint == "sendContact" for request in retry_requests),
        "duplicated": sum(count > 1 for chat, count in cards.items() if chat in expected),
        "extra_cards": sum(count - 1 for chat, count in cards.items() if chat in expected and count > 1),
        "missing": len(expected - set(cards)),
        "strangers": len(set(cards) - expected),
    }


def report_crash() -> list[Verdict]:
    heading(
        f"6d. A crash at half-way: N = {CRASH_RECIPIENTS:,} recipients, SIGKILL at {CRASH_AT:,} cards queued,"
        " then a retry (first_try=False, same generation) over the same file store; stand-in in this process"
    )
    found = crash_and_retry()
    retry = found["retry"]
    print(
        f"  first try: killed after {found['killed_after']:.1f} s with {found['at_kill']:,} cards queued"
        f" ({found['queued_by_first']:,} once its last requests settled); its file store held"
        f" {found['record_bytes']:,} bytes"
    )
    ending = "completed" if retry["error"] is None else f"FAILED ({retry['failed']:,} sends): {retry['error']}"
    print(f"  retry: {found['retry_took']:.1f} s, {ending}")
    print(
        f"  retry requests: {found['lookups']:,} lookups (GET messages + GET showMessagesQueue,"
        f" {found['lookups'] / CRASH_RECIPIENTS:.2f} per recipient), {found['resent']:,} sendContact"
    )
    print("  means: what a retry after a worker crash costs the gateway before it can resume the batch")
    lost, doubled = found["missing"], found["duplicated"]
    print(
        f"  cards per recipient after the retry: {doubled:,} recipients with duplicates ({found['extra_cards']:,}"
        f" extra cards), {lost:,} recipients with no card, {found['strangers']:,} cards to chats not in the batch"
    )
    exactly_once = lost == doubled == found["strangers"] == 0 and retry["error"] is None
    if not exactly_once:
        print("  !!! EXACTLY-ONCE BROKEN: a recipient got a duplicate, lost its card, or the retry failed !!!")
    lookups_ok = judge(
        f"{found['lookups']:,} lookups in the retry (target <= {MAX_LOOKUPS})", found["lookups"] <= MAX_LOOKUPS
    )
    judge("every recipient ends with exactly one card (no duplicate, none lost)", exactly_once)
    cards = f"{doubled:,} duplicated, {lost:,} lost"
    return [
        Verdict(
            "6d lookups after a crash",
            f"{found['lookups']:,} lookups, {found['resent']:,} resent; {cards}",
            f"{found['lookups'] / MAX_LOOKUPS:.0f}x",
            f"<= {MAX_LOOKUPS} lookups",
            lookups_ok,
        ),
        Verdict("6e one card each after it", cards, "-", "0 dup, 0 lost", exactly_once),
    ]


# ---- the item ------------------------------------------------------------------------------------


def report_speed(phones: list[str]) -> Verdict:
    heading(
        f"6a. {BIG_RECIPIENTS:,}-recipient fan-out (max_in_flight={FAN_OUT_MAX_IN_FLIGHT}, no delay,"
        f" {SPEED_ROUNDS} rounds, a fresh stand-in in its own process each)"
    )
    variants = {"ledger": partial(timed_big_fan_out, True, phones), "bare": partial(timed_big_fan_out, False, phones)}
    runs = interleaved(SPEED_ROUNDS, variants)
    per_thousand = 1000 / len(phones)
    ledger = Sample("asend_to_many + BatchLedger, per 1,000", [t * per_thousand for t in runs["ledger"]], "s", 1)
    bare = Sample("asend_to_many, no ledger, per 1,000", [t * per_thousand for t in runs["bare"]], "s", 1)
    print_samples(ledger, bare)
    ratio = ledger.median / bare.median
    print(f"  the ledger costs {(ledger.median - bare.median) * 1e3:+.0f} ms per 1,000 recipients ({ratio:.2f}x)")
    print("  means: wall time of the fan-out per 1,000 recipients, record kept vs not kept; report only")
    measured = f"{ledger.median:.2f} vs {bare.median:.2f} s per 1,000 (with vs without ledger)"
    return Verdict("6a 10k fan-out speed", measured, f"{ratio:.2f}x", "none (report)", None)


def report_memory() -> Verdict:
    heading(f"6b. Peak RSS of a {BIG_RECIPIENTS:,} fan-out with a ledger vs imports only ({MEMORY_ROUNDS} each)")
    with stand_in_process() as connection:
        variants = {
            "idle": partial(child_peak, "idle", connection),
            "fan-out": partial(child_peak, "fan-out", connection),
        }
        runs = interleaved(MEMORY_ROUNDS, variants)
    idle = megabytes("imports only (baseline), peak", runs["idle"])
    fan_out = megabytes(f"imports + {BIG_RECIPIENTS:,} fan-out + ledger, peak", runs["fan-out"])
    print_samples(idle, fan_out)
    added = (fan_out.median - idle.median) / 1e6
    print(f"  added: {added:+.1f} MB at the peak ({fan_out.median / idle.median:.2f}x)")
    print("  means: the memory a worker needs on top of the task's imports to fan out to 10,000 with a record")
    ok = judge(f"target: at most +{MAX_ADDED_MB:.0f} MB", added <= MAX_ADDED_MB)
    measured = f"{added:+.1f} MB peak ({fan_out.median / 1e6:.0f} vs {idle.median / 1e6:.0f} MB)"
    return Verdict(
        "6b memory, 10k fan-out", measured, f"{fan_out.median / idle.median:.2f}x", f"<= +{MAX_ADDED_MB:.0f} MB", ok
    )


def report_record(phones: list[str]) -> Verdict:
    heading(f"6c. The record in the store after a {BIG_RECIPIENTS:,} fan-out")
    store = record_of_one_fan_out(phones)
    total = store.contents_bytes()
    per_recipient = total / len(phones)
    over = " (above Airflow's warning)" if store.largest > AIRFLOW_VALUE_WARNING else ""
    print(
        f"  {total:,} bytes in {len(store.texts)} key(s), {store.writes} write(s): {per_recipient:.0f} bytes per"
        f" recipient; largest value written to one key: {store.largest:,} bytes{over}"
    )
    print("  means: how much a batch's exactly-once record weighs in Airflow's task state store")
    ok = judge(f"target: at most {MAX_RECORD_BYTES:.0f} bytes per recipient", per_recipient <= MAX_RECORD_BYTES)
    measured = f"{per_recipient:.0f} B per recipient; largest value {store.largest:,} B"
    return Verdict(
        "6c record bytes", measured, f"{per_recipient / MAX_RECORD_BYTES:.1f}x", f"<= {MAX_RECORD_BYTES:.0f} B", ok
    )


def run() -> list[Verdict]:
    phones = phones_to(BIG_RECIPIENTS)
    return [report_speed(phones), report_memory(), report_record(phones), *report_crash()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Child process of item 6: a fan-out, measured or crashed.")
    parser.add_argument("--memory", choices=("idle", "fan-out"), help="print the peak RSS of this fan-out, or none")
    parser.add_argument("--crash-store", type=Path, help="fan out over a store persisted to this JSON file")
    parser.add_argument("--retry", action="store_true", help="with --crash-store: a retry (first_try=False)")
    arguments = parser.parse_args()
    if arguments.crash_store:
        crash_child(arguments.crash_store, arguments.retry)
    else:
        memory_child(arguments.memory == "fan-out")
