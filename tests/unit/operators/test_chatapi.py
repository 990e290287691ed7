"""SendContactOperator: templating of every input form, execution against the stand-in, the failure policy
(fail at once, or leave the retry to Airflow), and a retry that finds its card through the task state store."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowFailException

from airflow_provider_chatapi.exceptions import DeliveryUnknownError, GatewayUnavailableError, RateLimitedError
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import ANN_CARD, DictStore

UPSTREAM = {
    "contacts": ["79001111111", "+7 900 222-22-22", "79001111111@c.us"],
    "recipient": "+1 (747) 282-2486",
    "group": "17680561234-1479621234@g.us",
    "quote": "false_17472822486@c.us_DF38E6A25B42CC8CCE57EC40F",
    "conn": "chatapi_default",
    "empty": "",
}
EXPECTED_CONTACTS = ["79001111111@c.us", "79002222222@c.us"]


def rendered(native: bool = False, **arguments: Any) -> SendContactOperator:
    """An operator in a DAG, with its template fields rendered against a context of upstream values."""
    with DAG("render", schedule=None, start_date=datetime(2025, 1, 1), render_template_as_native_obj=native) as dag:
        operator = SendContactOperator(task_id="send", **arguments)
    context: dict[str, Any] = {"upstream": UPSTREAM, "dag": dag, "params": {}}
    operator.render_template_fields(context)  # type: ignore[arg-type]
    return operator


def test_template_fields() -> None:
    assert set(SendContactOperator.template_fields) == {
        "contact_ids",
        "contacts",
        "phone",
        "chat_id",
        "quoted_message_id",
        "default_region",
        "chatapi_conn_id",
    }


@pytest.mark.parametrize(
    ("template", "native", "rendered_type"),
    [
        ("{{ upstream.contacts }}", False, str),  # the default: a list arrives as its repr
        ("{{ upstream.contacts | tojson }}", False, str),
        ("{{ upstream.contacts | join(',') }}", False, str),
        ("{{ upstream.contacts }}", True, list),
        (["{{ upstream.contacts[0] }}", "{{ upstream.contacts[1] }}", "79001111111"], False, list),
    ],
)
def test_contact_ids_render_and_send_in_every_form(
    stand_in: Callable[..., StandInGateway], template: Any, native: bool, rendered_type: type
) -> None:
    gateway = stand_in()
    operator = rendered(
        native,
        contact_ids=template,
        phone="{{ upstream.recipient }}",
        quoted_message_id="{{ upstream.quote }}",
        chatapi_conn_id="{{ upstream.conn }}",
    )
    assert isinstance(operator.contact_ids, rendered_type)
    assert (operator.phone, operator.chatapi_conn_id) == (UPSTREAM["recipient"], "chatapi_default")

    message_id = operator.execute({})  # type: ignore[arg-type]

    (request,) = gateway.requests
    assert json.loads(request.body) == {
        "phone": "17472822486",
        "contactId": EXPECTED_CONTACTS,
        "quotedMsgId": UPSTREAM["quote"],
    }
    assert message_id == gateway.messages[0].id


def test_chat_id_renders(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    operator = rendered(contact_ids=79001111111, chat_id="{{ upstream.group }}")
    operator.execute({})  # type: ignore[arg-type]
    assert json.loads(gateway.requests[0].body) == {
        "chatId": UPSTREAM["group"],
        "contactId": ["79001111111@c.us"],
    }


def test_int_phone_rendered_natively(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    operator = rendered(True, contact_ids="{{ [79001111111] }}", phone="{{ 17472822486 }}")
    assert operator.phone == 17472822486 and operator.contact_ids == [79001111111]
    operator.execute({})  # type: ignore[arg-type]
    assert json.loads(gateway.requests[0].body)["phone"] == "17472822486"


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"contact_ids": "{{ upstream.empty }}", "phone": "79001111111"}, "contact_ids=''"),
        ({"contact_ids": [], "phone": "79001111111"}, "contact_ids=[]"),
        ({"contact_ids": "79001111111"}, "phone/chat_id="),
        ({"contact_ids": "79001111111", "phone": "79001111111", "chat_id": "{{ upstream.group }}"}, "got both"),
        ({"contact_ids": "['79001111111', None]", "phone": "79001111111"}, "contact_ids[1]=None"),
        ({"contact_ids": "79001111111", "phone": "{{ upstream.contacts }}"}, "phone=\"['79001111111'"),
        ({"contact_ids": "79001111111", "chat_id": "{{ upstream.recipient }}"}, "chat_id='+1 (747) 282-2486'"),
        ({"contact_ids": "{{ upstream.group }}", "phone": "79001111111"}, "contact_ids[0]='17680561234-"),
    ],
)
def test_bad_input_fails_the_task_without_retries_and_sends_nothing(
    stand_in: Callable[..., StandInGateway], arguments: dict[str, Any], named: str
) -> None:
    gateway = stand_in()
    operator = rendered(**arguments)
    with pytest.raises(AirflowFailException) as error:
        operator.execute({})  # type: ignore[arg-type]
    assert named in str(error.value)
    assert gateway.requests == []


def test_permanent_gateway_refusal_fails_without_retries(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in()
    connect("chatapi_default", gateway, password="bad-token")
    with pytest.raises(AirflowFailException, match="HTTP 401"):
        rendered(contact_ids="79001111111", phone="79002222222").execute({})  # type: ignore[arg-type]


def test_possible_delivery_fails_without_retries(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.inject(Fault.server_error(500))
    with pytest.raises(AirflowFailException, match="MAY HAVE BEEN QUEUED"):
        rendered(contact_ids="79001111111", phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(gateway.messages) == 1


@pytest.mark.parametrize(
    ("faults", "error_class"),
    [([Fault.rate_limited(retry_after=0)] * 4, RateLimitedError), ([Fault.unavailable()] * 4, GatewayUnavailableError)],
)
def test_transient_refusal_leaves_the_task_retries_to_airflow(
    stand_in: Callable[..., StandInGateway], faults: list[Fault], error_class: type[Exception]
) -> None:
    gateway = stand_in()
    gateway.inject(*faults)
    operator = rendered(contact_ids="79001111111", phone="79002222222")
    operator.hook.max_retries = 0  # type: ignore[attr-defined]
    with pytest.raises(error_class):
        operator.execute({})  # type: ignore[arg-type]
    assert gateway.messages == []


def test_construction_does_no_io(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    operator = SendContactOperator(task_id="send", contact_ids="79001111111", phone="79002222222")
    assert "hook" not in vars(operator) and gateway.requests == []
    operator.execute({})  # type: ignore[arg-type]
    assert len(gateway.requests) == 1  # the same operator does reach the stand-in when it runs


def test_sessions_and_clients_are_closed_when_the_operators_finish(stand_in: Callable[..., StandInGateway]) -> None:
    stand_in()  # chatapi_default leads to a running stand-in
    single = SendContactOperator(task_id="one", contact_ids=["79001111111"], phone="79002222222")
    single.execute({})  # type: ignore[arg-type]
    assert "_session" not in vars(single.hook)
    many = SendContactToManyOperator(task_id="many", contact_ids=["79001111111"], recipients=["79002222222"])
    many.execute({})  # type: ignore[arg-type]
    assert many.hook._async_client is None


def test_a_send_taken_as_a_job_returns_the_job_and_queues_once(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    gateway.inject(Fault.queued_as_job())
    job = SendContactOperator(task_id="send", contacts=[ANN_CARD], phone="17472822486").execute({})  # type: ignore[arg-type]
    assert job.startswith("job_") and len(gateway.messages) == 1 and len(gateway.requests) == 1


def two_tries(gateway: StandInGateway, *, at_least_once: bool, second_try_faults: list[Fault]) -> Any:
    """A send whose answer is lost (500 after queueing), then a second try with the same task state store."""
    context: dict[str, Any] = {"task_state_store": DictStore()}
    gateway.inject(Fault.server_error(500))
    first = rendered(contact_ids="79001111111", phone="79002222222", at_least_once=at_least_once)
    with pytest.raises(DeliveryUnknownError):
        first.execute(context)  # type: ignore[arg-type]
    gateway.inject(*second_try_faults, endpoint="messages")
    return rendered(contact_ids="79001111111", phone="79002222222", at_least_once=at_least_once).execute(context)  # type: ignore[arg-type]


def test_a_retry_returns_the_card_the_gateway_has(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    assert two_tries(gateway, at_least_once=False, second_try_faults=[]) == gateway.messages[0].id
    assert len(gateway.messages) == 1
    # the first try, its answer lost, reads the gateway's clock (status) to place its intent on it; the
    # retry reads the history since then, whatever its own worker's clock says
    assert [r.endpoint for r in gateway.requests] == ["sendContact", "status", "messages", "showMessagesQueue"]


def test_a_retry_that_cannot_ask_the_gateway_does_not_send(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    with pytest.raises(DeliveryUnknownError, match="asking the gateway failed"):
        two_tries(gateway, at_least_once=False, second_try_faults=[Fault.server_error(500)])
    assert len(gateway.messages) == 1


def test_at_least_once_sends_when_the_gateway_cannot_be_asked(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    message_id = two_tries(gateway, at_least_once=True, second_try_faults=[Fault.server_error(500)])
    assert len(gateway.messages) == 2 and message_id == gateway.messages[1].id


def test_at_least_once_without_a_store_lets_the_task_retry(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.inject(Fault.server_error(500))
    operator = rendered(contact_ids="79001111111", phone="79002222222", at_least_once=True)
    with pytest.raises(DeliveryUnknownError):  # not AirflowFailException: Airflow's retries apply
        operator.execute({})  # type: ignore[arg-type]
