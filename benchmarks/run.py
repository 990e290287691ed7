"""Benchmarks of airflow-provider-chatapi against the floors it cannot beat. Run with ``scripts/bench``.

``scripts/bench`` runs this file in the newest Airflow environment (``scripts/env.sh``); with the
project installed anywhere, ``python benchmarks/run.py`` does the same; ``--only 2,3`` runs some items
only. It needs only the project's dependencies and its ``test`` extra (item 5's http provider), sends
traffic to 127.0.0.1 only (stand-in gateways of ``airflow_provider_chatapi.testing``: ``StandInGateway``
in this process, or ``python -m airflow_provider_chatapi.testing --port 0 [--delay D]`` in a process of
its own), takes about ten minutes on two cores and exits 1 if a target is missed. The variants of an
item run interleaved, their order rotated each round, so that machine noise hits all of them alike; each
figure is the median of the rounds, with their min and max.

One module per item, each describing its item and its target in its docstring: ``item_import.py`` (1),
``item_sync_send.py`` (the stand-in's ceiling, then 2), ``item_fan_out.py`` (3), ``item_memory.py`` (4),
``item_dag.py`` (5), ``item_fan_out_10k.py`` (6) and ``item_pacing.py`` (7), over ``harness.py``. This
file is run as a script, never imported as a package module: Python puts its folder first on
``sys.path``, so the siblings import as top-level modules, and so do they when items 4, 5 and 6 run
their own file as a child process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import item_dag
import item_fan_out
import item_fan_out_10k
import item_import
import item_memory
import item_pacing
import item_sync_send
from harness import CONNECTION_VARIABLE, Verdict, machine, summary

if TYPE_CHECKING:
    from collections.abc import Callable


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
        1: item_import.run,
        2: item_sync_send.run,
        3: item_fan_out.run,
        4: item_memory.run,
        5: partial(item_dag.run, home / "dag"),
        6: item_fan_out_10k.run,
        7: item_pacing.run,
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
    parser.add_argument("--only", default="1,2,3,4,5,6,7", help="comma-separated items to run, e.g. 2,3")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main({int(item) for item in parse_arguments().only.split(",")}))
