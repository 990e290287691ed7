"""The token never reaches a task log file, an exception, a rendered template field or XCom.

On Airflow 3 the drill DAG runs through a real executor (``dag.test(use_executor=True)``), so that each
task runs in its own supervised process and writes a real log file, as in production; the executor talks
to an Airflow API server started on 127.0.0.1 for this module. On 3.0 that path of ``dag.test`` reads
the executor's events through a stale session and marks finished tasks failed ("reported that the task
instance ... [queued] finished with state success"), so there each task's outcome is read from its log
instead of its state, and its LocalExecutor hands a task to a worker before ``dag.test`` commits the
task's ``queued`` state, so a quick worker is refused ("TI was not in a state where it could be marked as
running") and the task never runs; ``queued_first`` commits the state before the hand-over, as the
scheduler and later releases do. Its ``end`` sends one "stop" to each worker it sees alive and waits
for them all; about one run in ten, one worker never got its "stop" and the run hung, so ``queued_first``
sends one more than the workers forked. On Airflow 2 tasks run in-process and the console, which ``dag.test`` does not
mask, stands in for the log files: a stricter check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS

from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import free_port, load_dag, plain_text, run_results

pytestmark = pytest.mark.dag
REAL_LOG_FILES = AIRFLOW_V_3_0_PLUS
TRUE_STATES = AIRFLOW_V_3_3_PLUS or not REAL_LOG_FILES  # see above: Airflow 3.0's executor path of dag.test


@pytest.fixture(scope="module")
def execution_api(airflow_db: Path) -> Iterator[None]:
    if not REAL_LOG_FILES:
        yield
        return
    with queued_first():
        yield from api_server(airflow_db)


@contextmanager
def queued_first() -> Iterator[None]:
    """On Airflow 3.0, commit a task's ``queued`` state before its workload reaches a worker (see above)."""
    from airflow.executors.local_executor import LocalExecutor

    if "queue_workload" not in vars(LocalExecutor):  # 3.1+: queued in memory, handed over at the heartbeat
        yield
        return
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import update

    hand_over = LocalExecutor.queue_workload

    def queue_workload(self: LocalExecutor, workload: Any, session: Any) -> None:
        session.execute(update(TaskInstance).where(TaskInstance.id == str(workload.ti.id)).values(state="queued"))
        session.commit()
        hand_over(self, workload, session=session)

    shut_down = LocalExecutor.end

    def end(self: LocalExecutor) -> None:
        for _ in range(len(self.workers) + 1):  # see above: one more "stop" than the workers it forked
            self.activity_queue.put(None)
        shut_down(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalExecutor, "queue_workload", queue_workload)
        patch.setattr(LocalExecutor, "end", end)
        yield


def api_server(airflow_db: Path) -> Iterator[None]:
    port = free_port()
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    log = (airflow_db / "api-server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the API server did not start; see {log.name}")
                time.sleep(0.3)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        del os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]


WRONG_TOKEN_ECHOED = {  # what each dialect's 401 says about the token it got, once scrubbed
    "chatapi": "HTTP 401: the gateway said 'Wrong token. Please provide token as a GET parameter. Got: ***'",
    "1msg": """HTTP 401: the gateway said 'Wrong token "***" for channel "123456".""",
}


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
def test_no_token_in_logs_errors_rendered_fields_or_xcom(
    airflow_db: Path,
    execution_api: None,
    stand_in: Callable[..., StandInGateway],
    connect: Callable[..., None],
    capfd: pytest.CaptureFixture[str],
    dialect: str,
) -> None:
    tokens = {name: f"leak-check-{name}-5f1c9a" for name in ("wrong_token", "server_error", "read_timeout", "refused")}
    tokens["sent"] = "leak-check-sent-5f1c9a"
    echoing = stand_in(dialect, connection=None, echo_token=True)
    failing = stand_in(dialect, connection=None)
    slow = stand_in(dialect, connection=None, delay=2.0)
    healthy = stand_in(dialect, connection=None, token=tokens["sent"])
    failing.token = tokens["server_error"]
    failing.inject(Fault.server_error(500))
    slow.token = tokens["read_timeout"]

    def connection(name: str, host: str, **extra: object) -> None:  # each its own token; extra names the dialect
        connect(f"chatapi_{name}", host=host, password=tokens[name], extra={"dialect": dialect, **extra})

    connection("wrong_token", echoing.api_url)
    connection("server_error", failing.api_url)
    connection("read_timeout", slow.api_url, timeout=0.3)
    connection("refused", f"http://127.0.0.1:{free_port()}/instance1")
    connection("sent", healthy.api_url)
    dag = load_dag("chatapi_secret_drill")

    run = dag.test(use_executor=REAL_LOG_FILES)

    # Every token did travel to its gateway, and the echoing gateway echoed it back.
    assert echoing.requests[0].query["token"] == tokens["wrong_token"]
    assert [request.query["token"] for request in failing.requests_to("sendContact")] == [tokens["server_error"]]
    assert len(healthy.messages) == 3

    states, xcom = run_results(dag.dag_id, run.run_id)
    if TRUE_STATES:
        assert states == {"wrong_token": "failed", "server_error": "failed", "read_timeout": "failed",
                          "refused": "failed", "sent": "success", "fanned_out": "success"}  # fmt: skip
    if REAL_LOG_FILES:
        logs = {
            path.parent.name.removeprefix("task_id="): path.read_text() for path in log_files(airflow_db, run.run_id)
        }
        assert set(logs) == set(states)
        assert logs["sent"].count("Chat API queued message") == 1
        assert "Chat API fan-out: 2 in " in logs["fanned_out"]  # one summary, the cards' lines at DEBUG
    else:
        console = "".join(capfd.readouterr())
        logs = dict.fromkeys(states, plain_text(console)) | {"the console": console}
    assert WRONG_TOKEN_ECHOED[dialect] in logs["wrong_token"].replace('\\"', '"')  # JSON log lines escape quotes
    assert "HTTP 500" in logs["server_error"] and "MAY HAVE BEEN QUEUED" in logs["server_error"]
    assert "Read timed out" in logs["read_timeout"]
    assert "could not connect" in logs["refused"]

    rendered = rendered_fields(dag.dag_id, run.run_id)
    assert rendered["sent"]["chatapi_conn_id"] == "chatapi_sent"
    for token in tokens.values():
        for task_id, text in logs.items():
            # Also with every space and box line gone: a console that wraps could split a token in two.
            assert token not in text and token not in WRAPPING.sub("", text), f"the token leaked into {task_id}"
        assert token not in repr(rendered)
        assert token not in repr(xcom)


WRAPPING = re.compile(r"[\s│╭╮╰╯─]+")


def log_files(home: Path, run_id: str) -> list[Path]:
    return sorted(path for path in (home / "logs").rglob("*.log") if f"run_id={run_id}" in str(path))


def rendered_fields(dag_id: str, run_id: str) -> dict[str, dict[str, object]]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
            )
        ).all()
        return {row.task_id: dict(row.rendered_fields) for row in rows}
