"""The official clients beside this project: 1msg's Python SDK against the stand-in, and pywa's contact cards
beside the provider's.

- ``one-msg-sdk`` (1msg's SDK of the 1.0.0 contract) talks to the stand-in on loopback: every call it makes
  that the stand-in serves (``me``, ``status``, ``sendContact``, ``messages``), with the SDK parsing each
  answer into its own models, and each documented error answered as the SDK expects it. Where the SDK cannot
  send what 1msg takes (the 2.39.0 ``messages`` filters, ``chatId`` and ``quotedMsgId``), the test sends it
  through the SDK's own transport and models rather than copying the gap (``docs/staging.md``, "Official
  clients against the stand-in").
- ``pywa`` (Meta's Cloud API client): its serialisation of a table of contacts is compared with the cards
  :func:`normalize_contacts` makes of the same contacts written as a DAG author writes them.

The cards agree with pywa's field for field, but where a row names a documented difference (``derived``:
what the provider fills in that 1msg or a reader needs).

The ``test-clients`` extra installs both, on the newest tested Airflow only (``scripts/env.sh``); elsewhere
these tests skip. ``one-msg-waba-sdk`` (the 2.39.0 SDK) is not among them: it pins pydantic 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

pytest.importorskip("one_msg_sdk", reason="the test-clients extra (installed on the newest Airflow only)")
pytest.importorskip("pywa", reason="the test-clients extra (installed on the newest Airflow only)")

from one_msg_sdk import ApiClient, Configuration, exceptions
from one_msg_sdk.api.channel_api import ChannelApi
from one_msg_sdk.api.messaging_api import MessagingApi
from one_msg_sdk.api.profile_api import ProfileApi
from one_msg_sdk.models.send_contact_request import SendContactRequest
from pywa.errors import WhatsAppError
from pywa.types import Contact

from airflow_provider_chatapi._protocol.cards import card_for_number, normalize_contacts
from airflow_provider_chatapi.testing import DEFAULT_PROFILE, Ack, Fault, StandInGateway
from tests.helpers import ANN_ON_THE_WIRE as ANN
from tests.helpers import META_EXAMPLE, PHONE

WAMID = re.compile(r"wamid\.HBgL[A-Za-z0-9_-]{24}")


# ---- one-msg-sdk against the stand-in ------------------------------------------------------------


@pytest.fixture
def onemsg(stand_in: Callable[..., StandInGateway]) -> StandInGateway:
    return stand_in("1msg", connection=None)


@pytest.fixture
def sdk(onemsg: StandInGateway) -> Iterator[ApiClient]:
    """The SDK's client, configured as its README says: the host is the base URL and the channel's id."""
    with ApiClient(Configuration(host=onemsg.api_url)) as client:
        yield client


def through_sdk(
    client: ApiClient, method: str, endpoint: str, model: str, *, query: Mapping[str, str], body: Any = None
) -> Any:
    """A call the SDK's generated methods cannot make, made through its own transport and parsed into its
    own model ``model``: its errors raised as its methods raise them."""
    headers = {"Accept": "application/json"} | ({"Content-Type": "application/json"} if body is not None else {})
    serialized = client.param_serialize(
        method=method, resource_path=f"/{endpoint}", query_params=list(query.items()), header_params=headers, body=body
    )
    response = client.call_api(*serialized)
    response.read()
    types = {"200": model, "400": "ErrorResponse", "401": "ErrorResponse"}
    return client.response_deserialize(response_data=response, response_types_map=types).data


def test_me_and_status(onemsg: StandInGateway, sdk: ApiClient) -> None:
    profile = ProfileApi(sdk).get_me(onemsg.token)
    assert profile.to_dict() == DEFAULT_PROFILE
    assert ChannelApi(sdk).get_status(onemsg.token) == {"status": "connected"}
    assert [(request.endpoint, request.query) for request in onemsg.requests] == [
        ("me", {"token": onemsg.token}),
        ("status", {"token": onemsg.token}),
    ]


def test_send_contact_with_phone(onemsg: StandInGateway, sdk: ApiClient) -> None:
    request = SendContactRequest.from_dict({"phone": PHONE, "contacts": [ANN]})
    sent = MessagingApi(sdk).send_contact(onemsg.token, request)

    assert sent.sent is True
    assert WAMID.fullmatch(sent.id or ""), sent.id
    assert (sent.message, sent.description) == (f"Sent to {PHONE}@c.us", "Message has been sent to the provider")
    (message,) = onemsg.messages
    assert (message.id, message.chat_id, message.contacts) == (sent.id, f"{PHONE}@c.us", (ANN,))
    assert onemsg.requests[0].json == {"phone": PHONE, "contacts": [ANN]}


def test_the_sdk_drops_chat_id_and_quoted_msg_id(onemsg: StandInGateway, sdk: ApiClient) -> None:
    body = {"chatId": "120363041234567890@g.us", "quotedMsgId": "wamid.HBgLquoted", "contacts": [ANN]}
    # one-msg-sdk 1.0.2's SendContactRequest has phone and contacts only: the other fields are lost
    assert SendContactRequest.from_dict(body).to_dict() == {"contacts": [ANN]}

    sent = through_sdk(sdk, "POST", "sendContact", "MessageSentResponse", query={"token": onemsg.token}, body=body)
    assert sent.sent is True and sent.message == "Sent to 120363041234567890@g.us"
    (message,) = onemsg.messages
    assert (message.chat_id, message.quoted_message_id) == ("120363041234567890@g.us", "wamid.HBgLquoted")


def test_messages_with_the_contracts_filters(onemsg: StandInGateway, sdk: ApiClient) -> None:
    ids = [
        MessagingApi(sdk).send_contact(onemsg.token, SendContactRequest.from_dict({"phone": p, "contacts": [ANN]})).id
        for p in [PHONE, "79002222222"] * 2
    ]

    listed = MessagingApi(sdk).list_messages(onemsg.token)  # the SDK's method takes no filter at all
    assert [entry["id"] for entry in listed.messages or []] == ids
    assert listed.additional_properties == {"lastMessageNumber": 4}

    def numbers(**query: str) -> list[int]:
        page = through_sdk(sdk, "GET", "messages", "ListMessages200Response", query={"token": onemsg.token, **query})
        return [entry["messageNumber"] for entry in page.messages]

    assert numbers(chatId=f"{PHONE}@c.us") == [1, 3]
    assert numbers(msgId=ids[2]) == [3]
    assert numbers(lastMessageNumber="2") == [3, 4]
    assert numbers(lastMessageNumber="1", limit="2") == [2, 3]
    assert numbers(last="true", lastMessageNumber="1", limit="2") == [3, 4]
    assert numbers(limit="0") == [1, 2, 3, 4]
    assert numbers(min_time="0", max_time="1") == []


def test_messages_without_history_is_a_notice(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", connection=None, history=False)
    with ApiClient(Configuration(host=gateway.api_url)) as client:
        listed = MessagingApi(client).list_messages(gateway.token)
    assert (listed.notice, listed.messages) == ("Message history storage is disabled for this channel", None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"phone": "+17472822486", "contacts": [ANN]}, "phone: wrong format"),
        ({"phone": PHONE, "contacts": []}, "contacts is required"),
        ({"phone": PHONE, "contacts": [{"name": {"formatted_name": "Ann"}}]}, "contacts[0].name needs one of"),
        ({"contacts": [ANN]}, "Provide exactly one of phone or chatId"),
    ],
)
def test_an_invalid_body_is_a_documented_400(
    onemsg: StandInGateway, sdk: ApiClient, body: dict[str, Any], error: str
) -> None:
    with pytest.raises(exceptions.BadRequestException) as raised:
        MessagingApi(sdk).send_contact(onemsg.token, SendContactRequest.from_dict(body))
    assert error in raised.value.data.error  # parsed into the SDK's ErrorResponse
    assert onemsg.messages == []


def test_the_other_documented_errors(onemsg: StandInGateway, sdk: ApiClient) -> None:
    messaging, request = MessagingApi(sdk), SendContactRequest.from_dict({"phone": PHONE, "contacts": [ANN]})
    with pytest.raises(exceptions.UnauthorizedException) as wrong_token:
        ProfileApi(sdk).get_me("nope")
    assert wrong_token.value.data.error.startswith('Wrong token for channel "123456"')

    onemsg.inject(Fault.rate_limited(retry_after=None), Fault.server_error(queued=False))
    with pytest.raises(exceptions.ApiException) as limited:
        messaging.send_contact(onemsg.token, request)
    assert (limited.value.status, limited.value.data.error) == (429, "Too many requests, slow down")
    with pytest.raises(exceptions.ServiceException) as failed:
        messaging.send_contact(onemsg.token, request)
    assert failed.value.data.error == "Internal server error"


def test_metas_example_card_is_accepted(onemsg: StandInGateway, sdk: ApiClient) -> None:
    sent = MessagingApi(sdk).send_contact(
        onemsg.token, SendContactRequest.from_dict({"phone": PHONE, "contacts": [META_EXAMPLE]})
    )
    assert sent.sent is True
    assert [message.contacts for message in onemsg.messages] == [(META_EXAMPLE,)]


def test_a_failed_ack_parses_as_pywas_error(stand_in: Callable[..., StandInGateway]) -> None:
    # one-msg-sdk 1.0.2 has no hookInfo: the ack is read with requests, its error parsed by pywa
    details = "Message failed to send because more than 24 hours have passed since the customer last replied"
    acks = {f"{PHONE}@c.us": [Ack("failed", code=131047, title="Re-engagement message", details=details)]}
    gateway = stand_in("1msg", connection=None, acks=acks)
    token = {"token": gateway.token}
    body = {"phone": PHONE, "contacts": [ANN]}
    sent = requests.post(f"{gateway.api_url}/sendContact", params=token, json=body, timeout=5).json()
    query = {**token, "messageId": sent["id"]}
    hooks = requests.get(f"{gateway.api_url}/hookInfo", params=query, timeout=5).json()

    error = WhatsAppError.from_dict(hooks["hooks"][0]["errors"][0])
    assert (error.code, error.message, error.details) == (131047, "Re-engagement message", details)


# ---- pywa's cards beside the provider's --------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One contact: as pywa builds it, and as a DAG author writes it for the provider (a card, or a contact
    id). ``derived`` is a documented difference: name parts the provider fills from ``formatted_name``
    (1msg refuses a name without one); ``derived_phone``, the phone shown for a ``wa_id`` given alone (the
    number in international form, so the card shows a number)."""

    id: str
    pywa: Contact
    written: Mapping[str, Any] | str
    derived: Mapping[str, str] = field(default_factory=dict)
    derived_phone: str | None = None


