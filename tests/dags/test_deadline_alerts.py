"""A deadline alert's ``ChatApiNotifier`` (example (7)), run by Airflow's own machinery end to end.

Triggering the example DAG creates its run, queued, and Airflow's ``Deadline`` row for its alert. The
deadline is moved into the past (as if the run had sat queued for 30 minutes); the scheduler's step,
``Deadline.handle_miss()``, then queues the callback as a ``CallbackTrigger``; and a real ``airflow
triggerer`` process imports the notifier, builds it with the alert's kwargs and the context Airflow gave,
and awaits it. Beside the example's alert, the same run gets alerts whose templates name what that context
does not hold.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_chatapi.testing import StandInGateway
from tests.helpers import free_port

pytestmark = [
    pytest.mark.dag,
    pytest.mark.skipif(
        not AIRFLOW_V_3_3_PLUS,
        reason="deadline alerts arrived in Airflow 3.1; this drives 3.3's scheduler and triggerer code for them",
    ),
]
SUPPORT_GROUP = "120363041234567890@g.us"
MISSING = {  # a broken alert's kwargs, and what its failure must say
    "params": (
        {"chat_id": "{{ params.support_group }}", "contact_ids": ["79001111111"]},
        "chat_id='{{ params.support_group }}': the template cannot be rendered: 'params' is undefined;"
        " the context holds dag_run, deadline",
    ),
    "ti": (
        {"chat_id": SUPPORT_GROUP, "contact_ids": "{{ ti.task_id }}"},
        "contact_ids='{{ ti.task_id }}': the template cannot be rendered: 'ti' is undefined;"
        " the context holds dag_run, deadline",
    ),
    # The REST API's name is dag_run_id: Airflow's own default environment would render this as "".
    "run_id": (
        {"chat_id": SUPPORT_GROUP, "contact_ids": ["79001111111"], "quoted_message_id": "{{ dag_run.run_id }}"},
        "quoted_message_id='{{ dag_run.run_id }}': the template cannot be rendered:"
        " 'dict object' has no attribute 'run_id'; the context holds dag_run, deadline",
    ),
}


@pytest.fixture
def triggerer(airflow_db: Path, tmp_path: Path) -> Iterator[Callable[[], Callable[[], str]]]:
    """``triggerer()`` starts ``airflow triggerer`` (with the connections set so far) and returns a reader of
    what it has logged. Stopped at teardown."""
    log = tmp_path / "triggerer.log"
    started: list[subprocess.Popen[bytes]] = []

    def start() -> Callable[[], str]:
        # Its log server would otherwise take port 8794, which another test run on this machine may hold.
        env = {**os.environ, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
        with log.open("w") as output:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", "triggerer"],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its trigger runner is a child of its own: stopped with it as a group
                )
            )
        return log.read_text

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def queue_missed_deadlines(dag_id: str) -> tuple[datetime, Any, dict[str, Any]]:
    """Trigger ``dag_id``; make its alert's deadline pass, give the run :data:`MISSING`'s alerts too, and have
    Airflow handle them all as missed. Returns when they fell due, the example's callback id, and the broken
    alerts' callback ids by :data:`MISSING`'s key."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.deadline import Deadline
    from airflow.sdk import AsyncCallback
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier

    run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.TEST)
    assert run is not None
    with create_session() as session:
        (alert,) = session.scalars(select(Deadline).where(Deadline.dagrun_id == run.id)).all()
        assert alert.deadline_time == run.queued_at + timedelta(minutes=30)  # the example's own alert
        due = datetime.now(UTC) - timedelta(seconds=1)
        alert.deadline_time = due
        # Built by Airflow's Deadline, as creating a run builds the example's from its DeadlineAlert.
        broken = {
            name: Deadline(
                deadline_time=due,
                callback=AsyncCallback(ChatApiNotifier, kwargs=kwargs),
                dagrun_id=run.id,
                deadline_alert_id=None,
                dag_id=dag_id,
            )
            for name, (kwargs, _) in MISSING.items()
        }
        session.add_all(broken.values())
        session.flush()
        for deadline in [alert, *broken.values()]:
            deadline.handle_miss(session)  # what the scheduler's loop does with each missed deadline
        return due, alert.callback_id, {name: deadline.callback_id for name, deadline in broken.items()}


def finished_callbacks(ids: list[Any], timeout: float) -> dict[Any, tuple[str, str]]:
    """Each callback's final state and output, once all have one (the triggerer writes them)."""
    from airflow.models.callback import Callback
    from airflow.utils.session import create_session
    from sqlalchemy import select

    deadline = time.monotonic() + timeout
    while True:
        with create_session() as session:
            rows = session.scalars(select(Callback).where(Callback.id.in_(ids))).all()
            done = {
                row.id: (str(row.state), row.output or "") for row in rows if str(row.state) in ("success", "failed")
            }
        if len(done) == len(ids) or time.monotonic() > deadline:
            return done
        time.sleep(0.25)


def test_deadline_alert_sends_through_the_triggerer(
    stand_in: Callable[..., StandInGateway], triggerer: Callable[[], Callable[[], str]]
) -> None:
    token = f"deadline-drill-{secrets.token_hex(8)}"
    gateway = stand_in("1msg", connection="chatapi_1msg", token=token)
    default_gateway = stand_in(token=token)  # chatapi_default: where the broken alerts would have sent

    due, example, broken = queue_missed_deadlines("example_chatapi_deadline")
    read_log = triggerer()
    outcomes = finished_callbacks([example, *broken.values()], timeout=60)

    log = read_log()
    assert outcomes.get(example, ("not run", ""))[0] == "success", log[-5000:]
    (cards,) = [message.contacts for message in gateway.messages]
    # dag_run and deadline rendered
    assert cards[0]["org"]["title"] == f"On call: example_chatapi_deadline missed its {due:%H:%M} UTC deadline"
    for name, (_, says) in MISSING.items():
        state, output = outcomes[broken[name]]
        assert state == "failed"
        assert says in output, output[-2000:]
    assert default_gateway.requests_to("sendContact") == []  # a template that cannot render sends nothing
    assert token not in log
    assert all(token not in output for _, output in outcomes.values())
