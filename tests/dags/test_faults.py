"""Every failure the gateway shows, through a real task of the fault drill: the fault table's task side
(``tests/scenarios.py``; its hook side is ``tests/unit/hooks/test_faults.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import HAS_STATE_STORE, console_text, load_dag, run_results
from tests.scenarios import CASES, UNKNOWN, Outcome, Scenario

pytestmark = pytest.mark.dag


@pytest.mark.parametrize(("dialect", "scenario"), CASES)
def test_task(
    airflow_db: Path,
    stand_in: Callable[..., StandInGateway],
    dialect: str,
    scenario: Scenario,
    capfd: pytest.CaptureFixture[str],
) -> None:
    gateway = stand_in(dialect)
    gateway.inject(*scenario.faults)
    dag = load_dag("chatapi_fault_drill")

    run = dag.test()

    states, xcom = run_results(dag.dag_id, run.run_id)
    messages = gateway.messages
    expected = scenario.task()
    assert Outcome(states["send"], len(messages), len(gateway.requests_to("sendContact"))) == expected
    output = console_text(capfd)
    assert scenario.says in output
    if expected.state == "success":
        assert xcom[("send", -1)] == messages[0].id
    if scenario.hook.state == UNKNOWN and HAS_STATE_STORE:
        reconciled = "the gateway has its card" if scenario.hook.cards else "the gateway shows no such card"
        assert reconciled in output


def test_a_lost_answer_on_a_1msg_channel_without_history_is_not_resent(
    airflow_db: Path, stand_in: Callable[..., StandInGateway], capfd: pytest.CaptureFixture[str]
) -> None:
    gateway = stand_in("1msg", history=False)
    gateway.inject(Fault.reset_after_queueing())
    dag = load_dag("chatapi_fault_drill")

    run = dag.test()

    states, _ = run_results(dag.dag_id, run.run_id)
    assert (states["send"], len(gateway.messages), len(gateway.requests_to("sendContact"))) == ("failed", 1, 1)
    output = console_text(capfd)
    if HAS_STATE_STORE:  # the retry asked, and 1msg could not say: at most once holds
        assert len(gateway.requests_to("messages")) == 1
        assert "keeps no message history" in output
