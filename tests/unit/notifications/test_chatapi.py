"""ChatApiNotifier outside a DAG run: it sends full contact cards on a 1msg channel, as the fan-out does.
(In failing DAG runs: tests/dags/test_notifier.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_chatapi.exceptions import InvalidInputError
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


# What a callback without a DAG renders in: a deadline alert's context is dag_run and deadline (Airflow 3.1+).
# "dag" is there as None because Airflow before 3.1 reads it while rendering a notifier's templates.
NO_DAG = {"dag": None, "dag_run": {"dag_id": "nightly_load", "dag_run_id": "manual__1", "conf": {}}}


def test_templates_render_from_the_context_without_a_dag() -> None:
    notifier = ChatApiNotifier(
        chat_id="{{ dag_run.conf.chat | default('120363041234567890@g.us') }}",
        contacts=[
            {
                "name": "Ann Lee",
                "phone": "+7 900 111-11-11",
                "org": {"title": "{{ dag_run.dag_id }}: {{ dag_run.dag_run_id }}"},
            }
        ],
    )

    notifier.render_template_fields(dict(NO_DAG))  # type: ignore[arg-type]

    assert notifier.chat_id == "120363041234567890@g.us"
    assert notifier.contacts[0]["org"]["title"] == "nightly_load: manual__1"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        pytest.param(
            {"chat_id": "{{ params.group }}"},
            "chat_id='{{ params.group }}': the template cannot be rendered: 'params' is undefined;"
            " the context holds dag, dag_run",
            id="a variable the context lacks",
        ),
        pytest.param(
            {"contact_ids": ["79001111111", "{{ ti.xcom_pull('pick') }}"]},
            "contact_ids=['79001111111', \"{{ ti.xcom_pull('pick') }}\"]: the template cannot be rendered:"
            " 'ti' is undefined; the context holds dag, dag_run",
            id="in a list",
        ),
        pytest.param(
            {"quoted_message_id": "{{ dag_run.run_id }}"},
            "quoted_message_id='{{ dag_run.run_id }}': the template cannot be rendered:"
            " 'dict object' has no attribute 'run_id'; the context holds dag, dag_run",
            id="a missing key is refused, not rendered as ''",
        ),
        pytest.param(
            {"chat_id": "{{ dag_run.dag_id "},
            "chat_id='{{ dag_run.dag_id ': the template cannot be rendered: unexpected end of template",
            id="a template that does not parse",
        ),
    ],
)
def test_a_template_that_cannot_render_names_its_field(arguments: dict[str, Any], says: str) -> None:
    notifier = ChatApiNotifier(**{"chat_id": "120363041234567890@g.us", "contact_ids": ["79001111111"], **arguments})

    with pytest.raises(InvalidInputError) as raised:
        notifier.render_template_fields(dict(NO_DAG))  # type: ignore[arg-type]

    assert str(raised.value).startswith(says)
    assert raised.value.field == next(iter(arguments))
