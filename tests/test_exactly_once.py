"""Exactly the cards the user meant: a clear sends again, a not-sent failure is said as such every time,
and one failure policy holds for every operator. Real task runs where retries and clears are concerned."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_chatapi._protocol.ledger import BatchLedger
from airflow_provider_chatapi.exceptions import FanOutError, InvalidInputError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway

from .conftest import console_text, load_dag, rerun_after_clear, run_results

HAS_STATE_STORE = AIRFLOW_V_3_3_PLUS
needs_store = pytest.mark.skipif(not HAS_STATE_STORE, reason="the task state store arrived in Airflow 3.3")


@pytest.mark.dag
@needs_store
def test_a_cleared_task_sends_its_card_again(airflow_db: Path, chatapi_default: StandInGateway) -> None:
    dag = load_dag("chatapi_fault_drill")
    run = dag.test()
    _, first = run_results(dag.dag_id, run.run_id)

    rerun_after_clear(dag, run.run_id)

    states, second = run_results(dag.dag_id, run.run_id)
    messages = chatapi_default.messages
    assert states["send"] == "success" and len(messages) == 2
    assert first[("send", -1)] == messages[0].id and second[("send", -1)] == messages[1].id


@pytest.mark.dag
@needs_store
def test_clearing_a_failed_task_reconciles_the_lost_answer_before_sending(
    airflow_db: Path, chatapi_default: StandInGateway, capfd: pytest.CaptureFixture[str]
) -> None:
    chatapi_default.inject(Fault.reset_after_queueing())  # the card is queued; the answer is lost
    chatapi_default.inject(Fault.server_error(500), endpoint="messages")  # and the retry cannot ask
    dag = load_dag("chatapi_fault_drill")
    run = dag.test()
    assert run_results(dag.dag_id, run.run_id)[0]["send"] == "failed"

    rerun_after_clear(dag, run.run_id)

    states, xcom = run_results(dag.dag_id, run.run_id)
    (message,) = chatapi_default.messages
    assert states["send"] == "success" and xcom[("send", -1)] == message.id
    assert "the gateway has its card" in console_text(capfd)


@pytest.mark.dag
def test_a_gateway_down_for_three_tries_says_nothing_was_queued_each_time(
    airflow_db: Path, chatapi_default: StandInGateway, capfd: pytest.CaptureFixture[str]
) -> None:
    chatapi_default.inject(Fault.unavailable(), Fault.unavailable(), Fault.unavailable())
    dag = load_dag("chatapi_retry_drill")

    run = dag.test()

    assert run_results(dag.dag_id, run.run_id)[0]["send"] == "failed"
    text = console_text(capfd)
    assert len(chatapi_default.requests_to("sendContact")) == 3
    assert text.count("nothing was queued; the gateway is unavailable") >= 3
    assert "MAY HAVE BEEN QUEUED" not in text and "earlier try's answer was lost" not in text
    assert [r.endpoint for r in chatapi_default.requests if r.endpoint != "sendContact"] == []  # no lookups


# ---- one failure policy ---------------------------------------------------------------------------


def test_a_fan_out_fails_at_once_on_a_connection_without_token(
    gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", json.dumps({"conn_type": "chatapi", "host": gateway.api_url}))
    operator = SendContactToManyOperator(task_id="many", contact_ids=["79001111111"], recipients=["79002222222"])
    with pytest.raises(AirflowFailException, match="password=None: the instance's API token is missing"):
        operator.execute({})  # type: ignore[arg-type]
    assert gateway.requests == []


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_max_in_flight_is_checked_when_the_dag_is_parsed(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="max_in_flight"):
        SendContactToManyOperator(task_id="many", contact_ids=["79001111111"], recipients=["7900"], max_in_flight=bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_the_hook_checks_max_in_flight_as_the_operator_does(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match=f"max_in_flight={bad!r}: must be a whole number of at least 1"):
        asyncio.run(ChatApiHook().asend_to_many(["79001111111"], ["79002222222"], max_in_flight=bad))


class _BrokenForOneChat(BatchLedger):
    """A ledger with a bug that shows for one recipient only."""

    def __init__(self, broken_chat: str) -> None:
        super().__init__(_MemoryStore(), first_try=True)
        self._broken_chat = broken_chat

    def record_intent(self, send: Any) -> Any:
        if send.chat_id == self._broken_chat:
            raise RuntimeError("a bug in one send")
        return super().record_intent(send)


class _MemoryStore(dict[str, Any]):
    def set(self, key: str, value: Any) -> None:
        self[key] = value


def test_a_fan_out_waits_for_every_send_it_started(chatapi_default: StandInGateway) -> None:
    hook = ChatApiHook()

    async def fan_out() -> tuple[FanOutError, float]:
        started = time.monotonic()
        chatapi_default.inject(Fault.slow(0.4))
        try:
            with pytest.raises(FanOutError) as caught:
                await hook.asend_to_many(
                    ["79001111111"], ["79003333333", "79002222222"], ledger=_BrokenForOneChat("79003333333@c.us")
                )
            return caught.value, time.monotonic() - started
        finally:
            await hook.aclose()

    failure, waited = asyncio.run(fan_out())
    assert waited >= 0.4  # the slow send was waited for, not abandoned
    error, result = failure.outcomes
    assert isinstance(error, RuntimeError) and result.id == chatapi_default.messages[0].id


def test_sessions_and_clients_are_closed_when_the_operators_finish(chatapi_default: StandInGateway) -> None:
    from airflow_provider_chatapi.operators.chatapi import SendContactOperator

    single = SendContactOperator(task_id="one", contact_ids=["79001111111"], phone="79002222222")
    single.execute({})  # type: ignore[arg-type]
    assert "_session" not in vars(single.hook)
    many = SendContactToManyOperator(task_id="many", contact_ids=["79001111111"], recipients=["79002222222"])
    many.execute({})  # type: ignore[arg-type]
    assert many.hook._async_client is None


def test_one_async_client_serves_every_call_of_a_hook(chatapi_default: StandInGateway) -> None:
    async def two_sends() -> None:
        hook = ChatApiHook()
        for phone in ("79002222222", "79003333333"):
            await hook.asend_contact(["79001111111"], phone=phone)
        await hook.aclose()

    asyncio.run(two_sends())
    assert len(chatapi_default.requests) == 2
    assert len({request.client_port for request in chatapi_default.requests}) == 1  # one kept-alive connection


# ---- Test connection ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_test_connection_probes_once_and_speaks_of_the_probe(chatapi_default: StandInGateway, transport: str) -> None:
    chatapi_default.inject(Fault.unavailable(), endpoint="status")
    hook = ChatApiHook(max_retries=5)
    ok, message = hook.test_connection() if transport == "sync" else asyncio.run(hook.atest_connection())
    assert not ok and len(chatapi_default.requests) == 1
    assert "status probe failed (HTTP 503)" in message and "try again later" in message
    assert "nothing was queued" not in message


def test_test_connection_gives_up_quickly(chatapi_default: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_provider_chatapi.hooks.chatapi as hooks

    monkeypatch.setattr(hooks, "_PROBE_TIMEOUT", 0.3)
    chatapi_default.inject(Fault.slow(2.0), endpoint="status")
    started = time.monotonic()
    ok, message = ChatApiHook().test_connection()
    assert not ok and time.monotonic() - started < 1.5 and "timed out" in message


def test_test_connection_names_the_form_field_not_the_connection(
    gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TMP_4F2A", json.dumps({"conn_type": "chatapi", "host": gateway.api_url}))
    ok, message = ChatApiHook("tmp_4f2a").test_connection()
    assert (ok, message) == (False, "API token: the instance's API token is missing")
    monkeypatch.setenv("AIRFLOW_CONN_TMP_4F2A", json.dumps({"conn_type": "chatapi", "password": "t0ken"}))
    ok, message = ChatApiHook("tmp_4f2a").test_connection()
    assert not ok and message.startswith("Instance ID: the instance id is missing") and "tmp_4f2a" not in message


def test_in_a_fan_out_a_queue_entry_without_chat_is_nobodys_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipient B's try was lost before anything was queued; A's card sits in a queue that names no chats.
    Taking A's card for B's would leave B without one while the task succeeds."""
    from .conftest import DictStore

    with StandInGateway(account_status="got qr code", queue_chat_ids=False) as gateway:  # cards stay queued
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        store = DictStore()

        def send_to_both() -> Any:
            operator = SendContactToManyOperator(
                task_id="many", contact_ids=["79009999999"], recipients=["79001111111", "79002222222"], max_in_flight=1
            )
            return operator.execute({"task_state_store": store})  # type: ignore[arg-type]

        gateway.inject(Fault.server_error(500), Fault.server_error(500, queued=False))  # A queued, B not
        with pytest.raises(Exception, match="MAY HAVE BEEN QUEUED"):
            send_to_both()
        assert [message.chat_id for message in gateway.messages] == ["79001111111@c.us"]

        with pytest.raises(Exception, match="cannot tell whose card") as retry:
            send_to_both()
        assert "79002222222@c.us" in str(retry.value)
        assert [message.chat_id for message in gateway.messages] == ["79001111111@c.us"]  # no guess, no duplicate


