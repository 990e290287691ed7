"""The stand-in gateway's 1msg dialect over real HTTP, tested on its own terms.

Only :mod:`airflow_provider_chatapi.testing` is imported: the stand-in is what the provider's protocol code
is tested against, so these tests hold it to the 1msg contract (``../shared/onemsg-protocol.md`` beside the repository)
without going through that code, and a bug there cannot make them pass.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_chatapi import testing
from airflow_provider_chatapi.testing import DIALECTS, Ack, Fault, StandInGateway
from tests.helpers import ANN_ON_THE_WIRE as ANN
from tests.helpers import PHONE

# Every field a card may have, each in an accepted form: the checks must not be stricter than 1msg.
BOB = {
    "name": {
        "formatted_name": "Dr Bob Q Smith Jr",
        "first_name": "Bob",
        "middle_name": "Q",
        "last_name": "Smith",
        "prefix": "Dr",
        "suffix": "Jr",
    },
    "phones": [
        {"phone": "+44 20 7946 0000", "type": "WORK"},
        {"wa_id": "447946000001", "type": "IPHONE"},
        {"phone": "+44 7946 000002", "wa_id": "447946000002", "type": "MAIN"},
    ],
    "emails": [{"email": "bob@example.org"}, {"email": "b@example.net", "type": "HOME"}],
    "urls": [{"url": "https://example.org/bob", "type": "blog"}, {"url": "https://example.org"}],
    "org": {"company": "Acme", "department": "R&D", "title": "Chemist"},
    "addresses": [
        {
            "street": "1 High St",
            "city": "London",
            "state": "LDN",
            "zip": "N1 1AA",
            "country": "United Kingdom",
            "country_code": "gb",
            "type": "HOME",
        }
    ],
    "birthday": "1984-02-29",
}
NO_WA_ID = {"name": {"formatted_name": "Cy", "first_name": "Cy"}, "phones": [{"phone": "+1 555 0100"}]}
ANN_VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Ann Lee\nTEL;type=CELL;waid=79001111111:+79001111111\nEND:VCARD"
WAMID = re.compile(r"wamid\.HBgL[A-Za-z0-9_-]{24}")


@pytest.fixture
def onemsg(stand_in: Callable[..., StandInGateway]) -> StandInGateway:
    """The stand-in speaking 1msg, which most of these tests hold to its contract."""
    return stand_in("1msg")


def post(gateway: StandInGateway, body: Any, *, path: str | None = None, token: str | None = None) -> requests.Response:
    url = f"{gateway.base_url}{path}" if path else f"{gateway.api_url}/sendContact"
    token = gateway.token if token is None else token
    return requests.post(url, params={"token": token}, json=body, timeout=5, allow_redirects=False)


def get(gateway: StandInGateway, endpoint: str, **params: str) -> requests.Response:
    params = {"token": gateway.token, **params}
    return requests.get(f"{gateway.api_url}/{endpoint}", params=params, timeout=5, allow_redirects=False)


# ---- construction and addressing ---------------------------------------------------------------


def test_dialects_and_their_defaults() -> None:
    assert DIALECTS == ("chatapi", "1msg")
    with pytest.raises(ValueError, match="dialect='whatsapp'"):
        StandInGateway(dialect="whatsapp")
    assert StandInGateway().account_status == "authenticated"
    assert StandInGateway(dialect="1msg").account_status == "connected"
    assert StandInGateway(dialect="1msg", account_status="unregistered").account_status == "unregistered"


def test_1msg_url_and_connection_name_the_dialect(onemsg: StandInGateway) -> None:
    assert onemsg.api_url == f"http://127.0.0.1:{onemsg.port}/123456"
    assert json.loads(onemsg.connection_json()) == {
        "conn_type": "chatapi",
        "host": onemsg.api_url,
        "password": onemsg.token,
        "extra": {"dialect": "1msg"},
    }
    assert json.loads(onemsg.connection_json(timeout=3))["extra"] == {"dialect": "1msg", "timeout": 3}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/instance123456/sendContact"),  # classic addressing
        ("GET", "/instance123456/status"),
        ("GET", "/123456/showMessagesQueue"),  # classic only
        ("GET", "/654321/status"),  # another channel
        ("GET", "/123456/sendContact"),
    ],
)
def test_what_1msg_does_not_have_is_a_404(onemsg: StandInGateway, method: str, path: str) -> None:
    answer = requests.request(method, f"{onemsg.base_url}{path}", params={"token": onemsg.token}, json={}, timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"error": f"Unknown method {method} {path}"}
    assert onemsg.messages == []


def test_a_1msg_path_on_a_classic_stand_in_is_a_404(stand_in: Callable[..., StandInGateway]) -> None:
    classic = stand_in()
    answer = post(classic, {"phone": PHONE, "contacts": [ANN]}, path="/123456/sendContact")
    assert answer.status_code == 404
    assert answer.json() == {"error": "Unknown method POST /123456/sendContact"}


@pytest.mark.parametrize(
    ("echo", "token", "text"),
    [
        (False, "nope", 'Wrong token for channel "123456". Please provide token as a GET parameter.'),
        (True, "nope", 'Wrong token "nope" for channel "123456". Please provide token as a GET parameter.'),
        (True, "", 'Wrong token "" for channel "123456". Please provide token as a GET parameter.'),
    ],
)
def test_a_wrong_token_is_a_401_naming_the_channel(
    stand_in: Callable[..., StandInGateway], echo: bool, token: str, text: str
) -> None:
    gateway = stand_in("1msg", echo_token=echo)
    answer = post(gateway, {"phone": PHONE, "contacts": [ANN]}, token=token)
    assert answer.status_code == 401
    assert answer.json() == {"error": text}
    assert gateway.messages == []


def test_a_missing_token_is_not_shown_as_none(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", echo_token=True)
    answer = requests.get(f"{gateway.api_url}/status", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"].startswith('Wrong token "" for channel "123456"')


# ---- sendContact --------------------------------------------------------------------------------


def test_a_valid_send_is_recorded_and_answered_with_a_wamid(onemsg: StandInGateway) -> None:
    body = {"phone": PHONE, "contacts": [ANN, BOB, NO_WA_ID], "quotedMsgId": "wamid.HBgLquoted"}
    answer = post(onemsg, body)

    assert answer.status_code == 200
    said = answer.json()
    assert set(said) == {"sent", "id", "message", "description"}  # no queueNumber on 1msg
    assert said["sent"] is True
    assert WAMID.fullmatch(said["id"]), said["id"]
    assert said["message"] == f"Sent to {PHONE}@c.us"
    assert said["description"] == "Message has been sent to the provider"
    (message,) = onemsg.messages
    assert message.id == said["id"]
    assert message.chat_id == f"{PHONE}@c.us"
    assert message.contacts == (ANN, BOB, NO_WA_ID)
    # Bob's first phone has no wa_id and Cy has none at all: only Ann's number counts
    assert message.contact_ids == ("79001111111@c.us",)
    assert message.quoted_message_id == "wamid.HBgLquoted"
    assert message.type == "contacts"
    assert message.delivered is True  # no outbound queue on 1msg
    (request,) = onemsg.requests_to("sendContact")
    assert request.json == body and request.query == {"token": onemsg.token}


def test_each_send_gets_its_own_id(onemsg: StandInGateway) -> None:
    ids = {post(onemsg, {"phone": PHONE, "contacts": [ANN]}).json()["id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    "chat_id", ["79001111111@c.us", "79001111111-1479621234@g.us", "120363041234567890@g.us", "Zx9_q-1@lid"]
)
def test_chat_ids_1msg_takes(onemsg: StandInGateway, chat_id: str) -> None:
    answer = post(onemsg, {"chatId": chat_id, "contacts": [ANN]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == f"Sent to {chat_id}"
    assert [message.chat_id for message in onemsg.messages] == [chat_id]


@pytest.mark.parametrize(
    ("dialect", "card"), [("1msg", {"contacts": [ANN]}), ("chatapi", {"contactId": ["79001111111@c.us"]})]
)
def test_a_refused_chat_is_answered_sent_false_and_queues_nothing(
    stand_in: Callable[..., StandInGateway], dialect: str, card: dict[str, Any]
) -> None:
    refused, other = "120363049999999999@g.us", "120363041234567890@g.us"
    gateway = stand_in(dialect, refuse_chats={refused: "Chat not found"})
    refusal = post(gateway, {"chatId": refused, **card})
    accepted = post(gateway, {"chatId": other, **card})

    assert (refusal.status_code, refusal.json()) == (200, {"sent": False, "message": "Chat not found"})
    assert accepted.json()["sent"] is True
    assert [message.chat_id for message in gateway.messages] == [other]


def test_phone_as_a_whole_number_is_taken(onemsg: StandInGateway) -> None:
    # The WABA SDK types phone an integer (2.39.0 made it a string): 1msg takes both.
    answer = post(onemsg, {"phone": int(PHONE), "contacts": [ANN]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == f"Sent to {PHONE}@c.us"
    assert [message.chat_id for message in onemsg.messages] == [f"{PHONE}@c.us"]


@pytest.mark.parametrize("phone", [123456, -int(PHONE), 10**15, 0, 7472822486.0])
def test_phone_as_a_number_that_is_no_whatsapp_number_is_refused(onemsg: StandInGateway, phone: Any) -> None:
    answer = post(onemsg, {"phone": phone, "contacts": [ANN]})
    assert answer.status_code == 400
    assert answer.json() == {"error": f"phone: wrong format {phone!r}; use digits with the country code"}
    assert onemsg.messages == []


def test_contact_ids_are_refused(onemsg: StandInGateway) -> None:
    answer = post(onemsg, {"phone": PHONE, "contactId": ["79001111111@c.us"]})
    assert answer.status_code == 400
    assert answer.json() == {"error": "contactId is not a field of 1msg's sendContact; send contacts"}
    assert onemsg.messages == []


def card(**fields: Any) -> dict[str, Any]:
    """Ann's card with these fields replaced (a value of ``...`` drops the field)."""
    return {key: value for key, value in {**ANN, **fields}.items() if value is not ...}


