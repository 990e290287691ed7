"""Turning what DAG authors pass into what the gateway accepts: tables, then properties."""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_chatapi._protocol.onemsg import ONEMSG
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi._protocol.whatsapp import (
    checked_message_id,
    checked_region,
    normalize_chat_id,
    normalize_contact_ids,
    normalize_phone,
    normalize_recipients,
)
from airflow_provider_chatapi.exceptions import InvalidInputError
from airflow_provider_chatapi.testing._checks import check_classic_send
from tests.helpers import classic_request


def assert_names(error: pytest.ExceptionInfo[InvalidInputError], field: str, value: Any) -> None:
    assert error.value.field == field
    assert error.value.value == value
    assert str(error.value).startswith(f"{field}={value!r}: ")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("79001111111", "79001111111"),
        ("+7 (900) 111-11-11", "79001111111"),
        (" +1 747 282 2486 ", "17472822486"),
        ("+1.747.282.2486", "17472822486"),
        ("0044 7911 123456", "447911123456"),
        (79001111111, "79001111111"),
        ("6834002", "6834002"),
        ("8613912345678", "8613912345678"),
    ],
)
def test_phone_is_normalised_to_digits(given: Any, expected: str) -> None:
    assert normalize_phone(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("08001234567", "national number"),
        ("0 800 123 45 67", "written the national way"),
        ("8 (495) 123-45-67", r"would be \+84 951 234 567 \(VN\)"),  # issue 21: Moscow, or Vietnam
        ("(650) 555-1234", "written the national way"),
        ("+7 000 111-11-11", r"not a valid \+7 \(RU\) number"),  # possible length, no such range
        ("+1 650 555 1234 ext 5", "only digits"),
        ("abc", "only digits"),
        ("+7 900 abc", "only digits"),
        ("++79001111111", "only digits"),
        ("7900+1111111", "only digits"),
        ("٧٩٠٠١١١١١١١", "only digits"),
        ("123456", "wrong number of digits|country code"),
        ("1234567890123456", "has 16 digits"),
        ("89001111111", "does not start with a country code in use"),  # Russia's national 8-prefix
        ("+7 900 111-11", r"wrong number of digits for a \+7 number"),
        ("447911123456789", r"wrong number of digits for a \+44 number"),
        (None, "string or an int"),
        (True, "string or an int"),
        (7.9e10, "string or an int"),
        (-79001111111, "positive"),
        (["79001111111"], "string or an int"),
    ],
)
def test_bad_phone_names_field_and_value(given: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem) as error:
        normalize_phone(given)
    assert_names(error, "phone", given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["79001111111", "79002222222@c.us"], ("79001111111@c.us", "79002222222@c.us")),
        (("79001111111",), ("79001111111@c.us",)),
        ({"79001111111"}, ("79001111111@c.us",)),
        (frozenset({79001111111}), ("79001111111@c.us",)),
        ("79001111111", ("79001111111@c.us",)),
        ("79001111111@C.US", ("79001111111@c.us",)),
        (79001111111, ("79001111111@c.us",)),
        ([79001111111, "+7 900 222-22-22"], ("79001111111@c.us", "79002222222@c.us")),
        ("['79001111111', '79002222222@c.us']", ("79001111111@c.us", "79002222222@c.us")),
        ('["79001111111", "79002222222@c.us"]', ("79001111111@c.us", "79002222222@c.us")),
        ("('79001111111',)", ("79001111111@c.us",)),
        ("{'79001111111'}", ("79001111111@c.us",)),
        ("[79001111111, 79002222222]", ("79001111111@c.us", "79002222222@c.us")),
        ("79001111111, +7 900 222-22-22", ("79001111111@c.us", "79002222222@c.us")),
        (" 79001111111 ,79002222222 ", ("79001111111@c.us", "79002222222@c.us")),
        (
            ["79002222222", "+7 900 111-11-11", "79002222222@c.us", "79001111111"],
            ("79002222222@c.us", "79001111111@c.us"),
        ),
        (iter(["79001111111"]), ("79001111111@c.us",)),
    ],
)
def test_contact_ids_accept_every_upstream_form(given: Any, expected: tuple[str, ...]) -> None:
    assert normalize_contact_ids(given) == expected


