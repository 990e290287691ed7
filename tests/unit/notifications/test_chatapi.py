"""ChatApiNotifier outside a DAG run: it sends full contact cards on a 1msg channel, as the fan-out does.
(In failing DAG runs: tests/dags/test_notifier.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier
from airflow_provider_chatapi.testing import StandInGateway
from tests.helpers import ANN_CARD


def test_fan_out_and_notifier_send_cards(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    recipients = ["17472822486", "120363041234567890@g.us", "447911123456"]
    results = asyncio.run(ChatApiHook().asend_to_many(contacts=[ANN_CARD], recipients=recipients, max_in_flight=2))
    ChatApiNotifier(contacts=json.dumps([ANN_CARD]), chat_id="120363041234567890@g.us").notify({})  # type: ignore[arg-type]

    by_chat = {message.id: message.chat_id for message in gateway.messages}
    assert [by_chat[result.id] for result in results] == [
        "17472822486@c.us",
        "120363041234567890@g.us",
        "447911123456@c.us",
    ]
    assert sorted(message.chat_id for message in gateway.messages) == sorted(
        ["17472822486@c.us", "120363041234567890@g.us", "447911123456@c.us", "120363041234567890@g.us"]
    )
    assert all(message.contacts[0]["name"]["formatted_name"] == "Ann Lee" for message in gateway.messages)
