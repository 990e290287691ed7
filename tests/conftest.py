"""Shared fixtures. Airflow reads its configuration at import, so the environment is set up first."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"

# A private AIRFLOW_HOME for the whole session: its SQLite metadata DB is migrated once, on demand.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="chatapi-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_AIRFLOW_HOME / "logs")
os.environ.pop("AIRFLOW_CONN_CHATAPI_DEFAULT", None)

from airflow_provider_chatapi.testing import StandInGateway  # noqa: E402


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


def airflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, check=True, timeout=300
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB holding the example DAGs (Airflow < 3.3 needs them serialized)."""
    airflow_cli("db", "migrate")
    airflow_cli("dags", "reserialize")
    return _AIRFLOW_HOME
