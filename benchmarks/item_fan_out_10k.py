"""6. A 10,000-recipient fan-out with its exactly-once record.

``asend_to_many(contacts, recipients, max_in_flight=20, ledger=BatchLedger(store))`` to 10,000
recipients, where ``store`` stands for Airflow 3.3's ``context["task_state_store"]``: an in-memory store
that keeps each value as JSON text, as a real one does. Four figures:

- 6a, seconds per 1,000 recipients against a stand-in in its own process (no delay), with the ledger and
  without, side by side. No target.
- 6b, peak RSS (``ru_maxrss``) of a process that fans out to 10,000 with the ledger, against one that
  imports the same and sends nothing (as item 4; the RSS at exit is printed too). Target: at most +50 MB.
- 6c, what the record costs the store: ``len(json.dumps(store contents))`` after the fan-out, per
  recipient, and the largest value written to one key (Airflow warns above 65,535 bytes). Target: at most
  100 bytes per recipient.
- 6d, a crash at half-way: a child fans out to 10,000 over a store persisted to a JSON file on every
  ``set`` and is SIGKILLed once half the cards are queued at a stand-in in this process; a second child
  retries (``first_try=False``, the same generation) over the same file. Target: at most 100 gateway
  lookups (``GET messages``, ``GET showMessagesQueue``) in the retry; and (6e) every recipient ends
  with exactly one card, no duplicate, none lost.

6a to 6c come from the same fresh processes, interleaved: ``idle``, ``ledger`` and ``bare`` (no ledger),
each against a fresh stand-in in its own process (it keeps every card, and its work per send grows with
them), each timing its fan-out after its imports. They are this file run as a script (``--fan-out
MODE``); so are the two tries of 6d (``--crash-store F``).
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
    child_stdout,
    expect,
    heading,
    human_phone,
    interleaved,
    judged,
    megabytes,
    print_samples,
    stand_in_process,
    wire_phone,
)
from item_fan_out import FAN_OUT_MAX_IN_FLIGHT, hook_fan_out, timed_sends
from item_memory import resident_kib

BIG_RECIPIENTS = 10_000
ROUNDS = 2
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


def fan_out_child(mode: str) -> None:
    """Import what a fan-out task imports; unless ``idle``, fan out to :data:`BIG_RECIPIENTS`, with a ledger
    over a :class:`MemoryStore` for ``ledger``. Print, as one JSON line, the peak and final RSS (KiB), the
    fan-out's wall and CPU seconds, and what the store holds."""
    from airflow_provider_chatapi._protocol.ledger import BatchLedger  # noqa: F401 (imported to be measured)
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook  # noqa: F401
    from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator  # noqa: F401

    store, seconds, cpu = MemoryStore(), 0.0, 0.0
    if mode != "idle":
        ledger = ledger_over(store) if mode == "ledger" else None
        seconds, cpu = timed_sends(partial(hook_fan_out, ledger=ledger), phones_to(BIG_RECIPIENTS))
    peak, final = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resident_kib()  # before the sums below
    held = {"bytes": store.contents_bytes(), "largest": store.largest, "writes": store.writes, "keys": len(store.texts)}
    print(json.dumps({"peak": peak * 1024, "final": final * 1024, "seconds": seconds, "cpu": cpu, **held}))


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


# ---- 6a to 6c: fresh processes ------------------------------------------------------------------


def fan_out_process(mode: str) -> dict[str, Any]:
    """What a fresh child in ``mode`` (``idle``, ``ledger``, ``bare``) printed, against a fresh stand-in."""
    with stand_in_process() as connection:
        return json.loads(child_stdout(__file__, ["--fan-out", mode], connection).splitlines()[-1])


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


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        start, stand_in_cpu, child_cpu = time.perf_counter(), time.process_time(), children_cpu()
        ended = json.loads(
            child_stdout(__file__, ["--crash-store", str(store_file), "--retry"], connection).splitlines()[-1]
        )
        retry_took = time.perf_counter() - start
        stand_in_cpu, child_cpu = time.process_time() - stand_in_cpu, children_cpu() - child_cpu
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
        "retry_cpu": child_cpu,
        "stand_in_cpu": stand_in_cpu,
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
    print(
        f"  retry: {found['retry_took']:.1f} s ({found['retry_cpu']:.1f} s of its own CPU, the stand-in's"
        f" {found['stand_in_cpu']:.1f} s), {ending}"
    )
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
    cards = f"{doubled:,} duplicated, {lost:,} lost"
    claim = f"{found['lookups']:,} lookups in the retry (target <= {MAX_LOOKUPS})"
    measured = f"{found['lookups']:,} lookups, {found['resent']:,} resent; {cards}"
    ratio, target = f"{found['lookups'] / MAX_LOOKUPS:.0f}x", f"<= {MAX_LOOKUPS} lookups"
    once = "every recipient ends with exactly one card (no duplicate, none lost)"
    few = found["lookups"] <= MAX_LOOKUPS
    return [
        judged("6d lookups after a crash", claim, few, measured=measured, ratio=ratio, target=target),
        judged("6e one card each after it", once, exactly_once, measured=cards, ratio="-", target="0 dup, 0 lost"),
    ]


# ---- the item ------------------------------------------------------------------------------------


