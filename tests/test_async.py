"""The asynchronous side: concurrent fan-out, the notifier in a failing DAG, and fan-out across retries.

The async hook's outcome classes are covered by the shared scenario table in test_faults.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_chatapi.exceptions import FanOutError, InvalidInputError, RejectedError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import Fault, StandInGateway

from .conftest import load_dag, run_results
from .test_faults import HAS_STATE_STORE

RECIPIENTS = [f"+7 900 200-{n // 100:02d}-{n % 100:02d}" for n in range(200)]


def test_fan_out_of_200_keeps_order_bound_and_sends_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with StandInGateway(delay=0.02) as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())

        results = asyncio.run(ChatApiHook().asend_to_many(["79009999999"], RECIPIENTS, max_in_flight=20))

    by_chat = {message.chat_id: message.id for message in gateway.messages}
    chats = [f"7900200{n:04d}@c.us" for n in range(200)]
    assert [result.id for result in results] == [by_chat[chat] for chat in chats]
    assert sorted(message.chat_id for message in gateway.messages) == sorted(chats)  # each exactly once
    assert 2 <= gateway.peak_in_flight <= 20
    assert len({request.client_port for request in gateway.requests}) <= 20  # one pool of connections


def test_fan_out_validates_everything_before_the_first_request(chatapi_default: StandInGateway) -> None:
    with pytest.raises(InvalidInputError, match=r"recipients\[2\]='79001000001': names the chat"):
        asyncio.run(ChatApiHook().asend_to_many("79009999999", ["79001000001", "79001000002", "79001000001"]))
    with pytest.raises(InvalidInputError, match=r"recipients\[1\]='abc'"):
        asyncio.run(ChatApiHook().asend_to_many("79009999999", "79001000001, abc"))
    assert chatapi_default.requests == []


def test_fan_out_reports_every_outcome_in_order(chatapi_default: StandInGateway) -> None:
    chatapi_default.inject(Fault.rejected("Wrong chatId format."))
    with pytest.raises(FanOutError, match=r"1 of 3 sends failed: .*Wrong chatId format") as error:
        asyncio.run(ChatApiHook().asend_to_many("79009999999", ["79001000001", "79001000002", "79001000003"]))
    outcomes = error.value.outcomes
    assert sum(isinstance(outcome, RejectedError) for outcome in outcomes) == 1
    sent = {outcome.id for outcome in outcomes if not isinstance(outcome, RejectedError)}
    assert sent == {message.id for message in chatapi_default.messages} and len(sent) == 2


def test_async_probe(chatapi_default: StandInGateway) -> None:
    ok, message = asyncio.run(ChatApiHook().atest_connection())
    assert ok and "'authenticated'" in message
    assert chatapi_default.requests[0].query["no_wakeup"] == "true"


@pytest.mark.dag
def test_notifier_sync_and_async_in_a_failing_run(airflow_db: Path, chatapi_default: StandInGateway) -> None:
    dag = load_dag("chatapi_notifier_drill")

    run = dag.test()

    states, _ = run_results(dag.dag_id, run.run_id)
    assert states == {"load": "failed"}
    cards = sorted((message.chat_id, message.contact_ids) for message in chatapi_default.messages)
    called = ("120363041234567890@g.us", ("79001111111@c.us",))  # templates rendered from params
    awaited = ("79001111111@c.us", ("79002222222@c.us",))
    dag_level = ("120363041234567890@g.us", ("79003333333@c.us",))
    assert cards == sorted([called, dag_level, awaited] if AIRFLOW_V_3_1_PLUS else [called, dag_level])


@pytest.mark.dag
def test_example_fan_out_and_notifier(airflow_db: Path, chatapi_default: StandInGateway) -> None:
    dag = load_dag("example_chatapi_notify_and_fan_out")

    run = dag.test(run_conf={"fail": True})

    states, xcom = run_results(dag.dag_id, run.run_id)
    assert states == {"subscribers": "success", "send_to_all": "success", "load_data": "failed"}
    by_chat = {message.chat_id: message.id for message in chatapi_default.messages}
    assert xcom[("send_to_all", -1)] == [by_chat[f"7900200{n:04d}@c.us"] for n in range(25)]
    assert "120363041234567890@g.us" in by_chat  # the failure callback's card
    assert len(chatapi_default.messages) == 26


@pytest.mark.dag
@pytest.mark.parametrize(
    ("faults", "with_store", "without_store"),
    [
        ((Fault.server_error(500),), ("success", 5, 5), ("failed", 5, 5)),
        ((Fault.reset_before_queueing(),), ("success", 5, 6), ("failed", 4, 5)),
        # Every outcome unknown, so no card known to be queued: before 3.3 a retry would still send them all.
        ((Fault.server_error(500),) * 5, ("success", 5, 5), ("failed", 5, 5)),
    ],
    ids=["500 after queueing", "reset before queueing", "every send 500 after queueing"],
)
def test_fan_out_across_a_task_retry_sends_each_card_once(
    airflow_db: Path,
    chatapi_default: StandInGateway,
    faults: tuple[Fault, ...],
    with_store: tuple[str, int, int],
    without_store: tuple[str, int, int],
) -> None:
    chatapi_default.inject(*faults)
    dag = load_dag("chatapi_fan_out_drill")

    run = dag.test()

    states, xcom = run_results(dag.dag_id, run.run_id)
    chats = [message.chat_id for message in chatapi_default.messages]
    sends = len(chatapi_default.requests_to("sendContact"))
    assert (states["send"], len(chats), sends) == (with_store if HAS_STATE_STORE else without_store)
    assert len(set(chats)) == len(chats)  # never two cards to one recipient
    if states["send"] == "success":
        by_chat = {message.chat_id: message.id for message in chatapi_default.messages}
        expected_chats = ["79001000001@c.us", "79001000002@c.us", "79001000003@c.us", "79001000004@c.us"]
        assert xcom[("send", -1)] == [*(by_chat[c] for c in expected_chats), by_chat["120363041234567890@g.us"]]