@pytest.mark.parametrize(
    ("given", "field", "value", "problem"),
    [
        (None, "contact_ids", None, "is required"),
        ([], "contact_ids", [], "is empty"),
        ("", "contact_ids", "", "is empty"),
        ("   ", "contact_ids", "   ", "is empty"),
        ("[]", "contact_ids", "[]", "is empty"),
        ([None], "contact_ids[0]", None, "not NoneType"),
        (["79001111111", None], "contact_ids[1]", None, "not NoneType"),
        ([["79001111111"]], "contact_ids[0]", ["79001111111"], "not list"),
        ("[79001111111, [79002222222]]", "contact_ids[1]", [79002222222], "not list"),
        ([True], "contact_ids[0]", True, "not bool"),
        (True, "contact_ids", True, "got bool"),
        (3.5, "contact_ids", 3.5, "got float"),
        ({"79001111111": 1}, "contact_ids", {"79001111111": 1}, "got dict"),
        (b"79001111111", "contact_ids", b"79001111111", "got bytes"),
        ("{'a': 1}", "contact_ids", "{'a': 1}", "not one"),
        ("[not a list", "contact_ids", "[not a list", "not one"),
        ("120363123456789012@g.us", "contact_ids[0]", "120363123456789012@g.us", "group chat id"),
        (["17680561234-1479621234@g.us"], "contact_ids[0]", "17680561234-1479621234@g.us", "group chat id"),
        ("79001111111@s.whatsapp.net", "contact_ids[0]", "79001111111@s.whatsapp.net", "ends in @c.us"),
        ("79001111111,,79002222222", "contact_ids[1]", "", "is empty"),
        ("None", "contact_ids[0]", "None", "only digits"),
        (["08001234567"], "contact_ids[0]", "08001234567", "national number"),
        (["79001111111", "abc@c.us"], "contact_ids[1]", "abc@c.us", "only digits"),
    ],
)
def test_bad_contact_ids_name_field_and_value(given: Any, field: str, value: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem) as error:
        normalize_contact_ids(given)
    assert_names(error, field, value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("17633123456@c.us", "17633123456@c.us"),
        (" 17633123456@C.us ", "17633123456@c.us"),
        ("17680561234-1479621234@g.us", "17680561234-1479621234@g.us"),
        ("120363041234567890@g.us", "120363041234567890@g.us"),
    ],
)
def test_chat_id_is_normalised(given: str, expected: str) -> None:
    assert normalize_chat_id(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("17633123456", "for a bare number use phone="),
        (17633123456, "for a bare number use phone="),
        ("", "ends in @c.us"),
        ("abc@c.us", "only digits"),
        ("17680561234-14796@g.us", "a group id is"),
        ("group@g.us", "a group id is"),
        ("17633123456@s.whatsapp.net", "ends in @c.us"),
        (None, "a chat id is a string"),
    ],
)
def test_bad_chat_id_names_field_and_value(given: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem) as error:
        normalize_chat_id(given)
    assert_names(error, "chat_id", given)


def test_quoted_message_id() -> None:
    assert checked_message_id(" false_17472822486@c.us_DF38E6A25B42CC8CCE57EC40F ") == (
        "false_17472822486@c.us_DF38E6A25B42CC8CCE57EC40F"
    )
    group_reply = "false_120363041234567890@g.us_3EB0C767D26A1D2B1A_17472822486@c.us"
    assert classic_request("79001111111", phone="79002222222", quoted_message_id=group_reply).json == {
        "phone": "79002222222",
        "contactId": ["79001111111@c.us"],
        "quotedMsgId": group_reply,
    }
    for bad in ("", " ", "two words", 42, "<b>1</b>", "wamid.A\x00"):
        with pytest.raises(InvalidInputError) as error:
            checked_message_id(bad, field="quoted_message_id")
        assert_names(error, "quoted_message_id", bad)
    # Any dialect's id has no spaces; the classic gateway's ids also have its own form.
    for bad in ("DF38E6A25B42CC8CCE57EC40F", "true_17472822486_ABC", "wamid.HBgLMTc0NzI4MjI0ODYVAgARGBI"):
        with pytest.raises(InvalidInputError) as error:
            classic_request("79001111111", phone="79002222222", quoted_message_id=bad)
        assert_names(error, "quoted_message_id", bad)


# ---- properties ---------------------------------------------------------------------------------

# Real numbers: libphonenumber's example mobile number of every region it knows.
numbers = st.sampled_from(
    sorted(
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")
        for region in phonenumbers.SUPPORTED_REGIONS
        if (example := phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE))
    )
)


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, Any]:
    """A number and one of the ways people write it."""
    digits = draw(numbers)
    style = draw(st.sampled_from(["bare", "plus", "spaced", "dashed", "int", "suffix", "zeros"]))
    written: Any = {
        "bare": digits,
        "plus": f"+{digits}",
        "spaced": "+" + " ".join([digits[:1], digits[1:4], digits[4:]]).strip(),
        "dashed": f"+{digits[:2]}-{digits[2:]}",
        "int": int(digits),
        "suffix": f"{digits}@c.us",
        "zeros": f"00{digits}",
    }[style]
    return digits, written