def report_speed(runs: dict[str, list[dict[str, Any]]]) -> Verdict:
    per_thousand = 1000 / BIG_RECIPIENTS

    def per_1000(mode: str, key: str, label: str) -> Sample:
        return Sample(label, [run[key] * per_thousand for run in runs[mode]], "s", 1)

    ledger = per_1000("ledger", "seconds", "6a. asend_to_many + BatchLedger, per 1,000")
    bare = per_1000("bare", "seconds", "6a. asend_to_many, no ledger, per 1,000")
    cpu = per_1000("ledger", "cpu", "  CPU time of the client, with the ledger")
    bare_cpu = per_1000("bare", "cpu", "  CPU time of the client, no ledger")
    print_samples(ledger, bare, cpu, bare_cpu)
    ratio = ledger.median / bare.median
    print(f"  the ledger costs {(ledger.median - bare.median) * 1e3:+.0f} ms per 1,000 recipients ({ratio:.2f}x)")
    print("  means: wall time of the fan-out per 1,000 recipients, record kept vs not kept; report only")
    measured = f"{ledger.median:.2f} vs {bare.median:.2f} s per 1,000 (with vs without ledger)"
    return Verdict("6a 10k fan-out speed", measured, f"{ratio:.2f}x", "none (report)", None)


def report_memory(runs: dict[str, list[dict[str, Any]]]) -> Verdict:
    def figure(mode: str, key: str, label: str) -> Sample:
        return megabytes(label, [run[key] for run in runs[mode]])

    idle, fan_out = figure("idle", "peak", "6b. imports only, peak"), figure("ledger", "peak", "6b. + fan-out, peak")
    idle_now, fan_out_now = (
        figure("idle", "final", "  imports only, at exit"),
        figure("ledger", "final", "  + fan-out, at exit"),
    )
    print_samples(idle, fan_out, idle_now, fan_out_now)
    added, held = (fan_out.median - idle.median) / 1e6, (fan_out_now.median - idle_now.median) / 1e6
    print(
        f"  added: {added:+.1f} MB at the peak ({fan_out.median / idle.median:.2f}x), {held:+.1f} MB resident at exit"
    )
    print("  means: the memory a worker needs on top of the task's imports to fan out to 10,000 with a record")
    peaks = f"{fan_out.median / 1e6:.0f} vs {idle.median / 1e6:.0f} MB"
    claim, ratio = f"target: at most +{MAX_ADDED_MB:.0f} MB at the peak", f"{fan_out.median / idle.median:.2f}x"
    measured = f"{added:+.1f} MB peak ({peaks}), {held:+.1f} at exit"
    target = f"<= +{MAX_ADDED_MB:.0f} MB"
    return judged("6b memory, 10k fan-out", claim, added <= MAX_ADDED_MB, measured=measured, ratio=ratio, target=target)


def report_record(run: dict[str, Any]) -> Verdict:
    per_recipient, largest = run["bytes"] / BIG_RECIPIENTS, run["largest"]
    over = " (above Airflow's warning)" if largest > AIRFLOW_VALUE_WARNING else ""
    print(
        f"  6c. the store holds {run['bytes']:,} bytes in {run['keys']} key(s) after {run['writes']} write(s):"
        f" {per_recipient:.0f} bytes per recipient; largest value written to one key: {largest:,} bytes{over}"
    )
    print("  means: how much a batch's exactly-once record weighs in Airflow's task state store")
    claim, ok = f"target: at most {MAX_RECORD_BYTES:.0f} bytes per recipient", per_recipient <= MAX_RECORD_BYTES
    measured = f"{per_recipient:.0f} B per recipient; largest value {largest:,} B"
    ratio, target = f"{per_recipient / MAX_RECORD_BYTES:.1f}x", f"<= {MAX_RECORD_BYTES:.0f} B"
    return judged("6c record bytes", claim, ok, measured=measured, ratio=ratio, target=target)


def report_processes() -> list[Verdict]:
    heading(
        f"6a-6c. {BIG_RECIPIENTS:,}-recipient fan-out (max_in_flight={FAN_OUT_MAX_IN_FLIGHT}, no delay; fresh"
        f" processes, {ROUNDS} rounds of: imports only, with a ledger, without; a fresh stand-in each)"
    )
    runs = interleaved(ROUNDS, {mode: partial(fan_out_process, mode) for mode in ("ledger", "bare", "idle")})
    for mode in ("ledger", "bare"):
        expect(all(run["seconds"] > 0 for run in runs[mode]), f"the {mode} fan-out did not run")
    return [report_speed(runs), report_memory(runs), report_record(runs["ledger"][-1])]


def run() -> list[Verdict]:
    return [*report_processes(), *report_crash()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Child process of item 6: a fan-out, measured or crashed.")
    parser.add_argument("--fan-out", choices=("idle", "ledger", "bare"), help="6a-6c: print what it took")
    parser.add_argument("--crash-store", type=Path, help="6d: fan out over a store persisted to this JSON file")
    parser.add_argument("--retry", action="store_true", help="with --crash-store: a retry (first_try=False)")
    arguments = parser.parse_args()
    if arguments.crash_store:
        crash_child(arguments.crash_store, arguments.retry)
    else:
        fan_out_child(arguments.fan_out or "idle")
