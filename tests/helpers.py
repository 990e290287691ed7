"""What several test modules share that is not a fixture: builders, readers of DAG runs, constants.

Imported as ``tests.helpers`` (the repository root is on ``sys.path``: see ``pythonpath`` in pyproject.toml).
``tests/conftest.py`` sets Airflow's environment up before anything imports this module.
"""

from __future__ import annotations

import importlib.util
import json
import operator
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_chatapi._protocol.classic import CLASSIC
from airflow_provider_chatapi._protocol.http import ApiRequest, ApiResponse
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.testing import StandInGateway

EXAMPLE_DAGS = Path(__file__).resolve().parent.parent / "example_dags"

# Airflow 3.3 gives each task instance a state store that outlives its tries; before it, a send whose
# outcome is unknown fails the task instead of being retried.
HAS_STATE_STORE = AIRFLOW_V_3_3_PLUS
needs_store = pytest.mark.skipif(not HAS_STATE_STORE, reason="the task state store arrived in Airflow 3.3")

ANN_CARD = {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"}
PHONE = "17472822486"
"""A recipient's number, as the gateway takes it."""
ANN_ON_THE_WIRE = {
    "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
    "phones": [{"phone": "+7 900 111-11-11", "type": "CELL", "wa_id": "79001111111"}],
    "emails": [{"email": "ann@example.com", "type": "WORK"}],
}
"""A card as 1msg's sendContact takes it."""
# Meta's current example card (contacts-messages reference, revision of 2025-11-03), written out: free-text
# types, and a wa_id on one phone only.
META_EXAMPLE = {
    "addresses": [
        {
            "street": "1 Lucky Shrub Way",
            "city": "Menlo Park",
            "state": "CA",
            "zip": "94025",
            "country": "United States",
            "country_code": "US",
            "type": "Office",
        },
        {
            "street": "1 Hacker Way",
            "city": "Menlo Park",
            "state": "CA",
            "zip": "94025",
            "country": "United States",
            "country_code": "US",
            "type": "Pop-Up",
        },
    ],
    "birthday": "1999-01-23",
    "emails": [
        {"email": "bjohnson@luckyshrub.com", "type": "Work"},
        {"email": "bjohnson@luckyshrubplants.com", "type": "Work (old)"},
    ],
    "name": {
        "formatted_name": "Barbara J. Johnson",
        "first_name": "Barbara",
        "last_name": "Johnson",
        "middle_name": "Joana",
        "suffix": "Esq.",
        "prefix": "Dr.",
    },
    "org": {"company": "Lucky Shrub", "department": "Legal", "title": "Lead Counsel"},
    "phones": [
        {"phone": "+1 (940) 555-1234", "type": "Landline"},
        {"phone": "+1 (650) 555-1234", "type": "Mobile", "wa_id": "16505551234"},
    ],
    "urls": [
        {"url": "https://www.luckyshrub.com", "type": "Company"},
        {"url": "https://www.facebook.com/luckyshrubplants", "type": "Company (FB)"},
    ],
}
"""A contact card as a DAG author writes it: the short form, which 1msg gets as a full card object."""

# ---- requests and answers ----------------------------------------------------------------------

TOKEN = "s3cr3t+token/with=chars"
"""The API token of the protocol tests: characters that URL encoding changes, so that a scrub must know them."""


def response(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> ApiResponse:
    """A gateway's answer as the protocol layer reads it: a dict or list body is sent as JSON, and the headers
    answer to lower-case names, as ``requests``' and ``httpx``'s do to any case."""
    raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    raw = raw.encode() if isinstance(raw, str) else raw
    return ApiResponse(status, {name.lower(): value for name, value in (headers or {}).items()}, raw, secret=TOKEN)


def classic_request(*args: Any, **kwargs: Any) -> ApiRequest:
    """The classic ``sendContact`` request for a send built from these arguments."""
    return CLASSIC.send_request(build_send_contact(*args, **kwargs))


# ---- connections -------------------------------------------------------------------------------


def connection_json(gateway: StandInGateway | None = None, **fields: Any) -> str:
    """An ``AIRFLOW_CONN_<ID>`` value for a ``chatapi`` connection: the gateway's (host, token and, for 1msg,
    the dialect) with these fields set instead; a field set to ``None`` is left out."""
    conn = {"conn_type": "chatapi", **(json.loads(gateway.connection_json()) if gateway else {}), **fields}
    return json.dumps({name: value for name, value in conn.items() if value is not None})


def free_port() -> int:
    """A loopback port that was free a moment ago: nothing listens there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


@dataclass
class TaskInstance:
    """What the operators read of Airflow's ``ti`` in a test that calls ``execute``: the try, and
    ``max_tries``, which a clear raises (to the try's number and the retries) and a retry leaves alone."""

    try_number: int
    max_tries: int

    def xcom_push(self, key: str, value: Any) -> None:
        """1msg's job ids go to XCom; these tests read the operators' return values instead."""


class Killed(BaseException):
    """The worker dying: nothing after it runs, as after a ``kill -9``."""


class DyingStore(DictStore):
    """A task state store whose worker dies at its ``die_at``-th write."""

    def __init__(self, die_at: int | None = None) -> None:
        super().__init__()
        self.die_at = die_at
        self.writes = 0

    def set(self, key: str, value: Any) -> None:
        self.writes += 1
        if self.writes == self.die_at:
            raise Killed
        super().set(key, value)


# ---- DAG runs ----------------------------------------------------------------------------------


def load_dag(dag_id: str) -> Any:
    """A fresh DAG object for ``dag_id``, from the file of the session's DAGs folder that defines it (an
    example DAG's file is named after it; one drill file may define several)."""
    for path in sorted(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).glob("*.py")):
        if f'"{dag_id}"' not in path.read_text():
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dags = {id(value): value for value in vars(module).values() if isinstance(value, DAG)}.values()
        for dag in dags:
            if dag.dag_id == dag_id:
                return dag
    raise LookupError(f"no file of the DAGs folder defines the DAG {dag_id!r}")


def run_results(
    dag_id: str, run_id: str, key: str = "return_value"
) -> tuple[dict[str, str], dict[tuple[str, int], Any]]:
    """Each task's final state, and every XCom value under ``key`` pushed by (task id, map index), from the DB."""
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
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == key)
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


# ---- console output ----------------------------------------------------------------------------

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
