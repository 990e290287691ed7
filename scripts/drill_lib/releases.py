"""What differs between the Airflow releases the drill runs on, in one place per release.

:class:`Airflow3` (3.3.2: api-server, dag-processor, triggerer, the REST API v2 with the simple auth manager's
token, a task state store) and :class:`Airflow2` (2.11.2: the webserver, a scheduler that parses the DAGs
itself, the REST API v1 with basic auth, LocalTaskJob and zombie detection, no task state store) each say
which processes to start and how, their settings, how the REST API is reached, which scenarios run on them
and the targets their rows are held to. :mod:`.services`, :mod:`.api` and :mod:`.drill` ask them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from drill_lib.drill import Targets

if TYPE_CHECKING:
    from drill_lib.services import Services

LOOPBACK = "127.0.0.1"
WORKER = ["celery", "worker", "--concurrency", "2", "--skip-serve-logs", "--celery-hostname"]


@dataclass(frozen=True)
class Release:
    version: str
    python: str  # the interpreter of its venv (scripts/drill's DRILL_PYTHONS)

    api_prefix: ClassVar[str]
    api_auth: ClassVar[str]  # "token" (the simple auth manager's) or "basic"
    trigger_fields: ClassVar[dict[str, None]]  # beside dag_run_id, in POST dagRuns
    health_path: ClassVar[str]
    healthy: ClassVar[tuple[str, ...]]  # the parts of the health answer that must say "healthy"
    processes: ClassVar[tuple[str, ...]]  # started in this order; ``worker1`` and ``worker2`` among them
    parser: ClassVar[str]  # the process that parses the DAG files (its log, while waiting for a DAG)
    scenarios: ClassVar[tuple[str, ...] | None]  # the scenarios run on it (None: all)
    targets: ClassVar[Targets]
    has_state_store: ClassVar[bool]

    def command(self, name: str, services: Services) -> list[str]:
        worker = {"worker1": [*WORKER, "w1@%h"], "worker2": [*WORKER, "w2@%h"]}
        return [self.python, "-m", "airflow", *(worker.get(name) or self.commands(services)[name])]

    def commands(self, services: Services) -> dict[str, list[str]]:
        raise NotImplementedError

    def settings(self, services: Services) -> dict[str, str]:
        """``AIRFLOW__SECTION__KEY`` settings (without the prefix) of every Airflow process of this release."""
        db = f"airflow@{LOOPBACK}:{services.pg_port}/{services.db_name}"
        return {
            "CORE__EXECUTOR": "CeleryExecutor",
            "CORE__DAGS_FOLDER": str(services.dags_folder),
            "CORE__LOAD_EXAMPLES": "False",
            "CORE__FERNET_KEY": services.fernet_key,
            "DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
            "CELERY__BROKER_URL": f"redis://{LOOPBACK}:{services.redis_port}/{services.redis_db}",
            "CELERY__RESULT_BACKEND": f"db+postgresql://{db}",
            "CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "CELERY__OPERATION_TIMEOUT": "5",
            "SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
            "SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "LOGGING__LOGGING_LEVEL": "INFO",
        }

    def setup(self, services: Services) -> None:
        """After ``airflow db migrate``, before the processes start."""


@dataclass(frozen=True)
class Airflow3(Release):
    api_prefix = "/api/v2"
    api_auth = "token"
    trigger_fields: ClassVar[dict[str, None]] = {"logical_date": None}  # required in v2, null: now
    health_path = "/api/v2/monitor/health"
    healthy = ("scheduler", "triggerer", "dag_processor")
    processes = ("api-server", "scheduler", "dag-processor", "triggerer", "worker1", "worker2")
    parser = "dag-processor"
    scenarios = None
    targets = Targets()
    has_state_store = True

    def commands(self, services: Services) -> dict[str, list[str]]:
        return {
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
            "api-server": ["api-server", "--host", LOOPBACK, "--port", str(services.api_port)],
        }

    def settings(self, services: Services) -> dict[str, str]:
        api = f"http://{LOOPBACK}:{services.api_port}"
        return {
            **super().settings(services),
            "CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "API__HOST": LOOPBACK,
            "API__PORT": str(services.api_port),
            "API__BASE_URL": api,
            "API__SECRET_KEY": secrets.token_hex(16),
            "API__WORKERS": "1",
            "API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
            "SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "12",
            "SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parsed once: the file does not change
            "TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        }


API_USER = "drill"


@dataclass(frozen=True)
class Airflow2(Release):
    """Airflow 2.11: no task state store, so the provider promises at most once there (docs/guarantees.md):
    a row may lose cards (it says how many) and its run may fail, but it must send no duplicate."""

    api_prefix = "/api/v1"
    api_auth = "basic"
    trigger_fields: ClassVar[dict[str, None]] = {}  # the logical date defaults to now
    health_path = "/api/v1/health"
    healthy = ("scheduler",)  # no standalone DAG processor, and no triggerer: no task defers
    processes = ("webserver", "scheduler", "worker1", "worker2")
    parser = "scheduler"
    scenarios = ("kill_task", "kill_worker")
    targets = Targets(lost=None, run_succeeds=False, record_bytes_per_recipient=None)
    has_state_store = False

    def commands(self, services: Services) -> dict[str, list[str]]:
        return {
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "webserver": ["webserver", "--hostname", LOOPBACK, "--port", str(services.api_port), "--workers", "1"],
        }

    def settings(self, services: Services) -> dict[str, str]:
        return {
            **super().settings(services),
            "API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
            "WEBSERVER__SECRET_KEY": secrets.token_hex(16),
            "WEBSERVER__BASE_URL": f"http://{LOOPBACK}:{services.api_port}",
            "WEBSERVER__WORKERS": "1",
            "SCHEDULER__ZOMBIE_DETECTION_INTERVAL": "2",
            "SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": "12",  # a LocalTaskJob heartbeats every 2 s
            "SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",  # parsed once: the file does not change
        }

    def setup(self, services: Services) -> None:
        """The REST API's basic auth needs a user."""
        services.airflow(
            *("users", "create", "--role", "Admin", "--username", API_USER, "--password", services.api_password),
            *("--email", "drill@example.com", "--firstname", "drill", "--lastname", "drill"),
        )


KINDS: dict[str, type[Release]] = {"3": Airflow3, "2": Airflow2}


def releases(wanted: list[str]) -> list[Release]:
    """The releases named (``3.3.2``, ``2.11.2``), with their venvs' interpreters from DRILL_PYTHONS."""
    pythons = dict(item.split("=", 1) for item in os.environ.get("DRILL_PYTHONS", "").split())
    missing = [version for version in wanted if version not in pythons]
    if missing:
        raise SystemExit(f"no venv for Airflow {', '.join(missing)}: scripts/drill builds {', '.join(pythons)}")
    return [KINDS[version.split(".")[0]](version, pythons[version]) for version in wanted]
