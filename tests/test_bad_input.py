"""Bad input of every kind fails the task with an error naming the field and value, and sends nothing."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.testing import StandInGateway

VALID = {"contact_ids": ["79001111111"], "phone": "79002222222"}


class Case(NamedTuple):
    arguments: dict[str, Any]
    field: str
    value: Any


def phone(value: Any) -> Case:
    return Case({"contact_ids": ["79001111111"], "phone": value}, "phone", value)


def chat(value: Any) -> Case:
    return Case({"contact_ids": ["79001111111"], "chat_id": value}, "chat_id", value)


def contacts(value: Any, field: str = "contact_ids", shown: Any = ...) -> Case:
    return Case({**VALID, "contact_ids": value}, field, value if shown is ... else shown)


def quote(value: Any) -> Case:
    return Case({**VALID, "quoted_message_id": value}, "quoted_message_id", value)


CASES = [
    phone(""),
    phone("   "),
    phone("08001234567"),  # national format
    phone("8 (800) 123"),  # too short
    phone("abc"),
    phone("+7 900 abc"),
    phone("+7 (900) 111-11-11 ext 5"),
    phone("123456"),
    phone("1234567890123456"),  # over-long
    phone(True),
    phone(7.9e10),
    phone(-79001111111),
    phone(["79001111111"]),
    chat("17633123456"),
    chat(17633123456),
    chat(""),
    chat(" \t "),
    chat("abc@c.us"),
    chat("17680561234-14796@g.us"),
    chat("group@g.us"),
    chat("17633123456@s.whatsapp.net"),
    Case(
        {"contact_ids": None, "phone": "79002222222"},
        "contact_ids/contacts",
        {"contact_ids": None, "contacts": None},
    ),
    Case(
        {"contact_ids": ["79001111111"], "contacts": [{"name": "Ann", "phone": "79001111111"}], "phone": "79002222222"},
        "contact_ids/contacts",
        {"contact_ids": ["79001111111"], "contacts": [{"name": "Ann", "phone": "79001111111"}]},
    ),
    contacts([]),
    contacts(""),
    contacts("   "),  # whitespace only
    contacts("[]"),
    contacts([None], "contact_ids[0]", None),
    contacts(["79001111111", None], "contact_ids[1]", None),  # None inside a list
    contacts([["79001111111"]], "contact_ids[0]", ["79001111111"]),  # nested list
    contacts("[79001111111, [79002222222]]", "contact_ids[1]", [79002222222]),
    contacts([True], "contact_ids[0]", True),
    contacts(3.5),
    contacts({"79001111111": "Ann"}),
    contacts(b"79001111111"),
    contacts("{'a': 1}"),  # a rendered dict
    contacts("[not a list"),
    contacts("None", "contact_ids[0]"),  # a Jinja string that is not a list
    contacts("120363123456789012@g.us", "contact_ids[0]"),  # a group id given as a contact
    contacts(["17680561234-1479621234@g.us"], "contact_ids[0]", "17680561234-1479621234@g.us"),
    contacts("79001111111,,79002222222", "contact_ids[1]", ""),
    contacts("79001111111@s.whatsapp.net", "contact_ids[0]"),
    contacts(["08001234567"], "contact_ids[0]", "08001234567"),
    contacts(["Ann Smith"], "contact_ids[0]", "Ann Smith"),  # letters
    contacts(["1234567890123456"], "contact_ids[0]", "1234567890123456"),
    quote(""),
    quote("   "),
    quote("DF38E6A25B42CC8CCE57EC40F"),
    quote("true_17472822486_ABC"),
    quote(42),
    Case({"contact_ids": ["79001111111"]}, "phone/chat_id", {"phone": None, "chat_id": None}),
    Case(
        {"contact_ids": ["79001111111"], "phone": "79002222222", "chat_id": "79002222222@c.us"},
        "phone/chat_id",
        {"phone": "79002222222", "chat_id": "79002222222@c.us"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{case.field}={case.value!r}" for case in CASES])
def test_bad_argument(chatapi_default: StandInGateway, case: Case) -> None:
    operator = SendContactOperator(task_id="send", **case.arguments)
    with pytest.raises(AirflowFailException) as error:
        operator.execute({})  # type: ignore[arg-type]
    assert f"{case.field}={case.value!r}: " in str(error.value)
    assert chatapi_default.requests == []


def conn(gateway: StandInGateway, **fields: Any) -> str:
    fields = {"conn_type": "chatapi", "host": gateway.api_url, "password": gateway.token, **fields}
    return json.dumps({name: value for name, value in fields.items() if value is not None})


CONNECTIONS = [
    ({"password": None}, "password", None),
    ({"password": "   "}, "password", None),
    ({"host": "ftp://127.0.0.1/instance1"}, "host", "ftp://127.0.0.1/instance1"),
    ({"host": "http://127.0.0.1:1/instance1?token=oops"}, "host", "http://127.0.0.1:1/instance1"),
    ({"host": "http://127.0.0.1:99999"}, "host", "http://127.0.0.1:99999"),
    ({"login": "abc"}, "login", "abc"),
    ({"login": "999"}, "login", "999"),  # differs from the instance in the host
    ({"extra": {"timeout": "soon"}}, "extra 'timeout'", "soon"),
    ({"extra": {"max_retries": -1}}, "extra 'max_retries'", -1),
]


@pytest.mark.parametrize(("fields", "field", "value"), CONNECTIONS, ids=[f"{c[1]}={c[2]!r}" for c in CONNECTIONS])
def test_bad_connection(
    gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], field: str, value: Any
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", conn(gateway, **fields))
    with pytest.raises(AirflowFailException) as error:
        SendContactOperator(task_id="send", **VALID).execute({})  # type: ignore[arg-type]
    assert f"connection 'chatapi_default' {field}={value!r}: " in str(error.value)
    assert "oops" not in str(error.value)
    assert gateway.requests == []
