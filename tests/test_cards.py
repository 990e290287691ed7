"""Contact cards: the forms DAG authors write, the full objects they become, and every bad card refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi._protocol.cards import normalize_contacts
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.exceptions import InvalidInputError
from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.testing import StandInGateway

ANN = {
    "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
    "phones": [{"phone": "+79001111111", "type": "CELL", "wa_id": "79001111111"}],
}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"},
            {**ANN, "emails": [{"email": "ann@example.com"}], "org": {"company": "Acme"}},
        ),
        (
            {"name": " Ann   Lee ", "phone": 79001111111},
            {**ANN, "name": {**ANN["name"], "formatted_name": "Ann   Lee"}},
        ),
        (
            {"name": "Cher", "phones": ["+7 900 111-11-11", {"wa_id": "79002222222", "type": "work"}]},
            {
                "name": {"formatted_name": "Cher", "first_name": "Cher"},
                "phones": [
                    {"phone": "+79001111111", "type": "CELL", "wa_id": "79001111111"},
                    {"phone": "+79002222222", "type": "WORK", "wa_id": "79002222222"},
                ],
            },
        ),
        (  # the full 1msg object is kept as written, only trimmed
            {
                "name": {"formatted_name": "Dr Ann Lee", "first_name": "Ann", "last_name": "Lee", "prefix": "Dr"},
                "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME", "wa_id": "19405551234"}],
                "emails": [{"email": "ann@example.com", "type": "WORK"}],
                "urls": [{"url": "https://example.com/ann", "type": "WORK"}],
                "org": {"company": "Acme", "department": "Ops", "title": "On call"},
                "addresses": [{"city": "Berlin", "zip": 10115, "country_code": "DE", "type": "WORK"}],
                "birthday": "1990-02-28",
            },
            {
                "name": {"formatted_name": "Dr Ann Lee", "prefix": "Dr", "first_name": "Ann", "last_name": "Lee"},
                "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME", "wa_id": "19405551234"}],
                "emails": [{"email": "ann@example.com", "type": "WORK"}],
                "urls": [{"url": "https://example.com/ann", "type": "WORK"}],
                "org": {"company": "Acme", "department": "Ops", "title": "On call"},
                "addresses": [{"city": "Berlin", "zip": "10115", "country_code": "DE", "type": "WORK"}],
                "birthday": "1990-02-28",
            },
        ),
        (  # name parts without formatted_name: WhatsApp needs one, so it is composed
            {"name": {"first_name": "Ann", "last_name": "Lee"}, "birthday": dt.date(1990, 2, 28)},
            {"name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"}, "birthday": "1990-02-28"},
        ),
        (  # formatted_name alone: WhatsApp refuses a name with no part, so parts are derived
            {"name": {"formatted_name": "Ann Lee"}, "email": {"email": "ann@example.com", "type": "home"}},
            {"name": ANN["name"], "emails": [{"email": "ann@example.com", "type": "HOME"}]},
        ),
    ],
)
def test_card_forms_become_full_objects(given: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalize_contacts([given]) == (expected,)


@pytest.mark.parametrize(
    "given",
    [
        [{"name": "Ann Lee", "phone": "+7 900 111-11-11"}],
        {"name": "Ann Lee", "phone": "+7 900 111-11-11"},  # one card alone
        '[{"name": "Ann Lee", "phone": "+7 900 111-11-11"}]',  # a JSON rendering
        "[{'name': 'Ann Lee', 'phone': '+7 900 111-11-11'}]",  # a non-native Jinja rendering (repr)
        ({"name": "Ann Lee", "phone": "+7 900 111-11-11"}, {"name": "Ann Lee", "phone": "79001111111"}),  # twice
    ],
    ids=["list", "one mapping", "json", "python repr", "duplicate dropped"],
)
def test_the_ways_a_list_of_cards_arrives(given: Any) -> None:
    assert normalize_contacts(given) == (ANN,)


def test_contact_ids_become_cards_named_by_the_number() -> None:
    send = build_send_contact(["+7 900 111-11-11", "4915112345678@c.us"], phone="17472822486")
    assert [card["name"] for card in send.contacts] == [
        {"formatted_name": "+7 900 111-11-11", "first_name": "+7 900 111-11-11"},
        {"formatted_name": "+49 1511 2345678", "first_name": "+49 1511 2345678"},
    ]
    assert send.whatsapp_ids == ["79001111111", "4915112345678"]


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
    Bad([{"name": "Ann", "phones": [{"wa_id": "79001111111", "type": "FAX"}]}], "contacts[0].phones[0].type", "FAX"),
    Bad([{"name": "Ann", "phones": [{"number": "79001111111"}]}], "contacts[0].phones[0].number", "79001111111"),
    Bad([{**OK, "phones": ["79002222222"]}], "contacts[0].phone", "+7 900 111-11-11"),  # phone and phones
    Bad([{**OK, "email": "ann.example.com"}], "contacts[0].email", "ann.example.com"),
    Bad([{**OK, "emails": [{"email": "ann@example.com", "type": "OFFICE"}]}], "contacts[0].emails[0].type", "OFFICE"),
    Bad([{**OK, "url": "example.com"}], "contacts[0].url", "example.com"),
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
]


def test_the_operator_reaches_the_stand_in_with_a_good_card(onemsg_default: StandInGateway) -> None:
    """The control for the table below: the same setting does send, so its "no request" can fail."""
    SendContactOperator(task_id="send", contacts=[OK], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(onemsg_default.requests) == 1


@pytest.mark.parametrize("bad", BAD_CARDS, ids=[f"{bad.field}={bad.value!r}" for bad in BAD_CARDS])
def test_a_bad_card_is_refused_before_any_request(onemsg_default: StandInGateway, bad: Bad) -> None:
    operator = SendContactOperator(task_id="send", contacts=bad.contacts, phone="79002222222")
    with pytest.raises(AirflowFailException) as error:
        operator.execute({})  # type: ignore[arg-type]
    assert f"{bad.field}={bad.value!r}: " in str(error.value)
    assert onemsg_default.requests == []


def test_a_bad_card_names_its_field_at_the_function_too() -> None:
    with pytest.raises(InvalidInputError) as error:
        normalize_contacts([OK, {"name": "Bob", "phones": [{"wa_id": "79001111111", "type": "FAX"}]}])
    assert (error.value.field, error.value.value) == ("contacts[1].phones[0].type", "FAX")
    assert "CELL, MAIN, IPHONE, HOME, WORK" in str(error.value)


def test_on_a_classic_gateway_cards_go_out_as_ids_and_a_card_without_a_number_is_refused(
    chatapi_default: StandInGateway,
) -> None:
    two = [OK, {"name": "Bob", "phone": "79003333333"}]
    SendContactOperator(task_id="send", contacts=two, phone="79002222222").execute({})  # type: ignore[arg-type]
    (request,) = chatapi_default.requests
    assert json.loads(request.body) == {"phone": "79002222222", "contactId": ["79001111111@c.us", "79003333333@c.us"]}

    no_number = [OK, {"name": "Bob", "email": "bob@example.com"}]
    with pytest.raises(AirflowFailException, match=r"contacts\[1\]=.*classic gateway sends a contact by its WhatsApp"):
        SendContactOperator(task_id="send", contacts=no_number, phone="79002222222").execute({})  # type: ignore[arg-type]
    assert len(chatapi_default.requests) == 1
