"""Shared fixtures. Airflow reads its configuration at import, so the environment is set up first.

Plain helpers (builders, DAG-run readers, constants) live in :mod:`tests.helpers`; fixtures live here.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
DRILL_DAGS = REPO / "tests" / "dags" / "drills"

# A private AIRFLOW_HOME for the whole session: its SQLite metadata DB is migrated once, on demand.
# Its DAGs folder holds the example DAGs and the tests' drill DAGs, side by side.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="chatapi-airflow-home-"))
DAGS_FOLDER = _AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
for dag_file in [*EXAMPLE_DAGS.glob("*.py"), *DRILL_DAGS.glob("*.py")]:
    shutil.copy(dag_file, DAGS_FOLDER)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_AIRFLOW_HOME / "logs")
# One signing key for this process and the API server it may start: without it, a process that read
# its configuration before `airflow db migrate` wrote airflow.cfg signs with a key of its own.
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_hex(32)
os.environ.pop("AIRFLOW_CONN_CHATAPI_DEFAULT", None)
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)

from airflow_provider_chatapi.hooks import _http  # noqa: E402
from airflow_provider_chatapi.testing import StandInGateway  # noqa: E402
from tests.helpers import connection_json  # noqa: E402


@pytest.fixture(scope="session")
def _stopping_gateways() -> Iterator[list[threading.Thread]]:
    """Gateways being stopped behind the tests; every one has stopped by the session's end."""
    stopping: list[threading.Thread] = []
    yield stopping
    for thread in stopping:
        thread.join()


@pytest.fixture
def stand_in(
    monkeypatch: pytest.MonkeyPatch, _stopping_gateways: list[threading.Thread]
) -> Iterator[Callable[..., StandInGateway]]:
    """``stand_in(dialect="chatapi", connection="chatapi_default", **options)``: a running stand-in gateway
    for this test (options as :class:`StandInGateway` takes them), with the Airflow connection
    ``connection`` pointing at it (``None``: no connection). Call it as often as the test needs gateways.

    At teardown each gateway is stopped. Stopping waits out the stand-in server's poll interval (50 ms),
    which adds up over hundreds of tests, while nothing reads a gateway after its test: so the stops run
    in the background, each on its own thread, and the session waits for them at its end.
    """
    started: list[StandInGateway] = []

    def start(dialect: str = "chatapi", connection: str | None = "chatapi_default", **options: Any) -> StandInGateway:
        gateway = StandInGateway(dialect=dialect, **options).start()
        started.append(gateway)
        if connection is not None:
            monkeypatch.setenv(f"AIRFLOW_CONN_{connection.upper()}", gateway.connection_json())
        return gateway

    yield start
    for gateway in started:
        stopping = threading.Thread(target=gateway.stop, name="stopping-stand-in")
        stopping.start()
        _stopping_gateways.append(stopping)


@pytest.fixture
def gateway(stand_in: Callable[..., StandInGateway]) -> StandInGateway:
    """A classic stand-in that ``chatapi_default`` points at: ``stand_in()`` under the name the stand-in's
    own tests (``tests/unit/testing/test_connections.py``) ask for."""
    return stand_in()


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``connect(conn_id, gateway=None, **fields)``: the Airflow connection ``conn_id``, for this test, is
    :func:`tests.helpers.connection_json` of the gateway with these fields (``None`` drops a field)."""

    def set_connection(conn_id: str, gateway: StandInGateway | None = None, **fields: Any) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(gateway, **fields))

    return set_connection


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The hook's retries wait a fiftieth of what its policy chose (the gateway's ``Retry-After``, else the
    exponential backoff): the same retries, in the same order, without the seconds. The list holds each
    wait as chosen."""
    chosen: list[float] = []
    policy = _http._wait

    def wait(state: Any) -> float:
        chosen.append(policy(state))
        return chosen[-1] / 50

    monkeypatch.setattr(_http, "_wait", wait)
    return chosen


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
