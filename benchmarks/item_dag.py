"""5. DAG level.

``dag.test()`` of 50 mapped task instances of ``SendContactOperator`` against 50 of ``EmptyOperator``
(which the scheduler marks done without running them) and 50 of a trivial operator that does run
(``mapped_dags.py``), on a fresh SQLite metadata DB; ms per task instance. No target.

The DAGs run in a child process (this file run as a script, ``--dag-file F --rounds N --out F``) with
its own ``AIRFLOW_HOME``, migrated and reserialized first.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    SUBPROCESS_TIMEOUT,
    Sample,
    Verdict,
    chatapi_default,
    expect,
    heading,
    interleaved,
    print_samples,
)

DAG_MAP_LENGTH = 50
DAG_ROUNDS = 3
DAG_FILE = Path(__file__).resolve().parent / "mapped_dags.py"

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


def run(home: Path) -> list[Verdict]:
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
    child = [sys.executable, __file__, "--dag-file", str(dags_folder / DAG_FILE.name)]
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Child process of item 5: dag.test() the DAGs of a file.")
    parser.add_argument("--dag-file", type=Path, required=True, help="the copy of mapped_dags.py to run")
    parser.add_argument("--rounds", type=int, default=DAG_ROUNDS, help="timed rounds after the warm-up")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results, as JSON")
    arguments = parser.parse_args()
    dag_child(arguments.dag_file, arguments.rounds, arguments.out)
