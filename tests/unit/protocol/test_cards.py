"""Contact cards: the forms DAG authors write, the full objects they become, and a bad card named by its field.

Every bad card through the operator: ``tests/unit/operators/test_bad_input.py``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.cards import normalize_contacts
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.exceptions import InvalidInputError
from tests.helpers import META_EXAMPLE

ANN = {  # a phone written without wa_id: no one said it is on WhatsApp, so no "Message" button is made up
    "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
    "phones": [{"phone": "+7 900 111-11-11"}],
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
                    {"phone": "+7 900 111-11-11"},
                    {"phone": "+7 900 222-22-22", "type": "work", "wa_id": "79002222222"},
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
            {"name": ANN["name"], "emails": [{"email": "ann@example.com", "type": "home"}]},
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
    # A contact id is a WhatsApp id by definition: its card's phone has one.
    assert [card["phones"] for card in send.contacts] == [
        [{"phone": "+7 900 111-11-11", "wa_id": "79001111111"}],
        [{"phone": "+49 1511 2345678", "wa_id": "4915112345678"}],
    ]


def test_a_bad_card_names_its_field_at_the_function_too() -> None:
    with pytest.raises(InvalidInputError) as error:
        normalize_contacts(
            [
                {"name": "Ann Lee", "phone": "+7 900 111-11-11"},
                {"name": "Bob", "phones": [{"wa_id": "79001111111", "type": "Mobile\nHome"}]},
            ]
        )
    assert (error.value.field, error.value.value) == ("contacts[1].phones[0].type", "Mobile\nHome")
    assert "control character" in str(error.value)


def test_metas_example_card_goes_out_with_its_free_text_types_and_its_one_wa_id() -> None:
    (card,) = normalize_contacts([META_EXAMPLE])
    assert card == {
        **META_EXAMPLE,
        # the landline has no wa_id, and none is made up
        "phones": [
            {"phone": "+1 (940) 555-1234", "type": "Landline"},
            {"phone": "+1 (650) 555-1234", "type": "Mobile", "wa_id": "16505551234"},  # beside a wa_id: as written
        ],
    }


@pytest.mark.parametrize(
    ("phone", "shown"),
    [
        ({"phone": "+1 650 555 1234 ext. 22", "wa_id": "16505551234"}, "+1 650 555 1234 ext. 22"),
        ({"phone": "+1-800-FLOWERS", "wa_id": "18003569377"}, "+1-800-FLOWERS"),
        ({"phone": "Reception, ask for Ann", "wa_id": "16505551234"}, "Reception, ask for Ann"),
        ("+1 650 555 1234 ext. 22", "+1 650 555 1234 ext. 22"),  # a real number, written with +: as written
        ("0016505551234", "+1 650-555-1234"),  # 00 dials only where 00 is the call prefix: shown with +
        (16505551234, "+1 650-555-1234"),
    ],
    ids=[
        "extension beside wa_id",
        "letters beside wa_id",
        "free text beside wa_id",
        "extension alone",
        "00",
        "int",
    ],
)
def test_a_displayed_phone_is_free_text_beside_a_wa_id_and_a_real_number_without_one(phone: Any, shown: str) -> None:
    (card,) = normalize_contacts([{"name": "Ann", "phones": [phone]}])
    assert card["phones"][0]["phone"] == shown


@pytest.mark.parametrize("phone", ["Reception, ask for Ann", "8 (495) 123-45-67", "+7 000 111 11 11"])
def test_a_phone_without_a_wa_id_must_be_a_real_number(phone: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        normalize_contacts([{"name": "Ann", "phone": phone}])
    assert (refused.value.field, refused.value.value) == ("contacts[0].phone", phone)


def test_a_national_phone_on_a_card_is_read_in_the_region() -> None:
    (card,) = normalize_contacts([{"name": "Ann", "phone": "8 (495) 123-45-67"}], region="RU")
    assert card["phones"] == [{"phone": "+7 495 123-45-67"}]


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("www.example.com", "https://www.example.com"),
        ("example.com/ann?x=1", "https://example.com/ann?x=1"),
        ("http://example.com", "http://example.com"),
    ],
)
def test_a_url_without_a_scheme_is_taken_as_https(url: str, sent: str) -> None:
    (card,) = normalize_contacts([{"name": "Ann", "url": url}])
    assert card["urls"] == [{"url": sent}]


@pytest.mark.parametrize("url", ["ftp://example.com", "not a url", "mailto:ann@example.com", "localhost"])
def test_what_is_no_web_address_is_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="web address") as refused:
        normalize_contacts([{"name": "Ann", "url": url}])
    assert refused.value.field == "contacts[0].url"


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
