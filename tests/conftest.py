"""Shared fixtures. Airflow reads its configuration at import, so the environment is set up first."""

from __future__ import annotations

import atexit
import importlib.util
import operator
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"

# A private AIRFLOW_HOME for the whole session: its SQLite metadata DB is migrated once, on demand.
# Its DAGs folder holds the example DAGs and the tests' own.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="chatapi-airflow-home-"))
DAGS_FOLDER = _AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
for dag_file in [*EXAMPLE_DAGS.glob("*.py"), *TEST_DAGS.glob("*.py")]:
    shutil.copy(dag_file, DAGS_FOLDER)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_AIRFLOW_HOME / "logs")
# One signing key for this process and the API server it may start: without it, a process that read
# its configuration before `airflow db migrate` wrote airflow.cfg signs with a key of its own.
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_hex(32)
os.environ.pop("AIRFLOW_CONN_CHATAPI_DEFAULT", None)

from airflow_provider_chatapi._protocol.classic import CLASSIC  # noqa: E402
from airflow_provider_chatapi._protocol.http import ApiRequest  # noqa: E402
from airflow_provider_chatapi._protocol.sends import build_send_contact  # noqa: E402
from airflow_provider_chatapi.testing import StandInGateway  # noqa: E402


def classic_request(*args: Any, **kwargs: Any) -> ApiRequest:
    """The classic ``sendContact`` request for a send built from these arguments."""
    return CLASSIC.send_request(build_send_contact(*args, **kwargs))


@pytest.fixture
def gateway() -> Iterator[StandInGateway]:
    """A fresh stand-in gateway on loopback for one test."""
    with StandInGateway() as stand_in:
        yield stand_in


@pytest.fixture
def chatapi_default(gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> StandInGateway:
    """``chatapi_default`` points at the stand-in gateway."""
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
    return gateway


@pytest.fixture
def onemsg_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInGateway]:
    """``chatapi_default`` points at a stand-in speaking 1msg."""
    with StandInGateway(dialect="1msg") as stand_in:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", stand_in.connection_json())
        yield stand_in


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_RICH_BOX = ("│", "╭", "╰")


def console_text(capfd: pytest.CaptureFixture[str]) -> str:
    """What a DAG run printed so far, as one line of plain words.

    Airflow 3.0 prints a task's failure through rich: coloured, wrapped at 100 columns whatever the
    terminal, and with each frame's source lines and local variables in boxes. The boxes are dropped (they
    show this project's code, whose messages a test must not mistake for what was said), and the rest is
    joined up again.
    """
    return plain_text("".join(capfd.readouterr()))


def plain_text(printed: str) -> str:
    """:func:`console_text` of text already read."""
    lines = _ANSI_ESCAPE.sub("", printed).splitlines()
    return " ".join(" ".join(line for line in lines if not line.lstrip().startswith(_RICH_BOX)).split())


def airflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, check=True, timeout=300
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB holding the DAGs (Airflow < 3.3 needs them serialized there)."""
    airflow_cli("db", "migrate")
    airflow_cli("dags", "reserialize")
    return _AIRFLOW_HOME


def load_dag(name: str) -> Any:
    """The DAG object ``example_dag`` or ``drill`` of a file in the session's DAGs folder."""
    spec = importlib.util.spec_from_file_location(name, DAGS_FOLDER / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "example_dag", None) or module.drill


atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)


def run_results(dag_id: str, run_id: str) -> tuple[dict[str, str], dict[tuple[str, int], Any]]:
    """Each task's final state, and every ``return_value`` pushed by (task id, map index), from the DB."""
    from airflow.models.taskinstance import TaskInstance

    try:
        from airflow.models.xcom import XComModel

        value_of = XComModel.deserialize_value
    except ImportError:  # Airflow 2, whose XCom rows deserialize their value as they load
        from airflow.models.xcom import XCom as XComModel

        value_of = operator.attrgetter("value")
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        ).all()
        states = {ti.task_id: str(ti.state) for ti in instances}
        return states, {(row.task_id, row.map_index): value_of(row) for row in rows}


def latest_run_id(dag_id: str) -> str:
    """The run id of the DAG's newest run, e.g. one that ``airflow dags test`` made in another process."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalar(
            select(DagRun.run_id).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)
        )
    assert run_id, f"{dag_id} has no run"
    return str(run_id)


def rerun_after_clear(dag: Any, run_id: str) -> None:
    """Clear every task instance of a finished run and run them again in that same run, as the scheduler
    would after a user's clear (``dag.test()`` would replace the run instead). Airflow 3.3's internals."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
        instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run_id)
        ).all()
        clear_task_instances(list(instances), session)
        for instance in instances:
            instance.try_number += 1
            instance.state = TaskInstanceState.SCHEDULED
        session.commit()
        for instance in run.get_task_instances(session=session):
            _run_task(ti=instance, task=dag.task_dict[instance.task_id])


class DictStore:
    """Airflow 3.3's task_state_store (get/set) over a dict, for tests that call ``execute`` directly.

    The real store exists only inside a running task; the DAG tests exercise it.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        assert value is not None, "Airflow's store refuses None"
        self.values[key] = value
