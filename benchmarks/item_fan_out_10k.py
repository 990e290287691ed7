"""6. A 10,000-recipient fan-out with its exactly-once record.

``asend_to_many(contacts, recipients, max_in_flight=20, ledger=Ledger(store, try_number=1))`` to 10,000
recipients, where ``store`` stands for Airflow 3.3's ``context["task_state_store"]``: an in-memory store
that keeps each value as JSON text, as a real one does. The ledger settles or times the batch first (one
``status`` probe on a first try), then writes each wave of ``WAVE_SIZE`` (400) recipients' intents to
key ``chatapi_send_contact:<try>:<n>`` before the wave and its outcomes after it. Four figures:

- 6a, seconds per 1,000 recipients against a stand-in in its own process (no delay), with the ledger and
  without, side by side. No target.
- 6b, peak RSS (``ru_maxrss``) of a process that fans out to 10,000 with the ledger, against one that
  imports the same and sends nothing (as item 4; the RSS at exit is printed too). Target: at most +50 MB.
- 6c, what the record costs the store after the fan-out (the last wave's write carries the done mark):
  the JSON sizes of every key's value, summed, per recipient, and the largest value written
  to one key. Targets: at most 100 bytes per recipient; no key above Airflow's warning (65,535 bytes).
- 6d, a crash at half-way: a child fans out to 10,000 over a store persisted to a JSON file on every
  ``set``, and SIGKILLs itself at the write of the outcomes of the wave holding recipient 5,000 (wave
  12: its 400 cards queued, their ids not on record); a second child retries (try 2, the
  same generation) over the same file. Target: at most 100 gateway lookups (``GET messages``, ``GET
  showMessagesQueue``) in the retry; and (6e) every recipient ends with exactly one card, no duplicate,
  none lost.

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
CRASH_RECIPIENT = CRASH_RECIPIENTS // 2  # the first try dies writing the outcomes of this one's wave
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

    def value_bytes(self) -> int:
        """The JSON sizes of every key's value, summed (what the store keeps, key names aside)."""
        return sum(len(text.encode()) for text in self.texts.values())


class FileStore(MemoryStore):
    """A :class:`MemoryStore` written whole to a JSON file on every ``set`` (atomically: a kill mid-write
    leaves the previous file), and read back from it when created. With ``die_at``, the process SIGKILLs
    itself at the second write to that key (a wave's outcomes, after its intents), before writing it."""

    def __init__(self, path: Path, die_at: str | None = None) -> None:
        super().__init__(json.loads(path.read_text()) if path.exists() else None)
        self.path = path
        self.die_at = die_at
        self.written: Counter[str] = Counter()

    def set(self, key: str, value: Any) -> None:
        self.written[key] += 1
        if key == self.die_at and self.written[key] == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies: nothing after this runs
        super().set(key, value)
        partial_file = self.path.with_suffix(".tmp")
        partial_file.write_text(json.dumps(self.texts))
        os.replace(partial_file, self.path)


def ledger_over(store: MemoryStore, *, first_try: bool = True) -> Any:
    from airflow_provider_chatapi._protocol.record import Ledger

    return Ledger(store, try_number=1 if first_try else 2, generation=0)


def crash_wave() -> tuple[int, int, str]:
    """The wave holding :data:`CRASH_RECIPIENT`: its first and last-plus-one recipient, and its store key."""
    from airflow_provider_chatapi._protocol.record import LEDGER_KEY, WAVE_SIZE

    wave = CRASH_RECIPIENT // WAVE_SIZE
    start = wave * WAVE_SIZE
    return start, min(start + WAVE_SIZE, CRASH_RECIPIENTS), f"{LEDGER_KEY}:1:{wave}"  # try 1's wave


def phones_to(count: int) -> list[str]:
    return [human_phone(index) for index in range(count)]


# ---- the child processes -------------------------------------------------------------------------


