"""Bad input of every kind fails the task with an error naming the field and value, and sends nothing:
arguments, contact cards and connections."""

from __future__ import annotations

import json
from collections.abc import Callable
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
def test_bad_argument(stand_in: Callable[..., StandInGateway], case: Case) -> None:
    gateway = stand_in()
    operator = SendContactOperator(task_id="send", **case.arguments)
    with pytest.raises(AirflowFailException) as error:
        operator.execute({})  # type: ignore[arg-type]
    assert f"{case.field}={case.value!r}: " in str(error.value)
    assert gateway.requests == []


# ---- contact cards -------------------------------------------------------------------------------


class Bad(NamedTuple):
    contacts: Any
    field: str
    value: Any


OK = {"name": "Ann Lee", "phone": "+7 900 111-11-11"}
BAD_CARDS = [
    Bad([], "contacts", []),
    Bad("", "contacts", ""),
    Bad("not a list", "contacts", "not a list"),
    Bad(42, "contacts", 42),
    Bad(["Ann Lee"], "contacts[0]", "Ann Lee"),
    Bad([OK, None], "contacts[1]", None),
    Bad([{"phone": "79001111111"}], "contacts[0].name", None),
    Bad([{**OK, "name": ""}], "contacts[0].name", ""),
    Bad([{**OK, "name": 7}], "contacts[0].name", 7),
    Bad([{**OK, "name": {}}], "contacts[0].name", {}),
    Bad([{**OK, "name": {"formatted_name": "  "}}], "contacts[0].name.formatted_name", "  "),
    Bad([{**OK, "name": {"first": "Ann"}}], "contacts[0].name.first", "Ann"),
    Bad([{**OK, "nickname": "Annie"}], "contacts[0].nickname", "Annie"),
    Bad([{**OK, "phone": "89001111111"}], "contacts[0].phone", "89001111111"),
    Bad([{**OK, "phone": "+7 900 abc"}], "contacts[0].phone", "+7 900 abc"),
    Bad([{**OK, "phone": True}], "contacts[0].phone", True),
    Bad([{"name": "Ann", "phones": []}], "contacts[0].phones", []),
    Bad([{"name": "Ann", "phones": [{"type": "CELL"}]}], "contacts[0].phones[0]", {"type": "CELL"}),
    Bad([{"name": "Ann", "phones": [{"wa_id": "123"}]}], "contacts[0].phones[0].wa_id", "123"),
    Bad([{"name": "Ann", "phones": [{"wa_id": "79001111111", "type": "A\tB"}]}], "contacts[0].phones[0].type", "A\tB"),
    Bad([{**OK, "phone": "8 (495) 123-45-67"}], "contacts[0].phone", "8 (495) 123-45-67"),  # national, no region
    Bad([{**OK, "phone": "+7 000 111-11-11"}], "contacts[0].phone", "+7 000 111-11-11"),  # no such range
    Bad([{"name": "Ann", "phones": [{"number": "79001111111"}]}], "contacts[0].phones[0].number", "79001111111"),
    Bad([{**OK, "phones": ["79002222222"]}], "contacts[0].phone", "+7 900 111-11-11"),  # phone and phones
    Bad([{**OK, "email": " "}], "contacts[0].email", " "),
    Bad([{**OK, "emails": [{"email": "ann@example.com", "type": ""}]}], "contacts[0].emails[0].type", ""),
    Bad([{**OK, "url": "example"}], "contacts[0].url", "example"),
    Bad([{**OK, "url": "ftp://example.com"}], "contacts[0].url", "ftp://example.com"),
    Bad([{**OK, "org": {"name": "Acme"}}], "contacts[0].org.name", "Acme"),
    Bad([{**OK, "org": {}}], "contacts[0].org", {}),
    Bad([{**OK, "org": ["Acme"]}], "contacts[0].org", ["Acme"]),
    Bad([{**OK, "addresses": "Berlin"}], "contacts[0].addresses", "Berlin"),
    Bad([{**OK, "addresses": [{"town": "Berlin"}]}], "contacts[0].addresses[0].town", "Berlin"),
    Bad([{**OK, "addresses": [{"city": 5}]}], "contacts[0].addresses[0].city", 5),
    Bad([{**OK, "birthday": "28.02.1990"}], "contacts[0].birthday", "28.02.1990"),
    Bad([{**OK, "birthday": "1990-02-30"}], "contacts[0].birthday", "1990-02-30"),
    Bad([OK, {**OK, "birthday": 19900228}], "contacts[1].birthday", 19900228),
    # issue 21, item 4: control characters were sent as given
    Bad([{**OK, "name": "Ann\x00Lee"}], "contacts[0].name", "Ann\x00Lee"),
    Bad([{**OK, "org": {"company": "Acme\nInc"}}], "contacts[0].org.company", "Acme\nInc"),
    Bad([{**OK, "addresses": [{"city": "Riga\x1b[31m"}]}], "contacts[0].addresses[0].city", "Riga\x1b[31m"),
]


