"""4. Memory.

Peak RSS (``ru_maxrss``) of a process that imports the operator and the hook and sends 1,000 cards,
against one that imports the same and sends nothing. The stand-in runs in its own process, as it keeps
every request it receives. Target: under 10 MB added. The import peaks above what the sends need, so the
RSS at exit of both is printed too: growth that stays under the peak shows there.

Each measured process is this file run as a script (``--sends N``); it imports only the standard library
and ``harness`` before the provider, the same in both variants.
"""

from __future__ import annotations

import argparse
import resource
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    HUMAN_CONTACTS,
    Verdict,
    child_stdout,
    column,
    expect_queued,
    heading,
    human_phone,
    interleaved,
    judge,
    megabytes,
    print_samples,
    stand_in_process,
)

MEMORY_SENDS = 1_000
MEMORY_ROUNDS = 3
MEMORY_MAX_ADDED_MB = 10.0


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
    peak, final = child_stdout(__file__, ["--sends", str(sends)], connection).split()[-2:]
    return int(peak) * 1024, int(final) * 1024  # ru_maxrss and VmRSS are in KiB on Linux


def run() -> list[Verdict]:
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Child process of item 4: import the provider, send, print RSS.")
    parser.add_argument("--sends", type=int, default=0, help="how many cards to send (0: import only)")
    memory_child(parser.parse_args().sends)