def fan_out_child(mode: str) -> None:
    """Import what a fan-out task imports; unless ``idle``, fan out to :data:`BIG_RECIPIENTS`, with a ledger
    over a :class:`MemoryStore` for ``ledger`` (which marks itself done). Print, as one
    JSON line, the peak and final RSS (KiB), the fan-out's wall and CPU seconds, and what the store holds."""
    from airflow_provider_chatapi._protocol.record import Ledger  # noqa: F401 (imported to be measured)
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook  # noqa: F401
    from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator  # noqa: F401

    store, seconds, cpu = MemoryStore(), 0.0, 0.0
    if mode != "idle":
        ledger = ledger_over(store) if mode == "ledger" else None
        seconds, cpu = timed_sends(partial(hook_fan_out, ledger=ledger), phones_to(BIG_RECIPIENTS))
    peak, final = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resident_kib()  # before the sums below
    held = {"bytes": store.value_bytes(), "key_bytes": sum(map(len, store.texts)), "largest": store.largest}
    held.update(writes=store.writes, keys=len(store.texts))
    print(json.dumps({"peak": peak * 1024, "final": final * 1024, "seconds": seconds, "cpu": cpu, **held}))


def crash_child(store_file: Path, retry: bool) -> None:
    """Fan out to :data:`CRASH_RECIPIENTS` over ``store_file`` (a first try dies); print how it ended, in JSON."""
    store = FileStore(store_file, die_at=None if retry else crash_wave()[2])
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


def first_try_dies(store_file: Path, gateway: Any) -> None:
    """Run the first try, which SIGKILLs itself at the crash wave's outcomes (checked)."""
    command = [sys.executable, __file__, "--crash-store", str(store_file)]
    env = {**os.environ, CONNECTION_VARIABLE: gateway.connection_json()}
    output = store_file.with_name("first-try.log")
    with output.open("w") as log:
        ended = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=CRASH_WAIT, check=False)
    died, tail = ended.returncode == -signal.SIGKILL, output.read_text()[-2000:]
    expect(died, f"the first try ended with {ended.returncode}, not SIGKILL:\n{tail}")


def record_census(record: dict[str, str]) -> Counter[str]:
    """Recipients on record as ``sent`` (an id), ``lost`` (an intent only) or ``other``; and ``waves``."""
    from airflow_provider_chatapi._protocol.record import DeliveryRecord

    census: Counter[str] = Counter()
    for wave in map(json.loads, record.values()):
        entries = wave.get("r") if isinstance(wave, dict) else None  # None: the listing, or the :done mark
        census["waves"] += isinstance(entries, dict)
        for chat, entry in entries.items() if isinstance(entries, dict) else ():
            kept = DeliveryRecord.decoded(chat, entry)
            census["lost" if kept and kept.lost else "sent" if kept and kept.message_id else "other"] += 1
    return census


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def crash_and_retry() -> dict[str, Any]:
    """The first try killed at the crash wave's outcomes, then the retry over the same file; what was seen."""
    from airflow_provider_chatapi.testing import StandInGateway

    with tempfile.TemporaryDirectory(prefix="chatapi-bench-crash-") as folder, StandInGateway() as gateway:
        store_file = Path(folder) / "task_state_store.json"
        connection = json.loads(gateway.connection_json())
        start = time.perf_counter()
        first_try_dies(store_file, gateway)
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
    endpoints = Counter(request.endpoint for request in retry_requests)
    return {
        "killed_after": killed_after,
        "queued_by_first": before,
        "record_bytes": sum(len(text) for text in record.values()),
        "census": record_census(record),
        "retry": ended,
        "retry_took": retry_took,
        "retry_cpu": child_cpu,
        "stand_in_cpu": stand_in_cpu,
        "lookups": sum((request.method, request.endpoint) in LOOKUPS for request in retry_requests),
        "endpoints": endpoints,
        "resent": endpoints["sendContact"],
        "duplicated": sum(count > 1 for chat, count in cards.items() if chat in expected),
        "extra_cards": sum(count - 1 for chat, count in cards.items() if chat in expected and count > 1),
        "missing": len(expected - set(cards)),
        "strangers": len(set(cards) - expected),
    }