TRY = """
import json, sys
from pathlib import Path
from airflow_provider_chatapi.operators.chatapi import SendContactOperator

path = Path(sys.argv[1])
class FileStore:  # Airflow 3.3's task state store, kept in a file between the two processes
    def get(self, key, default=None):
        return json.loads(path.read_text()).get(key, default) if path.exists() else default
    def set(self, key, value):
        values = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**values, key: value}))

contacts = {"79001111111", "79002222222", "79003333333", "447911123456", "4915112345678"}
operator = SendContactOperator(task_id="send", contact_ids=contacts, phone="17472822486")
try:
    print(operator.execute({"task_state_store": FileStore()}))
except Exception as error:
    print(type(error).__name__)
"""


def test_set_input_retried_in_a_fresh_process_sends_one_card(
    chatapi_default: StandInGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess
    import sys

    def order(seed: str) -> str:
        command = [sys.executable, "-c", "print(list({'79001111111', '79002222222', '79003333333', '447911123456'}))"]
        return subprocess.run(
            command, env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True
        ).stdout

    first_seed = "1"
    second_seed = next(str(seed) for seed in range(2, 200) if order(str(seed)) != order(first_seed))

    def one_try(seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-c", TRY, str(tmp_path / "store.json")]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()

    chatapi_default.inject(Fault.server_error(500))  # the first try's card is queued, its answer lost
    assert one_try(first_seed).endswith("DeliveryUnknownError")
    second = one_try(second_seed)

    (message,) = chatapi_default.messages
    assert second.endswith(message.id)