Name, Phone, Email, Url, Org, Address = (
    Contact.Name,
    Contact.Phone,
    Contact.Email,
    Contact.Url,
    Contact.Org,
    Contact.Address,
)
ROWS = [
    Row(
        "every field, standard types",
        Contact(
            name=Name(formatted_name="John Smith", first_name="John", last_name="Smith"),
            birthday="2012-08-18",
            phones=[Phone(phone="+1 (650) 555-1234", type="WORK", wa_id="16505551234")],
            emails=[Email(email="test@fb.com", type="WORK")],
            urls=[Url(url="https://www.facebook.com", type="WORK")],
            addresses=[Address(street="1 Hacker Way", city="Menlo Park", state="CA", zip="94025", type="HOME")],
            org=Org(company="WhatsApp", department="Design", title="Manager"),
        ),
        {
            "name": {"formatted_name": "John Smith", "first_name": "John", "last_name": "Smith"},
            "birthday": "2012-08-18",
            "phones": [{"phone": "+1 (650) 555-1234", "type": "WORK", "wa_id": "16505551234"}],
            "emails": [{"email": "test@fb.com", "type": "WORK"}],
            "urls": [{"url": "https://www.facebook.com", "type": "WORK"}],
            "addresses": [
                {"street": "1 Hacker Way", "city": "Menlo Park", "state": "CA", "zip": "94025", "type": "HOME"}
            ],
            "org": {"company": "WhatsApp", "department": "Design", "title": "Manager"},
        },
    ),
    Row(
        "every name part",
        Contact(
            name=Name(
                formatted_name="Dr Bob Q Smith Jr",
                first_name="Bob",
                middle_name="Q",
                last_name="Smith",
                prefix="Dr",
                suffix="Jr",
            ),
            emails=[Email(email="bob@example.org")],
        ),
        {
            "name": {
                "formatted_name": "Dr Bob Q Smith Jr",
                "first_name": "Bob",
                "middle_name": "Q",
                "last_name": "Smith",
                "prefix": "Dr",
                "suffix": "Jr",
            },
            "email": "bob@example.org",
        },
    ),
    Row(
        "formatted_name only",
        Contact(name=Name(formatted_name="Ann Lee"), org=Org(company="Acme")),
        {"name": "Ann Lee", "org": "Acme"},
        derived={"first_name": "Ann", "last_name": "Lee"},
    ),
    Row(
        "a phone without wa_id",
        Contact(name=Name(formatted_name="Cy", first_name="Cy"), phones=[Phone(phone="+44 20 7946 0000", type="HOME")]),
        {
            "name": {"formatted_name": "Cy", "first_name": "Cy"},
            "phones": [{"phone": "+44 20 7946 0000", "type": "HOME"}],
        },
    ),
    Row(
        "the short form",
        Contact(
            name=Name(formatted_name="Ann Lee"),
            phones=[Phone(phone="+7 900 111-11-11")],
            emails=[Email(email="ann@example.com")],
            org=Org(company="Acme"),
        ),
        {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"},
        derived={"first_name": "Ann", "last_name": "Lee"},
    ),
    Row(
        "a wa_id only",
        Contact(name=Name(formatted_name="Di", first_name="Di"), phones=[Phone(wa_id="447946000001")]),
        {"name": {"formatted_name": "Di", "first_name": "Di"}, "phones": [{"wa_id": "447946000001"}]},
        derived_phone="+44 7946 000001",
    ),
    Row(
        "a displayed phone beside a wa_id is free text",
        Contact(
            name=Name(formatted_name="Ed", first_name="Ed"),
            phones=[Phone(phone="(650) 555-1234, front desk", type="WORK", wa_id="16505551234")],
        ),
        {
            "name": {"formatted_name": "Ed", "first_name": "Ed"},
            "phones": [{"phone": "(650) 555-1234, front desk", "type": "WORK", "wa_id": "16505551234"}],
        },
    ),
    Row(
        "types as written",
        Contact(
            name=Name(formatted_name="Flo", first_name="Flo"),
            phones=[Phone(phone="+1 (650) 555-1234", type="home", wa_id="16505551234")],
            emails=[Email(email="flo@example.com", type="work")],
        ),
        {
            "name": {"formatted_name": "Flo", "first_name": "Flo"},
            "phones": [{"phone": "+1 (650) 555-1234", "type": "home", "wa_id": "16505551234"}],
            "emails": [{"email": "flo@example.com", "type": "work"}],
        },
    ),
    Row("Meta's example card", Contact.from_dict(META_EXAMPLE), META_EXAMPLE),
    Row(
        "a contact id: every phone a WhatsApp id",
        Contact(
            name=Name(formatted_name="+7 900 111-11-11", first_name="+7 900 111-11-11"),
            phones=[Phone(phone="+7 900 111-11-11", wa_id="79001111111")],
        ),
        "79001111111",
    ),
]


def as_sent(value: Any) -> Any:
    """pywa's ``Contact.to_dict()`` as JSON, its absent fields left out: pywa writes every field, one not
    given as ``null`` or ``[]``, and the comparison counts those as not given."""
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items() if item not in (None, [], ())}
    if isinstance(value, (list, tuple)):
        return [as_sent(item) for item in value]
    return value


def provider_card(written: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(written, str):
        return card_for_number(written)
    (card,) = normalize_contacts([written])
    return card


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_the_providers_card_is_pywas(row: Row) -> None:
    expected = as_sent(row.pywa.to_dict())
    expected["name"] = {**expected["name"], **row.derived}
    if row.derived_phone is not None:
        expected["phones"] = [{"phone": row.derived_phone, **phone} for phone in expected["phones"]]
    assert json.loads(json.dumps(provider_card(row.written))) == expected
