"""A number written the national way reaches the person its writer meant, or is refused (issue 21).

``default_region`` comes from the operator (templated), the notifier, the hook's call, or the connection's
extra, in that order; numbers are checked before any request, so every refusal here leaves the stand-in
without a request it would have recorded (the connection leads to it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi.exceptions import ConnectionConfigError, InvalidInputError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import StandInGateway

MOSCOW = "8 (495) 123-45-67"  # +7 495 123-45-67 in Russia; +84 951 234 567 (Vietnam) read as international


def regional_gateway(stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Any:
    gateway = stand_in("1msg")
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json(**extra))
    return gateway


def test_the_connections_region_reads_every_number_of_a_send(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = regional_gateway(stand_in, monkeypatch, default_region="ru")
    SendContactOperator(task_id="send", contacts=[{"name": "Ann", "phone": MOSCOW}], phone=MOSCOW).execute({})  # type: ignore[arg-type]
    (request,) = gateway.requests
    assert json.loads(request.body)["phone"] == "74951234567"
    assert json.loads(request.body)["contacts"][0]["phones"] == [{"phone": "+7 495 123-45-67"}]


def test_without_a_region_a_national_number_fails_the_task_naming_what_it_would_have_meant(
    stand_in: Callable[..., StandInGateway],
) -> None:
    gateway = stand_in("1msg")
    with pytest.raises(AirflowFailException, match=r"phone='8 \(495\) 123-45-67': .*\+84 951 234 567 \(VN\)"):
        SendContactOperator(task_id="send", contact_ids=["+7 900 111-11-11"], phone=MOSCOW).execute({})  # type: ignore[arg-type]
    assert gateway.requests == []


def test_the_operators_region_is_templated_and_wins_over_the_connections(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = regional_gateway(stand_in, monkeypatch, default_region="RU")
    operator = SendContactOperator(
        task_id="send", contact_ids=["(650) 555-1234"], phone="(650) 555-0000", default_region="{{ params.region }}"
    )
    operator.render_template_fields({"params": {"region": "US"}})  # type: ignore[arg-type]
    operator.execute({})  # type: ignore[arg-type]
    (request,) = gateway.requests
    assert json.loads(request.body)["phone"] == "16505550000"
    assert json.loads(request.body)["contacts"][0]["phones"][0]["wa_id"] == "16505551234"


def test_a_fan_out_reads_its_recipients_in_the_region(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = regional_gateway(stand_in, monkeypatch)
    SendContactToManyOperator(
        task_id="send", contact_ids=["+7 900 111-11-11"], recipients=[MOSCOW, "8 900 222-22-22"], default_region="RU"
    ).execute({})  # type: ignore[arg-type]
    assert sorted(json.loads(request.body)["phone"] for request in gateway.requests) == ["74951234567", "79002222222"]


def test_the_notifier_and_the_hook_take_a_region_too(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    ChatApiNotifier(contact_ids=["+7 900 111-11-11"], phone=MOSCOW, default_region="RU").notify({})  # type: ignore[arg-type]
    asyncio.run(ChatApiHook().asend_contact([MOSCOW], phone="+1 650 555 1234", default_region="RU"))
    assert [json.loads(request.body)["phone"] for request in gateway.requests] == ["74951234567", "16505551234"]
    assert gateway.messages[1].contact_ids == ("74951234567@c.us",)


@pytest.mark.parametrize("region", ["Russia", "XX", "R U", 7])
def test_a_bad_region_fails_before_any_request_naming_default_region(
    stand_in: Callable[..., StandInGateway], region: Any
) -> None:
    gateway = stand_in("1msg")
    with pytest.raises(AirflowFailException, match="default_region="):
        SendContactOperator(
            task_id="send", contact_ids=["+7 900 111-11-11"], phone=MOSCOW, default_region=region
        ).execute(
            {}  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidInputError) as refused:
        ChatApiHook().send_contact(["+7 900 111-11-11"], phone="+7 900 222-22-22", default_region=region)
    assert refused.value.field == "default_region"
    assert gateway.requests == []


def test_a_bad_region_on_the_connection_names_the_connections_field(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = regional_gateway(stand_in, monkeypatch, default_region="Russia")
    with pytest.raises(ConnectionConfigError) as refused:
        ChatApiHook().send_contact([MOSCOW], phone="+7 900 222-22-22")
    assert (refused.value.setting, refused.value.value) == ("extra 'default_region'", "Russia")
    assert gateway.requests == []
