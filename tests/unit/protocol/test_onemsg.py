"""The 1msg dialect: the requests it builds (checked against the stand-in's own, independent checks too) and
every shape of answer it reads, for sends, the status probe and the message history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_chatapi._protocol.dialect import parse_message_history as parse_history
from airflow_provider_chatapi._protocol.http import ApiResponse
from airflow_provider_chatapi._protocol.onemsg import ONEMSG
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)
from airflow_provider_chatapi.hooks.chatapi import SendResult
from airflow_provider_chatapi.testing._checks import check_onemsg_send
from tests.helpers import ANN_CARD, TOKEN, response

# ---- requests -------------------------------------------------------------------------------------


def test_send_request_carries_cards_and_never_contact_ids() -> None:
    send = build_send_contact(contacts=[ANN_CARD], chat_id="120363041234567890@g.us", quoted_message_id="wamid.HBgL1")
    request = ONEMSG.send_request(send)
    assert (request.method, request.endpoint) == ("POST", "sendContact")
    assert request.json == {
        "chatId": "120363041234567890@g.us",
        "contacts": [
            {
                "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
                "phones": [{"phone": "+7 900 111-11-11"}],
                "emails": [{"email": "ann@example.com"}],
                "org": {"company": "Acme"},
            }
        ],
        "quotedMsgId": "wamid.HBgL1",
    }
    assert (
        ONEMSG.send_request(build_send_contact(contacts=[ANN_CARD], phone=17472822486)).json["phone"] == "17472822486"
    )  # type: ignore[index]


def test_an_opaque_lid_chat_goes_to_1msg_only() -> None:
    send = build_send_contact(contacts=[ANN_CARD], chat_id="123456789012345@lid")
    assert ONEMSG.send_request(send).json["chatId"] == "123456789012345@lid"  # type: ignore[index]


# ---- answers --------------------------------------------------------------------------------------


def test_accepted_send() -> None:
    answer = {"sent": True, "id": "gBGGeRhGZTEfAgkJCh2wAz4ZH-8", "message": "Sent to 556123122026@c.us"}
    assert ONEMSG.parse_send(response(200, answer)) == SendResult(
        id="gBGGeRhGZTEfAgkJCh2wAz4ZH-8", sent=True, message="Sent to 556123122026@c.us", queue_number=None
    )


def test_a_send_taken_as_a_job_is_queued_not_refused() -> None:
    result = ONEMSG.parse_send(response(200, {"sent": False, "jobId": "job_42", "message": "queued as a job"}))
    assert (result.sent, result.job_id, result.id) == (False, "job_42", "job_42")


FAILURES: list[tuple[str, ApiResponse, type[Exception], str]] = [
    ("sent false", response(200, {"sent": False, "message": "Wrong phone"}), RejectedError, "'Wrong phone'"),
    ("window, 400", response(400, {"error": "Dialog window is closed"}), WindowClosedError, "Dialog window is closed"),
    (
        "window, sent false",
        response(200, {"sent": False, "message": "Message is outside the allowed window"}),
        WindowClosedError,
        "outside the allowed window",
    ),
    (
        "window, Meta's error object",
        response(400, {"error": {"message": "Re-engagement message", "code": 131047}}),
        WindowClosedError,
        "Re-engagement message (code 131047)",
    ),
    (
        "window, code past a long text",
        response(400, {"error": {"message": "x" * 400, "code": 131047}}),
        WindowClosedError,
        "xxx",
    ),
    ("other 400", response(400, {"error": "contacts[0].name is required"}), RejectedError, "name is required"),
    ("top-level message", response(400, {"message": "Bad phone"}), RejectedError, "'Bad phone'"),
    (
        "403 plain text",
        response(403, "Channel is in trial mode", {"Content-Type": "text/plain"}),
        AuthenticationError,
        "body 'Channel is in trial mode' (nothing was queued; 1msg does not let this channel send",
    ),
    ("401", response(401, {"error": f'Wrong token "{TOKEN}" for channel "1"'}), AuthenticationError, "Wrong token"),
    ("429, no Retry-After", response(429, {"error": "Too many requests"}), RateLimitedError, "Too many requests"),
    ("500", response(500, {"error": "Internal error"}), DeliveryUnknownError, "MAY HAVE BEEN QUEUED"),
    ("200 without id", response(200, {"sent": True}), DeliveryUnknownError, "without 'sent: true' and a message id"),
    ("200 not json", response(200, "<html>ok</html>"), DeliveryUnknownError, "not a JSON object"),
]


@pytest.mark.parametrize(("name", "answer", "error_class", "said"), FAILURES, ids=[f[0] for f in FAILURES])
def test_every_failure_shape_is_classified(name: str, answer: ApiResponse, error_class: type, said: str) -> None:
    with pytest.raises(error_class) as error:
        ONEMSG.parse_send(answer)
    assert type(error.value) is error_class
    assert said in str(error.value)
    assert TOKEN not in str(error.value)
    if error_class is RateLimitedError:
        assert error.value.retry_after is None and error.value.transient
    if error_class is WindowClosedError:
        assert "not written to this number in the last 24 hours" in str(error.value)
        assert "only a template message" in str(error.value)
        assert isinstance(error.value, RejectedError) and not error.value.transient


@pytest.mark.parametrize(
    ("status", "healthy", "meaning"),
    [
        ("connected", True, "sends messages"),
        ("connecting", True, "once it is connected"),
        ("disconnected", False, "lost its link"),
        ("uninitialized", False, "try again in a few minutes"),
        ("unregistered", False, "registered again"),
        ("banana", False, "does not know"),
    ],
)
def test_statuses_are_explained(status: str, healthy: bool, meaning: str) -> None:
    assert ONEMSG.parse_status(response(200, {"status": status})) == status
    ok, message = ONEMSG.describe_status(status)
    assert ok is healthy and meaning in message and repr(status) in message


def test_history_off_means_cannot_tell() -> None:
    with pytest.raises(GatewayError, match="keeps no message history") as error:
        parse_history(response(200, {"notice": "Message history is disabled"}))
    assert not isinstance(error.value, DeliveryUnknownError)
    assert parse_history(response(200, {"messages": [{"id": "a"}, "junk"]})).entries == [{"id": "a"}]


# ---- the provider's 1msg requests against the stand-in's own, independent checks -----------------

cards = st.fixed_dictionaries(
    {"name": st.sampled_from(["Ann Lee", "Cher", "  Bob  Stone ", "Ана Ли"])},
    optional={
        "phone": st.sampled_from(["+7 900 111-11-11", "447911123456", 4915112345678]),
        "email": st.sampled_from(["ann@example.com", {"email": "b@example.org", "type": "home"}]),
        "org": st.sampled_from(["Acme", {"company": "Acme", "title": "SRE"}]),
        "urls": st.just(["https://example.com/a"]),
        "birthday": st.sampled_from(["1990-02-28", "2000-01-01"]),
        "addresses": st.just([{"city": "Berlin", "zip": 10115, "type": "WORK"}]),
    },
)


@settings(max_examples=150)
@given(
    st.lists(cards, min_size=1, max_size=4),
    st.sampled_from([{"phone": "17472822486"}, {"chat_id": "120363041234567890@g.us"}]),
)
def test_every_1msg_request_we_build_is_one_the_stand_in_accepts(
    contacts: list[dict[str, Any]], target: dict[str, str]
) -> None:
    request = ONEMSG.send_request(build_send_contact(contacts=contacts, **target))
    problem, _, queued = check_onemsg_send(json.loads(json.dumps(request.json)))
    assert problem is None
    assert list(queued) == request.json["contacts"]  # type: ignore[index]
