"""5. DAG level.

``dag.test()`` of 50 mapped task instances of ``SendContactOperator`` against 50 of the http provider's
``HttpOperator`` making the same ``sendContact`` request to the same stand-in gateway (the anchor), 50 of
``EmptyOperator`` (which the scheduler marks done without running them) and 50 of a trivial operator
that does run (``mapped_dags.py``), on a fresh SQLite metadata DB; ms per task instance. Target:
``SendContactOperator`` at most 1.2x ``HttpOperator`` per task instance.

The DAGs run in a child process (this file run as a script, ``--dag-file F --rounds N --out F``) with
its own ``AIRFLOW_HOME``, migrated and reserialized first. Its warm-up runs count the calls each DAG's
task instances make to their ``context["task_state_store"]``, which says whether ``dag.test()`` gives
the operator a store at all (Airflow 3.3+ does) and how often the ledger reads and writes it, and check
that both senders put the same request on the wire.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from harness import (
    SUBPROCESS_TIMEOUT,
    Sample,
    Verdict,
    chatapi_default,
    expect,
    heading,
    interleaved,
    judged,
    print_samples,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DAG_MAP_LENGTH = 50
DAG_ROUNDS = 5
DAG_FILE = Path(__file__).resolve().parent / "mapped_dags.py"
TARGET_OVER_HTTP = 1.2
HTTP_CONNECTION_VARIABLE = "AIRFLOW_CONN_CHATAPI_HTTP"  # mapped_dags.HTTP_CONN_ID
STORE_ACCESSOR = "airflow.sdk.execution_time.context.TaskStateStoreAccessor"

DAG_VARIANTS = {
    "empty": "EmptyOperator (never runs)",
    "noop": "trivial operator (runs)",
    "http": "HttpOperator (same request)",
    "chatapi": "SendContactOperator",
}


def time_dag_test(dag: Any) -> float:
    """Seconds for one successful ``dag.test()``."""
    start = time.perf_counter()
    dag_run = dag.test()
    elapsed = time.perf_counter() - start
    expect(dag_run.state == "success", f"{dag.dag_id} ended {dag_run.state}")
    return elapsed


@contextlib.contextmanager
def counting_store_calls() -> Iterator[Counter[str]]:
    """Count the ``get`` and ``set`` calls of every task's ``context["task_state_store"]``, by DAG:
    ``"bench_chatapi get"``. Only while the block runs (the warm-up), so the timed rounds run unpatched.
    Before Airflow 3.3 there is no store to count."""
    calls: Counter[str] = Counter()
    try:
        from airflow.sdk.execution_time.context import TaskStateStoreAccessor
    except ImportError:
        yield calls
        return

    def counted(method: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(accessor: Any, *args: Any, **kwargs: Any) -> Any:
            calls[f"{accessor._scope.dag_id} {name}"] += 1
            return method(accessor, *args, **kwargs)

        return call

    get, set_ = TaskStateStoreAccessor.get, TaskStateStoreAccessor.set
    with (
        mock.patch(f"{STORE_ACCESSOR}.get", counted(get, "get")),
        mock.patch(f"{STORE_ACCESSOR}.set", counted(set_, "set")),
    ):
        yield calls


def same_request(requests: list[Any]) -> bool:
    """Whether the provider's request to the first recipient and HttpOperator's are the same on the wire:
    method, path, query (the token), content type and body bytes."""
    first = [request for request in requests if request.json and request.json.get("phone") == requests[0].json["phone"]]
    shapes = {(r.method, r.path, tuple(sorted(r.query.items())), r.headers.get("content-type"), r.body) for r in first}
    return len(first) == 2 and len(shapes) == 1


def dag_child(dag_file: Path, rounds: int, out: Path) -> None:
    """Child process: ``dag.test()`` each DAG of ``dag_file`` once to warm up, counting its task state
    store calls, then ``rounds`` times each, interleaved."""
    from airflow_provider_chatapi.testing import StandInGateway

    namespace = runpy.run_path(str(dag_file))
    tests = {name: partial(time_dag_test, namespace[f"{name}_dag"]) for name in DAG_VARIANTS}
    with StandInGateway() as gateway, chatapi_default(json.loads(gateway.connection_json())):
        http = json.dumps({"conn_type": "http", "host": gateway.api_url})
        with mock.patch.dict(os.environ, {HTTP_CONNECTION_VARIABLE: http}):
            with counting_store_calls() as store_calls:
                for test in tests.values():
                    test()  # warm-up
            identical = same_request(gateway.requests_to("sendContact"))
            seconds = interleaved(rounds, tests)
        sent = len(gateway.messages)
    expect(sent == 2 * (rounds + 1) * DAG_MAP_LENGTH, f"the stand-in queued {sent} cards")
    expect(identical, "SendContactOperator and HttpOperator did not make the same request")
    out.write_text(json.dumps({"seconds": seconds, "store_calls": store_calls}))


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
    child_results = json.loads(out.read_text())
    results: dict[str, list[float]] = child_results["seconds"]
    print_samples(*(Sample(f"{label}, whole run", results[name], "s", 1) for name, label in DAG_VARIANTS.items()))
    per_task = {name: statistics.median(results[name]) / DAG_MAP_LENGTH * 1e3 for name in DAG_VARIANTS}
    for name, label in DAG_VARIANTS.items():
        print(f"  {label + ', per task instance':<46} median {per_task[name]:>7.1f} ms")
    ours, http, empty, noop = (per_task[name] for name in ("chatapi", "http", "empty", "noop"))
    print(f"  SendContactOperator: {ours - empty:+.1f} ms per task instance over EmptyOperator;")
    print(f"  of that, running a task at all: {noop - empty:+.1f} ms; sending a card: {ours - noop:+.1f} ms")
    print(f"  HttpOperator sending the same card: {http - noop:+.1f} ms over the no-op")
    print_store_calls(child_results["store_calls"])
    ratio = ours / http
    # The rounds are interleaved: each round's own ratio shows how much the machine moved under them.
    rounds = [mine / theirs for mine, theirs in zip(results["chatapi"], results["http"], strict=True)]
    print(
        f"  SendContactOperator vs HttpOperator: {ours:.1f} vs {http:.1f} ms per task instance ({ratio:.2f}x;"
        f" each round's ratio {min(rounds):.2f}x to {max(rounds):.2f}x); no-op {noop:.1f} ms"
    )
    return [
        judged(
            "5 DAG level vs HttpOperator",
            f"SendContactOperator at most {TARGET_OVER_HTTP}x HttpOperator per task instance ({ratio:.2f}x)",
            ratio <= TARGET_OVER_HTTP,
            measured=f"{ours:.1f} vs {http:.1f} ms per task ({ours - http:+.1f} ms; no-op {noop:.1f} ms)",
            ratio=f"{ratio:.2f}x",
            target=f"<= {TARGET_OVER_HTTP}x",
        ),
        Verdict(
            "5 DAG level vs Empty",
            f"{ours:.1f} vs {empty:.1f} ms per task ({ours - empty:+.1f} ms; {ours - noop:+.1f} ms over a no-op)",
            f"{ours / empty:.1f}x",
            "none (report)",
            None,
        ),
    ]


def print_store_calls(calls: dict[str, int]) -> None:
    """Say whether the operators got a ``task_state_store`` in ``dag.test()``, and how often they used it."""
    for name, label in DAG_VARIANTS.items():
        gets, sets = calls.get(f"bench_{name} get", 0), calls.get(f"bench_{name} set", 0)
        if gets or sets or name == "chatapi":
            used = "used one" if gets or sets else "used none (no store in the context?)"
            print(
                f"  task_state_store: {label} {used}: {gets} reads, {sets} writes in the warm-up's"
                f" {DAG_MAP_LENGTH} task instances ({gets / DAG_MAP_LENGTH:.1f} and {sets / DAG_MAP_LENGTH:.1f} each)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Child process of item 5: dag.test() the DAGs of a file.")
    parser.add_argument("--dag-file", type=Path, required=True, help="the copy of mapped_dags.py to run")
    parser.add_argument("--rounds", type=int, default=DAG_ROUNDS, help="timed rounds after the warm-up")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results, as JSON")
    arguments = parser.parse_args()
    dag_child(arguments.dag_file, arguments.rounds, arguments.out)
