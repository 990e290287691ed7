"""Clears that mean what the user meant (Airflow 3.3's task state store): a retry never sends a card on
record; clearing another task of the run changes nothing; a clear after a failure finishes the job; a clear
after a success does it again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi.exceptions import FanOutError
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import DictStore, TaskInstance

RECIPIENTS = ["79002222222", "79003333333", "79004444444"]
RETRIES = 3


@dataclass
class DagRun:
    clear_number: int


def context(store: DictStore, *, try_number: int, max_tries: int, clear_number: int = 0) -> Any:
    return {
        "task_state_store": store,
        "ti": TaskInstance(try_number, max_tries),
        "dag_run": DagRun(clear_number),
    }


def fan_out() -> SendContactToManyOperator:
    return SendContactToManyOperator(
        task_id="many",
        contact_ids=["79001111111"],
        recipients=RECIPIENTS,
        max_in_flight=1,
        max_retries=0,
        retries=RETRIES,
    )


def cards_per_recipient(gateway: StandInGateway) -> list[int]:
    chats = [message.chat_id for message in gateway.messages]
    return [chats.count(f"{phone}@c.us") for phone in RECIPIENTS]


def test_clearing_another_task_does_not_make_a_pending_retry_send_again(
    stand_in: Callable[..., StandInGateway],
) -> None:
    gateway = stand_in()
    store = DictStore()
    gateway.inject(Fault.unavailable())  # the first recipient's send: nothing queued, worth a retry
    with pytest.raises(FanOutError):
        fan_out().execute(context(store, try_number=1, max_tries=RETRIES))
    assert cards_per_recipient(gateway) == [0, 1, 1]
    # Another task of the run was cleared meanwhile: Airflow raised the run's clear_number, not this
    # instance's max_tries. The retry sends only what is missing.
    fan_out().execute(context(store, try_number=2, max_tries=RETRIES, clear_number=1))
    assert cards_per_recipient(gateway) == [1, 1, 1]


def test_a_clear_after_a_failure_finishes_the_job(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in(refuse_chats={"79004444444@c.us": "The number is not on WhatsApp"})
    store = DictStore()
    with pytest.raises(AirflowFailException):  # a refusal: no retry helps, the task fails
        fan_out().execute(context(store, try_number=1, max_tries=RETRIES))
    assert cards_per_recipient(gateway) == [1, 1, 0]
    gateway.refuse_chats.clear()  # the user fixed the number, and clears the failed task
    fan_out().execute(context(store, try_number=2, max_tries=2 + RETRIES, clear_number=1))
    assert cards_per_recipient(gateway) == [1, 1, 1]


def test_a_clear_after_a_success_does_it_again(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    store = DictStore()
    fan_out().execute(context(store, try_number=1, max_tries=RETRIES))
    fan_out().execute(context(store, try_number=2, max_tries=2 + RETRIES, clear_number=1))
    assert cards_per_recipient(gateway) == [2, 2, 2]


def test_the_single_send_follows_the_same_rules(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    store = DictStore()

    def send(**at: int) -> None:
        SendContactOperator(task_id="one", contact_ids=["79001111111"], phone="79002222222", retries=RETRIES).execute(
            context(store, **at)
        )

    send(try_number=1, max_tries=RETRIES)
    send(try_number=2, max_tries=RETRIES, clear_number=1)  # another task cleared: no second card
    assert len(gateway.messages) == 1
    send(try_number=2, max_tries=2 + RETRIES, clear_number=2)  # this one cleared after its success: again
    assert len(gateway.messages) == 2
