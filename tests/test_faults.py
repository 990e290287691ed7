"""Fault injection, end to end: every failure the gateway shows, through the hook and through a real task.

One table drives both, for each dialect (classic and 1msg), plus a table of what only 1msg shows. For
each scenario it states how many cards the stand-in queued and how many sendContact requests it
received: a card is queued once where the send succeeds, and never twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import Fault, StandInGateway

from .conftest import console_text, load_dag, run_results

# Airflow 3.3 gives each task instance a state store that outlives its tries; before it, a send whose
# outcome is unknown fails the task instead of being retried.
HAS_STATE_STORE = AIRFLOW_V_3_3_PLUS


@dataclass(frozen=True)
class Outcome:
    state: str  # "success" or "failed" for a task; for the hook, "success" or the error's class name
    cards: int  # cards the stand-in queued
    sends: int  # sendContact requests it received


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: tuple[Fault, ...]
    says: str  # what the hook's error (and so the task log) says; "" when the send succeeds
    hook: Outcome  # one ChatApiHook.send_contact or asend_contact call (timeout 0.5 s, 2 HTTP retries)
    task_with_store: Outcome  # the drill DAG's task (the same settings, 1 task retry), Airflow >= 3.3
    task_without_store: Outcome  # the same task before Airflow 3.3

    def task(self) -> Outcome:
        return self.task_with_store if HAS_STATE_STORE else self.task_without_store


UNKNOWN = DeliveryUnknownError.__name__
SENT_ONCE = Outcome("success", 1, 1)
SCENARIOS = [
    Scenario("answer lost after queueing: read timeout", (Fault.slow(1.5),), "timed out",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("connection reset after queueing", (Fault.reset_after_queueing(),), "sent, but no answer arrived",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("connection reset before queueing", (Fault.reset_before_queueing(),), "sent, but no answer arrived",
             Outcome(UNKNOWN, 0, 1), Outcome("success", 1, 2), Outcome("failed", 0, 1)),
    Scenario("500 after queueing", (Fault.server_error(500),), "HTTP 500: the gateway said 'Internal server error'",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("500 before queueing", (Fault.server_error(500, queued=False),), "HTTP 500",
             Outcome(UNKNOWN, 0, 1), Outcome("success", 1, 2), Outcome("failed", 0, 1)),
    Scenario("garbage 200 after queueing", (Fault.garbage(),), "not a JSON object",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("proxy's HTML 502 page", (Fault.bad_gateway_page(),), "HTTP 502: body '502 Bad Gateway nginx'",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("429 with Retry-After, then success", (Fault.rate_limited(retry_after=1),), "",
             Outcome("success", 1, 2), Outcome("success", 1, 2), Outcome("success", 1, 2)),
    Scenario("503 then success", (Fault.unavailable(),), "",
             Outcome("success", 1, 2), Outcome("success", 1, 2), Outcome("success", 1, 2)),
    Scenario("slow answer within the timeout", (Fault.slow(0.2),), "", SENT_ONCE, SENT_ONCE, SENT_ONCE),
    Scenario("rate limited past every retry", (Fault.rate_limited(retry_after=0),) * 6,
             "HTTP 429: the gateway said 'Too many requests, slow down'",
             Outcome(RateLimitedError.__name__, 0, 3), Outcome("failed", 0, 6), Outcome("failed", 0, 6)),
    # A relative Location: the same sendContact without the token. Followed, it would be POSTed again.
    Scenario("307 redirect", (Fault.redirect(location="sendContact"),), "redirects to 'sendContact'",
             Outcome(RejectedError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
    Scenario("rejected: sent false", (Fault.rejected("Wrong chatId format."),),
             "the gateway said 'Wrong chatId format.'",
             Outcome(RejectedError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
]  # fmt: skip
ONEMSG_ONLY = [
    Scenario("24-hour window closed", (Fault.window_closed(), Fault.window_closed()), "last 24 hours",
             Outcome(WindowClosedError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
    Scenario("403 plain text: trial channel", (Fault.forbidden_text("Channel is in trial mode"),),
             "body 'Channel is in trial mode'",
             Outcome(AuthenticationError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
    Scenario("429 without Retry-After, then success", (Fault.rate_limited(retry_after=None),), "",
             Outcome("success", 1, 2), Outcome("success", 1, 2), Outcome("success", 1, 2)),
]  # fmt: skip
CASES = [
    *(pytest.param(dialect, scenario, id=f"{dialect}: {scenario.name}") for dialect in ("chatapi", "1msg")
      for scenario in SCENARIOS),
    *(pytest.param("1msg", scenario, id=f"1msg: {scenario.name}") for scenario in ONEMSG_ONLY),
]  # fmt: skip


@pytest.fixture
def stand_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInGateway]:
    """``chatapi_default`` points at a stand-in speaking the dialect the test is parametrized with."""
    with StandInGateway(dialect=request.param) as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        yield gateway


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize(("stand_in", "scenario"), CASES, indirect=["stand_in"])
def test_hook(stand_in: StandInGateway, scenario: Scenario, transport: str) -> None:
    stand_in.inject(*scenario.faults)
    hook = ChatApiHook(timeout=0.5, max_retries=2)
    arguments = {"contact_ids": ["79001111111"], "phone": "79002222222"}
    try:
        if transport == "sync":
            hook.send_contact(**arguments)
        else:
            asyncio.run(hook.asend_contact(**arguments))
        state = "success"
    except Exception as error:
        state = type(error).__name__
        assert scenario.says in str(error)
        assert stand_in.token not in str(error)
    outcome = Outcome(state, len(stand_in.messages), len(stand_in.requests_to("sendContact")))
    assert outcome == scenario.hook


@pytest.mark.dag
@pytest.mark.parametrize(("stand_in", "scenario"), CASES, indirect=["stand_in"])
def test_task(
    airflow_db: Path, stand_in: StandInGateway, scenario: Scenario, capfd: pytest.CaptureFixture[str]
) -> None:
    stand_in.inject(*scenario.faults)
    dag = load_dag("chatapi_fault_drill")

    run = dag.test()

    states, xcom = run_results(dag.dag_id, run.run_id)
    messages = stand_in.messages
    expected = scenario.task()
    assert Outcome(states["send"], len(messages), len(stand_in.requests_to("sendContact"))) == expected
    output = console_text(capfd)
    assert scenario.says in output
    if expected.state == "success":
        assert xcom[("send", -1)] == messages[0].id
    if scenario.hook.state == UNKNOWN and HAS_STATE_STORE:
        reconciled = "the gateway has its card" if scenario.hook.cards else "the gateway shows no such card"
        assert reconciled in output


@pytest.mark.dag
def test_a_lost_answer_on_a_1msg_channel_without_history_is_not_resent(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with StandInGateway(dialect="1msg", history=False) as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        gateway.inject(Fault.reset_after_queueing())
        dag = load_dag("chatapi_fault_drill")

        run = dag.test()

    states, _ = run_results(dag.dag_id, run.run_id)
    assert (states["send"], len(gateway.messages), len(gateway.requests_to("sendContact"))) == ("failed", 1, 1)
    output = console_text(capfd)
    if HAS_STATE_STORE:  # the retry asked, and 1msg could not say: at most once holds
        assert len(gateway.requests_to("messages")) == 1
        assert "keeps no message history" in output