def test_the_operator_reaches_the_stand_in_with_a_good_card(stand_in: Callable[..., StandInGateway]) -> None:
    """The control for the table below: the same setting does send, so its "no request" can fail."""
    gateway = stand_in("1msg")
    SendContactOperator(task_id="send", contacts=[OK], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(gateway.requests) == 1


@pytest.mark.parametrize("bad", BAD_CARDS, ids=[f"{bad.field}={bad.value!r}" for bad in BAD_CARDS])
def test_a_bad_card_is_refused_before_any_request(stand_in: Callable[..., StandInGateway], bad: Bad) -> None:
    gateway = stand_in("1msg")
    operator = SendContactOperator(task_id="send", contacts=bad.contacts, phone="79002222222")
    with pytest.raises(AirflowFailException) as error:
        operator.execute({})  # type: ignore[arg-type]
    assert f"{bad.field}={bad.value!r}: " in str(error.value)
    assert gateway.requests == []


def test_on_a_classic_gateway_cards_go_out_as_ids_and_a_card_without_a_number_is_refused(
    stand_in: Callable[..., StandInGateway],
) -> None:
    gateway = stand_in()
    two = [OK, {"name": "Bob", "phone": "79003333333"}]
    SendContactOperator(task_id="send", contacts=two, phone="79002222222").execute({})  # type: ignore[arg-type]
    (request,) = gateway.requests
    assert json.loads(request.body) == {"phone": "79002222222", "contactId": ["79001111111@c.us", "79003333333@c.us"]}

    no_number = [OK, {"name": "Bob", "email": "bob@example.com"}]
    with pytest.raises(AirflowFailException, match=r"contacts\[1\]=.*classic gateway sends a contact by its number"):
        SendContactOperator(task_id="send", contacts=no_number, phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(gateway.requests) == 1


def test_a_bool_zip_fails_the_task_before_any_request(stand_in: Callable[..., StandInGateway]) -> None:
    """A postal code may arrive as a number, but a bool is none (the function: tests/unit/protocol/test_cards.py)."""
    gateway = stand_in("1msg")
    riga = {**OK, "addresses": [{"city": "Riga", "zip": True}]}
    with pytest.raises(AirflowFailException, match=r"contacts\[0\]\.addresses\[0\]\.zip=True"):
        SendContactOperator(task_id="send", contacts=[riga], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert gateway.requests == []
    # The control: the same card with a real postal code reaches this gateway.
    riga = {**OK, "addresses": [{"city": "Riga", "zip": "LV-1050"}]}
    SendContactOperator(task_id="send", contacts=[riga], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert [message.contacts[0]["addresses"] for message in gateway.messages] == [[{"city": "Riga", "zip": "LV-1050"}]]


# ---- connections ---------------------------------------------------------------------------------

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
    ({"extra": {"timeout": "nan"}}, "extra 'timeout'", "nan"),
    ({"extra": {"timeout": "inf"}}, "extra 'timeout'", "inf"),
    ({"extra": {"max_retries": "inf"}}, "extra 'max_retries'", "inf"),
]


@pytest.mark.parametrize(("fields", "field", "value"), CONNECTIONS, ids=[f"{c[1]}={c[2]!r}" for c in CONNECTIONS])
def test_bad_connection(
    stand_in: Callable[..., StandInGateway],
    connect: Callable[..., None],
    fields: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    gateway = stand_in()
    connect("chatapi_default", gateway, **fields)
    with pytest.raises(AirflowFailException) as error:
        SendContactOperator(task_id="send", **VALID).execute({})  # type: ignore[arg-type]
    assert f"connection 'chatapi_default' {field}={value!r}: " in str(error.value)
    assert "oops" not in str(error.value)
    assert gateway.requests == []


# ---- the operators' own options ------------------------------------------------------------------

OPTIONS = [
    ("timeout", "30"),
    ("timeout", -1),
    ("timeout", 0),
    ("timeout", float("nan")),
    ("timeout", float("inf")),
    ("timeout", True),
    ("max_retries", "3"),
    ("max_retries", -1),
    ("max_retries", 2.5),
    ("max_retries", True),
    ("at_least_once", "false-ish"),
    ("at_least_once", 1),
    ("at_least_once", None),
]


@pytest.mark.parametrize(("option", "value"), OPTIONS, ids=[f"{option}={value!r}" for option, value in OPTIONS])
def test_a_bad_option_fails_when_the_dag_is_parsed_naming_itself(option: str, value: Any) -> None:
    """Issue 21, item 4: ``timeout="30"``, ``-1``, ``nan``, ``inf`` and ``max_retries="3"``, ``-1`` were kept as
    given and failed late with bare Python errors (or never); ``at_least_once="false"`` was truthy."""
    from airflow_provider_chatapi.exceptions import InvalidInputError
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
    from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator

    with pytest.raises(InvalidInputError, match=f"{option}={value!r}: must be"):
        SendContactOperator(task_id="send", **VALID, **{option: value})
    with pytest.raises(InvalidInputError, match=f"{option}={value!r}: must be"):
        SendContactToManyOperator(
            task_id="many", contact_ids=["79001111111"], recipients=["79002222222"], **{option: value}
        )
    if option != "at_least_once":
        with pytest.raises(InvalidInputError, match=f"{option}={value!r}: must be"):
            ChatApiHook(**{option: value})


@pytest.mark.parametrize(("text", "meant"), [("false", False), ("False", False), (" TRUE ", True), (False, False)])
def test_at_least_once_reads_a_rendered_true_or_false_as_meant(text: Any, meant: bool) -> None:
    assert SendContactOperator(task_id="send", **VALID, at_least_once=text).at_least_once is meant


HUGE = [
    ({"contact_ids": ["79001111111"], "chat_id": "1234\n5678@lid"}, "chat_id"),
    ({"contact_ids": ["79001111111"], "chat_id": "<b>1234</b>@lid"}, "chat_id"),
    ({"contact_ids": ["79001111111"], "chat_id": "1" * 100_000 + "@lid"}, "chat_id"),
    ({"contact_ids": "[" * 100_000, "phone": "79002222222"}, "contact_ids"),
    ({"contact_ids": ["79001111111"], "phone": 10**5000}, "phone"),
    ({"contact_ids": [f"7900{n:07d}" for n in range(258)], "phone": "79002222222"}, "contact_ids"),
]


@pytest.mark.parametrize(
    ("arguments", "field"),
    HUGE,
    ids=["lid newline", "lid markup", "lid 100 kB", "deep rendered list", "5,000-digit phone", "258 contacts"],
)
def test_odd_and_huge_input_fails_naming_the_field_in_a_short_message(
    stand_in: Callable[..., StandInGateway], arguments: dict[str, Any], field: str
) -> None:
    """Issue 21, item 4: newlines, markup and 100 kB in an @lid chat, a rendered "[[[[…" (a bare
    RecursionError), a 5,000-digit int (a bare ValueError) and more than Meta's 257 contacts got through or
    failed without naming the field."""
    gateway = stand_in("1msg")  # the dialect that takes @lid chats
    with pytest.raises(AirflowFailException) as error:
        SendContactOperator(task_id="send", **arguments).execute({})  # type: ignore[arg-type]
    assert str(error.value).startswith(f"{field}=")
    assert len(str(error.value)) < 600
    assert gateway.requests == []


def test_a_megabyte_name_is_refused_before_any_request_in_a_short_message(
    stand_in: Callable[..., StandInGateway],
) -> None:
    """Issue 21, item 4: a 1 MB contact name was sent; text on a card is at most 1,024 characters."""
    gateway = stand_in("1msg")
    with pytest.raises(AirflowFailException, match=r"^contacts\[0\]\.name=.*1,048,576 characters long") as error:
        SendContactOperator(task_id="send", contacts=[{**OK, "name": "A" * 2**20}], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(str(error.value)) < 600
    assert gateway.requests == []
    SendContactOperator(task_id="send", contacts=[{**OK, "name": "A" * 1024}], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(gateway.requests) == 1  # the control: 1,024 characters go out