def report_crash() -> list[Verdict]:
    wave_start, wave_stop, wave_key = crash_wave()
    heading(
        f"6d. A crash at half-way: N = {CRASH_RECIPIENTS:,} recipients, the first try SIGKILLed at the write of"
        f" {wave_key} (outcomes of recipients {wave_start:,}-{wave_stop - 1:,}), then a retry (try 2,"
        " same generation) over the same file store; stand-in in this process"
    )
    found = crash_and_retry()
    retry, census = found["retry"], found["census"]
    print(
        f"  first try: killed after {found['killed_after']:.1f} s with {found['queued_by_first']:,} cards queued"
        f" (expected {wave_stop:,}); its file store held {found['record_bytes']:,} bytes in {census['waves']}"
        f" wave(s): {census['sent']:,} ids, {census['lost']:,} intents without an outcome (expected"
        f" {wave_stop - wave_start:,}), {census['other']:,} other"
    )
    ending = "completed" if retry["error"] is None else f"FAILED ({retry['failed']:,} sends): {retry['error']}"
    print(
        f"  retry: {found['retry_took']:.1f} s ({found['retry_cpu']:.1f} s of its own CPU, imports included;"
        f" the stand-in's {found['stand_in_cpu']:.1f} s), {ending}"
    )
    requests = ", ".join(f"{count:,} {endpoint}" for endpoint, count in sorted(found["endpoints"].items()))
    never_reached = CRASH_RECIPIENTS - wave_stop
    print(
        f"  retry requests: {requests}; lookups (GET messages + GET showMessagesQueue): {found['lookups']:,}"
        f" ({found['lookups'] / CRASH_RECIPIENTS:.4f} per recipient); sendContact {found['resent']:,}"
        f" (the {never_reached:,} recipients never reached: {'yes' if found['resent'] == never_reached else 'NO'})"
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
    measured = f"{found['lookups']:,} lookups ({census['lost']:,} unknown), {found['resent']:,} sent; {cards}"
    ratio, target = f"{found['lookups'] / MAX_LOOKUPS:.2f}x", f"<= {MAX_LOOKUPS} lookups"
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


def report_record(run: dict[str, Any]) -> list[Verdict]:
    per_recipient, largest = run["bytes"] / BIG_RECIPIENTS, run["largest"]
    print(
        f"  6c. the ledger wrote {run['keys']} key(s) in {run['writes']} write(s); their values' JSON:"
        f" {run['bytes']:,} bytes (+{run['key_bytes']:,} of key names), {per_recipient:.1f} bytes per recipient;"
        f" largest value written to one key: {largest:,} bytes ({largest / AIRFLOW_VALUE_WARNING:.0%} of"
        f" Airflow's {AIRFLOW_VALUE_WARNING:,}-byte warning)"
    )
    print("  means: how much a batch's exactly-once record weighs in Airflow's task state store")
    claim, ok = f"target: at most {MAX_RECORD_BYTES:.0f} bytes per recipient", per_recipient <= MAX_RECORD_BYTES
    measured = f"{per_recipient:.1f} B per recipient ({run['bytes']:,} B in {run['keys']} keys)"
    ratio, target = f"{per_recipient / MAX_RECORD_BYTES:.2f}x", f"<= {MAX_RECORD_BYTES:.0f} B"
    small = largest <= AIRFLOW_VALUE_WARNING
    key_claim = f"target: no value above Airflow's {AIRFLOW_VALUE_WARNING:,}-byte warning"
    key_measured = f"{largest:,} B in the largest of {run['writes']} writes"
    key_ratio, key_target = f"{largest / AIRFLOW_VALUE_WARNING:.2f}x", f"<= {AIRFLOW_VALUE_WARNING:,} B"
    return [
        judged("6c record bytes", claim, ok, measured=measured, ratio=ratio, target=target),
        judged("6c largest key vs 64 KB", key_claim, small, measured=key_measured, ratio=key_ratio, target=key_target),
    ]


def report_processes() -> list[Verdict]:
    heading(
        f"6a-6c. {BIG_RECIPIENTS:,}-recipient fan-out (max_in_flight={FAN_OUT_MAX_IN_FLIGHT}, no delay; fresh"
        f" processes, {ROUNDS} rounds of: imports only, with a ledger, without; a fresh stand-in each)"
    )
    runs = interleaved(ROUNDS, {mode: partial(fan_out_process, mode) for mode in ("ledger", "bare", "idle")})
    for mode in ("ledger", "bare"):
        expect(all(run["seconds"] > 0 for run in runs[mode]), f"the {mode} fan-out did not run")
    return [report_speed(runs), report_memory(runs), *report_record(runs["ledger"][-1])]


def run() -> list[Verdict]:
    return [*report_processes(), *report_crash()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Child process of item 6: a fan-out, measured or crashed.")
    parser.add_argument("--fan-out", choices=("idle", "ledger", "bare"), help="6a-6c: print what it took")
    parser.add_argument("--crash-store", type=Path, help="6d: fan out over a store persisted to this JSON file")
    parser.add_argument("--retry", action="store_true", help="with --crash-store: a retry (try 2)")
    arguments = parser.parse_args()
    if arguments.crash_store:
        crash_child(arguments.crash_store, arguments.retry)
    else:
        fan_out_child(arguments.fan_out or "idle")