def send(*cards: Any, **fields: Any) -> dict[str, Any]:
    return {"phone": PHONE, "contacts": list(cards), **fields}


BAD_BODIES: list[tuple[str, Any, str]] = [
    # the request
    ("array body", [send(ANN)], "body must be a JSON object"),
    ("null field", send(ANN, chatId=None), "must not be null: chatId"),
    ("phone and chatId", send(ANN, chatId="79001111111@c.us"), "exactly one of phone or chatId"),
    ("neither", {"contacts": [ANN]}, "exactly one of phone or chatId"),
    ("phone with +", send(ANN, phone="+17472822486"), "phone"),
    ("phone too short", send(ANN, phone="123456"), "phone"),
    ("phone too long", send(ANN, phone="1234567890123456"), "phone"),
    ("phone from 0", send(ANN, phone="07472822486"), "phone"),
    ("phone as bool", send(ANN, phone=True), "phone: wrong format True"),
    ("chatId as int", {"chatId": 79001111111, "contacts": [ANN]}, "chatId"),
    ("chatId unknown", {"chatId": "79001111111@s.whatsapp.net", "contacts": [ANN]}, "chatId"),
    ("chatId with +", {"chatId": "+79001111111@c.us", "contacts": [ANN]}, "chatId"),
    ("no contacts", {"phone": PHONE}, "contacts is required"),
    ("empty contacts", send(), "contacts is required"),
    ("contacts an object", {"phone": PHONE, "contacts": ANN}, "contacts is required"),
    ("card not an object", send("Ann Lee"), "contacts[0] must be an object"),
    ("second card bad", send(ANN, card(name=...)), "contacts[1].name is required"),
    ("quotedMsgId empty", send(ANN, quotedMsgId=""), "quotedMsgId"),
    ("quotedMsgId a number", send(ANN, quotedMsgId=5), "quotedMsgId"),
    # the card
    ("unknown card key", send(card(nickname="A")), "contacts[0].nickname is not a contact field"),
    ("no name", send(card(name=...)), "contacts[0].name is required"),
    ("name a string", send(card(name="Ann Lee")), "contacts[0].name is required"),
    ("no formatted_name", send(card(name={"first_name": "Ann"})), "contacts[0].name.formatted_name is required"),
    ("empty formatted_name", send(card(name={"formatted_name": " ", "first_name": "Ann"})), "name.formatted_name"),
    ("formatted_name only", send(card(name={"formatted_name": "Ann"})), "contacts[0].name needs one of"),
    ("empty name part", send(card(name={"formatted_name": "Ann", "first_name": ""})), "contacts[0].name.first_name"),
    ("name part a number", send(card(name={"formatted_name": "Ann", "last_name": 7})), "contacts[0].name.last_name"),
    ("unknown name key", send(card(name={"formatted_name": "A", "first_name": "A", "nick": "B"})), "name.nick"),
    ("phones an object", send(card(phones={"wa_id": "79001111111"})), "contacts[0].phones"),
    ("phone entry a string", send(card(phones=["79001111111"])), "contacts[0].phones[0]"),
    ("unknown phone key", send(card(phones=[{"wa_id": "79001111111", "label": "x"}])), "contacts[0].phones[0]"),
    ("phone value a number", send(card(phones=[{"phone": 79001111111}])), "contacts[0].phones[0]"),
    # every type is free text (Meta's own example: "Landline", "Work (old)"), but text all the same
    ("phone type a line break", send(card(phones=[{"phone": "+1", "type": "Home\nWork"}])), "phones[0].type"),
    ("phone type empty", send(card(phones=[{"phone": "+1", "type": " "}])), "contacts[0].phones[0].type"),
    ("phone type 2k", send(card(phones=[{"phone": "+1", "type": "x" * 2000}])), "contacts[0].phones[0].type"),
    ("wa_id with +", send(card(phones=[{"wa_id": "+79001111111"}])), "contacts[0].phones[0].wa_id"),
    ("wa_id too short", send(card(phones=[{"wa_id": "790011"}])), "contacts[0].phones[0].wa_id"),
    ("phone without number", send(card(phones=[{"type": "CELL"}])), "contacts[0].phones[0] needs phone or wa_id"),
    ("2nd phone bad", send(card(phones=[{"wa_id": "79001111111"}, {"type": "HOME"}])), "contacts[0].phones[1]"),
    ("email empty", send(card(emails=[{"email": ""}])), "contacts[0].emails[0].email"),
    ("email missing", send(card(emails=[{"type": "WORK"}])), "contacts[0].emails[0].email"),
    ("email type a number", send(card(emails=[{"email": "a@b.c", "type": 1}])), "contacts[0].emails[0].type"),
    ("258 contacts", send(*[ANN] * 258), "at most 257 contacts"),
    ("emails an object", send(card(emails={"email": "a@b.c"})), "contacts[0].emails"),
    ("url missing", send(card(urls=[{"type": "blog"}])), "contacts[0].urls[0].url"),
    ("url a number", send(card(urls=[{"url": 5}])), "contacts[0].urls[0]"),
    ("org a string", send(card(org="Acme")), "contacts[0].org"),
    ("unknown org key", send(card(org={"company": "Acme", "ceo": "Wile"})), "contacts[0].org"),
    ("org value a number", send(card(org={"company": 1})), "contacts[0].org"),
    ("unknown address key", send(card(addresses=[{"city": "Oslo", "planet": "Earth"}])), "contacts[0].addresses[0]"),
    ("address value a number", send(card(addresses=[{"zip": 12345}])), "contacts[0].addresses[0]"),
    ("addresses an object", send(card(addresses={"city": "Oslo"})), "contacts[0].addresses"),
    ("birthday not a date", send(card(birthday="1990-02-30")), "contacts[0].birthday"),
    ("birthday day first", send(card(birthday="30-01-1990")), "contacts[0].birthday"),
    ("birthday compact", send(card(birthday="19900130")), "contacts[0].birthday"),
    ("birthday a number", send(card(birthday=19900130)), "contacts[0].birthday"),
]