@given(st.lists(written_numbers(), min_size=1, max_size=12))
def test_normalisation_is_order_preserving_and_deduplicating(entries: list[tuple[str, Any]]) -> None:
    expected = tuple(dict.fromkeys(f"{digits}@c.us" for digits, _ in entries))
    assert normalize_contact_ids([written for _, written in entries]) == expected


@given(st.lists(written_numbers(), min_size=1, max_size=12))
def test_normalisation_is_idempotent(entries: list[tuple[str, Any]]) -> None:
    once = normalize_contact_ids([written for _, written in entries])
    assert normalize_contact_ids(once) == once
    assert normalize_contact_ids(str(list(once))) == once
    assert normalize_contact_ids(",".join(once)) == once


@given(written_numbers())
def test_a_phone_written_any_way_gives_its_digits(entry: tuple[str, Any]) -> None:
    digits, written = entry
    if isinstance(written, str) and written.endswith("@c.us"):
        written = written[: -len("@c.us")]
    assert normalize_phone(written) == digits


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children),
    max_leaves=8,
)


@given(junk)
def test_anything_is_either_accepted_or_refused_with_input_error(value: Any) -> None:
    try:
        ids = normalize_contact_ids(value)
    except InvalidInputError as error:
        assert error.field.startswith("contact_ids")
    else:
        assert ids and all(check_classic_send({"phone": "79001111111", "contactId": [i]})[0] is None for i in ids)


@given(
    contacts=st.lists(written_numbers(), min_size=1, max_size=5),
    target=st.one_of(
        written_numbers().map(lambda entry: {"phone": entry[1] if not str(entry[1]).endswith("@c.us") else entry[0]}),
        numbers.map(lambda digits: {"chat_id": f"{digits}@c.us"}),
        st.from_regex(r"120363[0-9]{12}", fullmatch=True).map(lambda group: {"chat_id": f"{group}@g.us"}),
    ),
)
def test_every_request_we_build_is_one_the_gateway_accepts(contacts: list[tuple[str, Any]], target: dict) -> None:
    request = classic_request([written for _, written in contacts], **target)
    problem, _, queued = check_classic_send(dict(request.json or {}))
    assert problem is None
    assert queued == tuple(request.json["contactId"])  # type: ignore[index]


@given(st.sets(st.from_regex(r"7900[0-9]{7}", fullmatch=True), min_size=2, max_size=8))
def test_a_set_rendered_as_text_keeps_one_order_in_every_process(numbers: set[str]) -> None:
    """Issue 20: a set rendered by a non-native template lists its items in the rendering process's hash
    order (six processes, six orders); read back, it is sorted as a set itself is."""
    rendered = "{" + ", ".join(repr(number) for number in numbers) + "}"
    reversed_text = "{" + ", ".join(repr(number) for number in reversed(list(numbers))) + "}"
    expected = [f"{number}@c.us" for number in sorted(numbers)]
    assert normalize_contact_ids(rendered) == tuple(expected)
    chats = [chat for chat, _ in normalize_recipients(reversed_text)]
    assert chats == expected


# ---- numbers written the national way (issue 21) ---------------------------------------------------
# A national number read as if it began with its country code reaches another country: "8 (495) 123-45-67",
# a Moscow landline, is +84 951 234 567, a valid Vietnamese number. Without a region such writing is
# refused; with one it is read there. Checked over whole ranges, through the request the gateway gets.

US_AREA_CODES = range(200, 1000)
RU_PREFIXES = range(300, 1000)


def sent_phone(phone: Any, region: str | None) -> str:
    """The ``phone`` of the 1msg request built for a send to ``phone``: what would reach the gateway."""
    send = build_send_contact(["+7 900 111-11-11"], phone=phone, region=region)
    return str(ONEMSG.send_request(send).json["phone"])  # type: ignore[index]


