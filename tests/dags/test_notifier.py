"""The notifier in a failing DAG run: called and awaited as task callbacks, and as the DAG's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_chatapi.testing import StandInGateway
from tests.helpers import load_dag, run_results

pytestmark = pytest.mark.dag


def test_notifier_sync_and_async_in_a_failing_run(airflow_db: Path, stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    dag = load_dag("chatapi_notifier_drill")

    run = dag.test()

    states, _ = run_results(dag.dag_id, run.run_id)
    assert states == {"load": "failed"}
    cards = sorted((message.chat_id, message.contact_ids) for message in gateway.messages)
    called = ("120363041234567890@g.us", ("79001111111@c.us",))  # templates rendered from params
    awaited = ("79001111111@c.us", ("79002222222@c.us",))
    dag_level = ("120363041234567890@g.us", ("79003333333@c.us",))
    assert cards == sorted([called, dag_level, awaited] if AIRFLOW_V_3_1_PLUS else [called, dag_level])