@pytest.mark.parametrize(("body", "names"), [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES])
def test_a_bad_body_is_a_400_naming_the_field(onemsg: StandInGateway, body: Any, names: str) -> None:
    answer = post(onemsg, body)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"error"}
    assert names in answer.json()["error"]
    assert onemsg.messages == []
    assert onemsg.errors == []


def test_a_body_that_is_not_json_is_a_400(onemsg: StandInGateway) -> None:
    answer = requests.post(
        f"{onemsg.api_url}/sendContact", params={"token": onemsg.token}, data=b"phone=1747", timeout=5
    )
    assert answer.status_code == 400
    assert "JSON object" in answer.json()["error"]


# ---- status and history ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["connected", "connecting", "disconnected", "uninitialized", "unregistered"])
def test_status(stand_in: Callable[..., StandInGateway], status: str) -> None:
    gateway = stand_in("1msg", account_status=status)
    answer = get(gateway, "status")
    assert answer.status_code == 200
    assert answer.json() == {"status": status}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stand-in's clock, set by the test: only the stand-in's module sees it."""
    now = [1_700_000_000]
    monkeypatch.setattr(testing, "time", types.SimpleNamespace(time=lambda: now[0], sleep=time.sleep))
    return now


def test_history_filters_and_stores_cards_as_vcards(onemsg: StandInGateway, clock: list[int]) -> None:
    sent = []
    for at, body in [
        (1_700_000_000, {"phone": PHONE, "contacts": [ANN]}),
        (1_700_000_100, {"chatId": "79001111111-1479621234@g.us", "contacts": [ANN, BOB]}),
        (1_700_000_200, {"phone": PHONE, "contacts": [BOB, NO_WA_ID]}),
    ]:
        clock[0] = at
        sent.append(post(onemsg, body).json()["id"])

    def ids(**query: str) -> list[str]:
        answer = get(onemsg, "messages", **query)
        assert answer.status_code == 200
        return [entry["id"] for entry in answer.json()["messages"]]

    assert ids() == sent
    assert ids(chatId=f"{PHONE}@c.us") == [sent[0], sent[2]]
    assert ids(min_time="1700000100") == sent[1:]
    assert ids(max_time="1700000100") == sent[:2]
    assert ids(min_time="1700000050", max_time="1700000150") == [sent[1]]
    assert ids(chatId=f"{PHONE}@c.us", min_time="1700000001") == [sent[2]]
    assert ids(chatId="nobody@c.us") == []
    assert ids(limit="2") == sent[1:]  # the latest ones

    entries = get(onemsg, "messages").json()["messages"]
    assert entries[0] == {
        **entries[0],
        "id": sent[0],
        "messageNumber": 1,
        "body": ANN_VCARD,
        "fromMe": True,
        "time": 1_700_000_000,
        "chatId": f"{PHONE}@c.us",
        "type": "contacts",
    }
    bob_vcard = (
        "BEGIN:VCARD\nVERSION:3.0\nFN:Dr Bob Q Smith Jr\n"
        "TEL;type=CELL;waid=447946000001:+447946000001\n"
        "TEL;type=CELL;waid=447946000002:+447946000002\n"
        "END:VCARD"
    )
    assert entries[1]["body"] == f"{ANN_VCARD}\n{bob_vcard}"
    assert entries[2]["body"] == f"{bob_vcard}\nBEGIN:VCARD\nVERSION:3.0\nFN:Cy\nEND:VCARD"
    assert [entry["messageNumber"] for entry in entries] == [1, 2, 3]


def test_the_default_history_page_is_100(onemsg: StandInGateway) -> None:
    for _ in range(105):
        post(onemsg, {"phone": PHONE, "contacts": [ANN]})
    entries = get(onemsg, "messages").json()["messages"]
    assert [entry["id"] for entry in entries] == [message.id for message in onemsg.messages[5:]]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_limit_0_lists_every_message(stand_in: Callable[..., StandInGateway], dialect: str) -> None:
    gateway = stand_in(dialect)
    card = {"contacts": [ANN]} if dialect == "1msg" else {"contactId": "79001111111@c.us"}
    for _ in range(105):
        post(gateway, {"phone": PHONE, **card})
    gateway.deliver_queue()
    answer = get(gateway, "messages", limit="0")
    assert answer.status_code == 200, answer.text
    assert [entry["id"] for entry in answer.json()["messages"]] == [message.id for message in gateway.messages]
    assert answer.json()["lastMessageNumber"] == 105


def test_history_by_message_id_and_message_number(onemsg: StandInGateway) -> None:
    other = "79002222222"
    sent = [post(onemsg, {"phone": phone, "contacts": [ANN]}).json()["id"] for phone in [PHONE, other] * 3]

    def page(**query: str) -> tuple[list[int], int]:
        answer = get(onemsg, "messages", **query)
        assert answer.status_code == 200, answer.text
        said = answer.json()
        return [entry["messageNumber"] for entry in said["messages"]], said["lastMessageNumber"]

    assert page(msgId=sent[3]) == ([4], 6)
    assert page(msgId=sent[3], chatId=f"{PHONE}@c.us") == ([], 6)
    assert page(msgId="wamid.HBgLnobody") == ([], 6)
    # above a number, the oldest first: passing each answer's lastMessageNumber back reads every one once
    assert page(lastMessageNumber="0", limit="2") == ([1, 2], 2)
    assert page(lastMessageNumber="2", limit="2") == ([3, 4], 4)
    assert page(lastMessageNumber="4", limit="2") == ([5, 6], 6)
    assert page(lastMessageNumber="6", limit="2") == ([], 6)
    assert page(lastMessageNumber="1", chatId=f"{other}@c.us") == ([2, 4, 6], 6)
    assert page(lastMessageNumber="2", limit="0") == ([3, 4, 5, 6], 6)
    # last: the newest, and lastMessageNumber ignored; last=false is no flag at all
    assert page(last="true", lastMessageNumber="2", limit="2") == ([5, 6], 6)
    assert page(last="True", lastMessageNumber="2", limit="2") == ([5, 6], 6)  # as the WABA SDK sends it
    assert page(last="false", lastMessageNumber="2", limit="2") == ([3, 4], 4)
    assert page(limit="2") == ([5, 6], 6)


def test_me_answers_the_channel_profile(stand_in: Callable[..., StandInGateway]) -> None:
    default, custom = stand_in("1msg"), stand_in("1msg", profile={"about": "Hi", "vertical": "Education"})
    answer = get(default, "me")
    assert answer.status_code == 200
    assert answer.json() == testing.DEFAULT_PROFILE
    assert set(answer.json()) == {"about", "address", "description", "email", "phone", "vertical", "photo", "websites"}
    assert get(custom, "me").json() == {"about": "Hi", "vertical": "Education"}
    assert get(default, "me", token="nope").status_code == 401
    assert [request.endpoint for request in default.requests] == ["me", "me"]


def test_me_is_1msg_only(stand_in: Callable[..., StandInGateway]) -> None:
    assert get(stand_in(), "me").status_code == 404


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_time", "soon"),
        ("max_time", "1.5"),
        ("limit", "-1"),
        ("limit", "²"),
        ("lastMessageNumber", "-1"),
        ("lastMessageNumber", "last"),
        ("last", "yes"),
        ("last", "2"),
    ],
)
def test_a_malformed_history_query_is_a_400_not_a_stand_in_error(onemsg: StandInGateway, name: str, value: str) -> None:
    answer = get(onemsg, "messages", **{name: value})
    assert answer.status_code == 400
    assert name in answer.json()["error"]
    assert onemsg.errors == []


def test_without_history_messages_is_a_notice(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", history=False)
    assert post(gateway, {"phone": PHONE, "contacts": [ANN]}).status_code == 200
    answer = get(gateway, "messages", chatId=f"{PHONE}@c.us")
    assert answer.status_code == 200
    assert answer.json() == {"notice": "Message history storage is disabled for this channel"}
    assert len(gateway.messages) == 1  # the card went out all the same


# ---- faults ------------------------------------------------------------------------------------


def test_window_closed(onemsg: StandInGateway) -> None:
    onemsg.inject(Fault.window_closed())
    answer = post(onemsg, {"phone": PHONE, "contacts": [ANN]})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "Dialog window is closed. The recipient has to write first (24-hour window); use a template message"
    }
    assert onemsg.messages == []
    assert post(onemsg, {"phone": PHONE, "contacts": [ANN]}).status_code == 200  # one request only


def test_forbidden_as_plain_text(onemsg: StandInGateway) -> None:
    onemsg.inject(Fault.forbidden_text(), Fault.forbidden_text("Channel is blocked"))
    first, second = (post(onemsg, {"phone": PHONE, "contacts": [ANN]}) for _ in range(2))
    assert first.status_code == second.status_code == 403
    assert first.headers["Content-Type"] == "text/plain"
    assert (first.text, second.text) == ("Channel is in trial mode or blocked", "Channel is blocked")
    assert onemsg.messages == []


def test_queued_as_a_job(onemsg: StandInGateway) -> None:
    onemsg.inject(Fault.queued_as_job())
    answer = post(onemsg, {"phone": PHONE, "contacts": [ANN]})
    assert answer.status_code == 200
    said = answer.json()
    assert set(said) == {"sent", "jobId", "message"}
    assert said["sent"] is False
    assert re.fullmatch(r"job_\w+", said["jobId"])
    assert said["message"] == "Request accepted and queued as a job"
    (message,) = onemsg.messages
    assert (message.chat_id, message.contacts) == (f"{PHONE}@c.us", (ANN,))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_decorated_success_is_queued_and_answered_with_the_extra_fields(
    stand_in: Callable[..., StandInGateway], dialect: str
) -> None:
    gateway = stand_in(dialect, refuse_chats={"79005555555@c.us": "Not on WhatsApp"})
    card = {"contacts": [ANN]} if dialect == "1msg" else {"contactId": ["79001111111@c.us"]}
    gateway.inject(
        Fault.decorated({"error": None}),
        Fault.decorated({"error": None, "note": "extra"}, status=201),
        Fault.decorated({"error": None}, status=201),  # a refusal is answered as it is
    )
    odd, created = post(gateway, {"phone": PHONE, **card}), post(gateway, {"phone": PHONE, **card})
    refusal = post(gateway, {"phone": "79005555555", **card})

    assert odd.status_code == 200
    assert odd.json()["error"] is None and odd.json()["sent"] is True
    assert created.status_code == 201
    said = created.json()
    assert (said["sent"], said["error"], said["note"]) == (True, None, "extra")
    assert [odd.json()["id"], created.json()["id"]] == [message.id for message in gateway.messages]
    assert (refusal.status_code, refusal.json()) == (200, {"sent": False, "message": "Not on WhatsApp"})


@pytest.mark.parametrize(("location", "status"), [("/elsewhere", 307), ("https://api.1msg.io/123456/sendContact", 308)])
def test_redirect(onemsg: StandInGateway, location: str, status: int) -> None:
    onemsg.inject(Fault.redirect() if location == "/elsewhere" else Fault.redirect(location, status=status))
    answer = post(onemsg, {"phone": PHONE, "contacts": [ANN]})
    assert answer.status_code == status
    assert answer.headers["Location"] == location
    assert answer.content == b""
    assert onemsg.messages == []


def test_a_failed_ack_comes_in_metas_status_shape(stand_in: Callable[..., StandInGateway]) -> None:
    window = "Message failed to send because more than 24 hours have passed since the customer last replied"
    gateway = stand_in(
        "1msg",
        acks={
            f"{PHONE}@c.us": [Ack("sent"), Ack("failed", code=131047, title="Re-engagement message", details=window)],
            "79002222222@c.us": [Ack("failed", code=131026, title="Message undeliverable")],
            "79003333333@c.us": [Ack("failed", error="User's number is part of an experiment")],
        },
    )
    ids = [post(gateway, {"phone": phone, "contacts": [ANN]}).json()["id"] for phone in (PHONE, "79002222222")]
    experiment = post(gateway, {"phone": "79003333333", "contacts": [ANN]}).json()["id"]
    hooks = [get(gateway, "hookInfo", messageId=message_id).json()["hooks"] for message_id in [*ids, experiment]]

    sent, failed = hooks[0]
    assert "errors" not in sent
    assert failed["errors"] == [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",  # Meta repeats the title
            "error_data": {"details": window},
        }
    ]
    assert hooks[1][0]["errors"] == [
        {
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Message undeliverable"},
        }
    ]
    assert hooks[2] == [{**hooks[2][0], "error": "User's number is part of an experiment"}]  # 1msg's text only
    assert "errors" not in hooks[2][0]


def test_429_has_no_retry_after_on_request(onemsg: StandInGateway) -> None:
    onemsg.inject(Fault.rate_limited(retry_after=None))
    answer = post(onemsg, {"phone": PHONE, "contacts": [ANN]})
    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers


# ---- errors inside the stand-in ----------------------------------------------------------------


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_error_inside_the_stand_in_is_recorded_and_shown(
    onemsg: StandInGateway, capfd: pytest.CaptureFixture[str]
) -> None:
    onemsg.inject(Fault(status=200, body={"unserialisable": object()}))
    with pytest.raises(requests.ConnectionError):
        post(onemsg, {"phone": PHONE, "contacts": [ANN]})
    wait_for(lambda: onemsg.errors)
    (error,) = onemsg.errors
    assert error.startswith("TypeError(") and "not JSON serializable" in error
    assert "Traceback" in capfd.readouterr().err
    assert get(onemsg, "status").json() == {"status": "connected"}  # it still serves


def test_a_failing_endpoint_is_recorded(onemsg: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: StandInGateway, query: Any) -> dict[str, Any]:
        raise RuntimeError("history exploded")

    monkeypatch.setattr(StandInGateway, "_history", broken)
    with pytest.raises(requests.ConnectionError):
        get(onemsg, "messages")
    wait_for(lambda: onemsg.errors)
    assert onemsg.errors == ["RuntimeError('history exploded')"]


def test_a_client_that_resets_is_not_an_error(onemsg: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BaseException | None] = []
    original = testing._Server.handle_error

    def spy(self: Any, request: Any, client_address: Any) -> None:
        seen.append(sys.exc_info()[1])
        original(self, request, client_address)

    monkeypatch.setattr(testing._Server, "handle_error", spy)
    onemsg.inject(Fault.slow(0.3))
    body = json.dumps({"phone": PHONE, "contacts": [ANN]}).encode()
    head = (
        f"POST /123456/sendContact?token={onemsg.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", onemsg.port), timeout=5) as client:
        client.sendall(head + body)
        wait_for(lambda: onemsg.messages)  # taken, and now the stand-in sleeps before answering
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_for(lambda: seen)
    # the stand-in did fail to answer: the spy saw the client's reset, and it was let go
    assert isinstance(seen[0], (BrokenPipeError, ConnectionResetError)), seen
    assert onemsg.errors == []


# ---- the classic dialect is unchanged apart from vCard bodies -----------------------------------


def test_classic_answers_as_before_with_vcard_bodies(stand_in: Callable[..., StandInGateway]) -> None:
    classic = stand_in(account_status="loading")
    assert classic.api_url == f"http://127.0.0.1:{classic.port}/instance123456"
    assert json.loads(classic.connection_json()) == {
        "conn_type": "chatapi",
        "host": classic.api_url,
        "password": classic.token,
    }
    url = f"{classic.api_url}/sendContact"
    token = {"token": classic.token}
    one = requests.post(url, params=token, json={"phone": 79001111111, "contactId": "79002222222@c.us"}, timeout=5)
    two = requests.post(
        url,
        params=token,
        json={"chatId": "79001111111@c.us", "contactId": ["79002222222@c.us", "79003333333@c.us"]},
        timeout=5,
    )
    said = one.json()
    assert one.status_code == 200 and set(said) == {"sent", "message", "id", "queueNumber"}
    assert said["sent"] is True and said["queueNumber"] == 1
    assert re.fullmatch(r"true_79001111111@c\.us_[0-9A-F]{20}", said["id"])
    assert said["message"].startswith("Message queued")
    assert two.json()["queueNumber"] == 2
    assert requests.get(f"{classic.api_url}/status", params=token, timeout=5).json() == {"accountStatus": "loading"}

    vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:+{0}\nTEL;type=CELL;waid={0}:+{0}\nEND:VCARD".format
    queue = requests.get(f"{classic.api_url}/showMessagesQueue", params=token, timeout=5).json()
    assert queue["totalMessages"] == 2
    assert [(entry["body"], entry["type"], entry["metadata"]) for entry in queue["first100"]] == [
        (vcard("79002222222"), "vcard", {"chatId": "79001111111@c.us"}),
        (f"{vcard('79002222222')}\n{vcard('79003333333')}", "multi_vcard", {"chatId": "79001111111@c.us"}),
    ]

    classic.deliver_queue()
    history = requests.get(f"{classic.api_url}/messages", params=token, timeout=5).json()
    assert history["lastMessageNumber"] == 2
    first = history["messages"][0]
    assert first == {
        "id": said["id"],
        "body": vcard("79002222222"),
        "type": "vcard",
        "senderName": "stand-in",
        "fromMe": True,
        "author": "123456@c.us",
        "time": first["time"],
        "chatId": "79001111111@c.us",
        "messageNumber": 1,
    }

    # refusals and the 401 keep their classic shapes: 200 with sent false, a fixed 401 text
    refused = requests.post(url, params=token, json={"phone": "1", "contactId": "79002222222@c.us"}, timeout=5)
    assert (refused.status_code, refused.json()["sent"]) == (200, False)
    wrong = requests.post(url, params={"token": "x"}, json={}, timeout=5)
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"error": "Wrong token. Please provide token as a GET parameter."},
    )
    assert classic.errors == []


# ---- the command line --------------------------------------------------------------------------


def test_the_command_line_prints_a_connection_that_works() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_chatapi.testing", "--dialect", "1msg", "--no-history", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("Stand-in Chat API gateway (1msg) at http://127.0.0.1:")
        line = server.stdout.readline().strip()
        prefix = "AIRFLOW_CONN_CHATAPI_DEFAULT='"
        assert line.startswith(prefix) and line.endswith("'")
        conn = json.loads(line[len(prefix) : -1])
        assert conn["extra"] == {"dialect": "1msg"}
        params = {"token": conn["password"]}
        sent = requests.post(f"{conn['host']}/sendContact", params=params, json=send(ANN), timeout=5)
        assert sent.status_code == 200 and sent.json()["sent"] is True
        history = requests.get(f"{conn['host']}/messages", params=params, timeout=5)
        assert "notice" in history.json()
    finally:
        server.terminate()
        server.wait(timeout=10)
