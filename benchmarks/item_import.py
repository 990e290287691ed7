"""1. Import cost at DAG parse.

Fresh interpreters importing ``SendContactOperator`` against ones importing only
``airflow.sdk.BaseOperator`` (what any DAG file pays). Each child imports ``BaseOperator`` first and then
the operator (which imports it anyway), timing both, so the operator's own cost is measured inside the
same interpreter, free of the run-to-run noise of a 3 s import; the ratio is ``(baseline + that cost) /
baseline``, and the ratio of the fresh-interpreter medians is printed beside it. That cost is also what a
DAG processor already holding Airflow pays on every parse. Official Slack and Telegram operators are
measured the same way when installed. Target: under +5 %.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial

from harness import (
    SUBPROCESS_TIMEOUT,
    Sample,
    Verdict,
    column,
    heading,
    interleaved,
    judge,
    print_samples,
    version_of,
)

IMPORT_ROUNDS = 7
IMPORT_MAX_ADDED = 0.05

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


def import_times(statement: str) -> tuple[float, float]:
    """(seconds for the baseline and the statement, seconds for the statement alone), fresh interpreter."""
    code = IMPORT_PROBE.format(baseline=BASELINE_IMPORT, statement=statement or "pass")
    command = [sys.executable, "-c", code]
    finished = subprocess.run(command, capture_output=True, text=True, check=True, timeout=SUBPROCESS_TIMEOUT)
    total, alone = finished.stdout.split()[-2:]
    return float(total), float(alone)


def run() -> list[Verdict]:
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
