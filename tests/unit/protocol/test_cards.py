"""Contact cards: the forms DAG authors write, the full objects they become, and a bad card named by its field.

Every bad card through the operator: ``tests/unit/operators/test_bad_input.py``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.cards import normalize_contacts
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.exceptions import InvalidInputError

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


def test_a_bad_card_names_its_field_at_the_function_too() -> None:
    with pytest.raises(InvalidInputError) as error:
        normalize_contacts(
            [
                {"name": "Ann Lee", "phone": "+7 900 111-11-11"},
                {"name": "Bob", "phones": [{"wa_id": "79001111111", "type": "FAX"}]},
            ]
        )
    assert (error.value.field, error.value.value) == ("contacts[1].phones[0].type", "FAX")
    assert "CELL, MAIN, IPHONE, HOME, WORK" in str(error.value)


# A postal code may arrive as a number from a spreadsheet, but a bool is none: ``True`` is refused, not
# sent as ``"True"`` (through the operator: ``tests/unit/operators/test_bad_input.py``).


def card_with_zip(zip_code: object) -> dict[str, object]:
    return {"name": "Ann Lee", "phone": "+7 900 111-11-11", "addresses": [{"city": "Riga", "zip": zip_code}]}


@pytest.mark.parametrize("zip_code", [True, False])
def test_a_bool_zip_is_refused_naming_the_field(zip_code: bool) -> None:
    with pytest.raises(InvalidInputError) as refused:
        normalize_contacts([card_with_zip(zip_code)])
    assert refused.value.field == "contacts[0].addresses[0].zip"
    assert refused.value.value is zip_code


def test_a_numeric_zip_becomes_text() -> None:
    (normalized,) = normalize_contacts([card_with_zip(1050)])
    assert normalized["addresses"] == [{"city": "Riga", "zip": "1050"}]