@pytest.mark.parametrize(
    ("country", "written", "region", "expected_prefix"),
    [
        ("US", [f"({npa}) 234-5678" for npa in US_AREA_CODES], "US", "1"),
        ("US", [f"{npa}-234-5678" for npa in US_AREA_CODES], "US", "1"),
        ("RU", [f"8 ({prefix}) 123-45-67" for prefix in RU_PREFIXES], "RU", "7"),
        ("RU", [f"8 {prefix} 123 45 67" for prefix in RU_PREFIXES], "RU", "7"),
    ],
    ids=["US (NPA) NXX-XXXX", "US NPA-NXX-XXXX", "RU 8 (XXX) XXX-XX-XX", "RU 8 XXX XXX XX XX"],
)
def test_no_number_written_nationally_reaches_another_country(
    country: str, written: list[str], region: str, expected_prefix: str
) -> None:
    elsewhere, refused_in_region = [], []
    for text in written:
        national_digits = "".join(ch for ch in text if ch.isdigit()).removeprefix("8" if country == "RU" else "")
        with pytest.raises(InvalidInputError, match="written the national way") as refused:
            sent_phone(text, None)  # without a region: refused, naming the field
        assert refused.value.field == "phone"
        try:
            digits = sent_phone(text, region)
        except InvalidInputError as error:
            assert error.field == "phone"
            refused_in_region.append(text)
            continue
        if digits != expected_prefix + national_digits:
            elsewhere.append((text, digits))
    assert elsewhere == []
    # With the region, what is refused is exactly what is no number in use there.
    in_use = [text for text in written if phonenumbers.is_valid_number(phonenumbers.parse(text, region))]
    assert sorted(set(written) - set(refused_in_region)) == sorted(in_use)
    assert in_use  # and the ranges do hold real numbers: the region is not simply refusing everything


def test_the_same_national_numbers_reach_their_country_as_contact_ids_and_on_cards() -> None:
    moscow = "8 (495) 123-45-67"
    send = build_send_contact([moscow], contacts=None, phone="+1 650 555 1234", region="RU")
    assert send.contacts[0]["phones"] == [{"phone": "+7 495 123-45-67", "wa_id": "74951234567"}]
    card = build_send_contact(None, contacts=[{"name": "Ann", "phone": moscow}], phone=moscow, region="RU")
    assert (card.phone, card.contacts[0]["phones"]) == ("74951234567", [{"phone": "+7 495 123-45-67"}])
    for refused_without_region in ({"contact_ids": [moscow]}, {"contacts": [{"name": "Ann", "phone": moscow}]}):
        with pytest.raises(InvalidInputError, match=r"\+84 951 234 567 \(VN\)"):
            build_send_contact(**refused_without_region, phone="+1 650 555 1234")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("written", "region", "expected"),
    [
        ("+44 (0) 20 7946 0958", None, "442079460958"),  # the trunk 0 in brackets is not dialled
        ("+44 (0) 20 7946 0958", "US", "442079460958"),  # international whatever the region
        ("0044 20 7946 0958", "RU", "442079460958"),
        ("79001111111", "RU", "79001111111"),  # digits with the country code, read alike both ways
        ("6505551234", "US", "16505551234"),  # digits that are only a number in the region
        ("442079460958", "US", "442079460958"),  # digits that are only a number with their country code
        (74951234567, "RU", "74951234567"),
    ],
)
def test_what_a_region_changes_and_what_it_leaves_alone(written: Any, region: str | None, expected: str) -> None:
    assert normalize_phone(written, region=region) == expected


def test_digits_that_mean_two_real_numbers_in_the_region_are_refused_as_ambiguous() -> None:
    with pytest.raises(InvalidInputError, match=r"ambiguous: \+7 495 123-45-67 \(RU\).*\+84 951 234 567 \(VN\)"):
        normalize_phone("84951234567", region="RU")
    assert normalize_phone("84951234567") == "84951234567"  # without a region: the gateway's own form


def test_the_region_is_asked_for_only_when_a_number_needs_it() -> None:
    asked: list[str] = []

    def region() -> str:
        asked.append("RU")
        return "RU"

    assert normalize_contact_ids(["+7 900 111-11-11", "79002222222@c.us"], region=region)
    assert asked == []
    assert normalize_contact_ids(["8 900 333-33-33"], region=region) == ("79003333333@c.us",)
    assert asked == ["RU"]


@pytest.mark.parametrize("region", ["RUS", "XX", 7, "R"])
def test_a_region_that_is_no_country_is_refused(region: Any) -> None:
    with pytest.raises(InvalidInputError) as refused:
        checked_region(region)
    assert refused.value.field == "default_region"


NUMBER_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


@given(
    region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    kind=st.sampled_from(NUMBER_TYPES),
)
def test_every_regions_numbers_written_nationally_reach_that_region_or_are_refused(region: str, kind: int) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]
    try:
        assert normalize_phone(national, region=region) == digits
    except InvalidInputError as error:
        assert "ambiguous" in str(error)  # bare digits that are also a real number abroad
    try:
        sent = normalize_phone(national)
    except InvalidInputError:
        return
    assert sent == digits or national.isdigit()  # only a bare run of digits is taken as international
