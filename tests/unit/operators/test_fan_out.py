"""SendContactToManyOperator: its input checked when the DAG is parsed and before any record or request,
one failure policy with the single send, and no guess at whose card an anonymous queue entry is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi.exceptions import InvalidInputError
from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import ANN_CARD, DictStore


def test_a_fan_out_fails_at_once_on_a_connection_without_token(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in()
    connect("chatapi_default", host=gateway.api_url)
    operator = SendContactToManyOperator(task_id="many", contact_ids=["79001111111"], recipients=["79002222222"])
    with pytest.raises(AirflowFailException, match="password=None: the instance's API token is missing"):
        operator.execute({})  # type: ignore[arg-type]
    assert gateway.requests == []


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_max_in_flight_is_checked_when_the_dag_is_parsed(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="max_in_flight"):
        SendContactToManyOperator(task_id="many", contact_ids=["79001111111"], recipients=["7900"], max_in_flight=bad)


def test_in_a_fan_out_a_queue_entry_without_chat_is_nobodys_card(stand_in: Callable[..., StandInGateway]) -> None:
    """Recipient B's try was lost before anything was queued; A's card sits in a queue that names no chats.
    Taking A's card for B's would leave B without one while the task succeeds."""
    gateway = stand_in(account_status="got qr code", queue_chat_ids=False)  # cards stay queued
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

    with pytest.raises(Exception, match="name no chat, and other recipients") as retry:
        send_to_both()
    assert "79002222222@c.us" in str(retry.value)
    assert [message.chat_id for message in gateway.messages] == ["79001111111@c.us"]  # no guess, no duplicate


def test_a_classic_fan_out_refuses_a_card_without_a_number_before_anything(
    stand_in: Callable[..., StandInGateway],
) -> None:
    gateway = stand_in()
    store = DictStore()
    operator = SendContactToManyOperator(
        task_id="many", contacts=[ANN_CARD, {"name": "Bob", "email": "bob@example.com"}], recipients=["17472822486"]
    )
    with pytest.raises(AirflowFailException, match=r"contacts\[1\]=.*classic gateway sends a contact by its number"):
        operator.execute({"task_state_store": store})  # type: ignore[arg-type]
    assert gateway.requests == [] and store.values == {}
    SendContactToManyOperator(task_id="many", contacts=[ANN_CARD], recipients=["17472822486"]).execute({})  # type: ignore[arg-type]
    assert len(gateway.requests) == 1  # the same setting does reach the gateway
